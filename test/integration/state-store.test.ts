/**
 * Every StateStore method over real HTTP against the sandbox's DynamoDB Local: the conditions, fences,
 * key encodings, Query ranges and order, the capacity a run reports, and what an error says. Each test
 * builds its own StateStore (so a change to how the store is built is seen) and uses job ids of its own.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { JobAlreadyRunningError, LeaseLostError, StateStoreError } from '../../functions/core/errors.js';
import {
  type LedgerEntry,
  type MultipartUploadRecord,
  StateStore,
} from '../../functions/core/state/state-store.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import { createStateTable } from '../../sandbox/provision.js';
import { useSandbox } from './helpers.js';

const { sandbox } = useSandbox();
const store = (table = sandbox.accountB.tableName) => new StateStore(sandboxDynamo(sandbox), table);
const newJobId = (name: string) => `state-store-${name}-${randomBytes(3).toString('hex')}`;
const TTL = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();
/** Writes items as no StateStore method would: an older version's, or another tool's. */
const rawTable = () => DynamoDBDocumentClient.from(sandboxDynamo(sandbox));

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : expect.fail('no port');
}

const copied = (key: string, etag: string): LedgerEntry => ({
  key,
  etag,
  size: 3,
  lastModified: '2026-01-01T00:00:00.000Z',
  destinationKey: `copies/${key}`,
  // Destination ETags are kept unquoted.
  destinationEtag: etag.slice(1, -1),
  verifiedBy: 'etag-md5',
  copiedAt: '2026-01-01T00:01:00.000Z',
  runId: 'run-1',
});

describe('StateStore ledger (DynamoDB Local)', () => {
  it('reads back in UTF-8 byte order exactly what was written, within the range asked for', async () => {
    const state = store();
    const jobId = newJobId('ledger');
    // JavaScript's (UTF-16) order puts U+1F600 before U+FF5E; UTF-8 (DynamoDB's and S3's) puts it after.
    const keys = ['a', 'b', 'c\u{1f600}', 'c\u{ff5e}', 'd'];
    for (const key of keys) await state.putLedgerEntry(jobId, copied(key, `"${key}-etag"`), 1);
    // Nothing but a key: every other field is absent, and absent it stays.
    await state.putLedgerEntry(jobId, { key: 'e' }, 1);

    const all = await collect(state.ledger(jobId));
    const after = await collect(state.ledger(jobId, { after: 'b' }));
    const through = await collect(state.ledger(jobId, { through: 'c\u{1f600}' }));

    expect(all.map((entry) => entry.key)).toEqual(['a', 'b', 'c\u{ff5e}', 'c\u{1f600}', 'd', 'e']);
    expect(all[0]).toStrictEqual(copied('a', '"a-etag"'));
    expect(all[5]).toStrictEqual({ key: 'e' });
    expect(after.map((entry) => entry.key)).toEqual(['c\u{ff5e}', 'c\u{1f600}', 'd', 'e']);
    expect(through.map((entry) => entry.key)).toEqual(['a', 'b', 'c\u{ff5e}', 'c\u{1f600}']);
  });

  it('lists the failed keys with their failures, in key order, and no other key', async () => {
    const state = store();
    const jobId = newJobId('failures');
    const failure = (reason: string) => ({ reason, attempts: 3, at: '2026-01-01T00:00:00.000Z' });
    await state.putLedgerEntry(jobId, { ...copied('c', '"c"'), failure: failure('SlowDown') }, 1);
    await state.putLedgerEntry(jobId, copied('b', '"b"'), 1);
    // An attribute left undefined inside a nested value is dropped, as at the top level.
    const noEtag = { ...failure('AccessDenied'), etag: undefined };
    await state.putLedgerEntry(jobId, { key: 'a', failure: noEtag }, 1);

    const failures = await collect(state.ledgerFailures(jobId));

    expect(failures).toEqual([
      { key: 'a', failure: failure('AccessDenied') },
      { key: 'c', failure: failure('SlowDown') },
    ]);
  });

  it('refuses a stale fence on a ledger write or delete, naming the job and key, with the refusal as cause', async () => {
    const state = store();
    const jobId = newJobId('ledger-fence');
    await state.putLedgerEntry(jobId, copied('k', '"new"'), 2);

    const write = await state.putLedgerEntry(jobId, copied('k', '"old"'), 1).catch((e: unknown) => e);
    const remove = await state.deleteLedgerEntry(jobId, 'k', 1).catch((e: unknown) => e);

    for (const error of [write, remove]) {
      expect(error).toBeInstanceOf(LeaseLostError);
      expect((error as Error).message).toBe(
        `job ${jobId}: a newer run has written "k"; this run lost its lease and stops`,
      );
      expect(error).toMatchObject({ cause: { name: 'ConditionalCheckFailedException' } });
    }
    expect(await collect(state.ledger(jobId))).toMatchObject([{ key: 'k', etag: '"new"' }]);
    await state.deleteLedgerEntry(jobId, 'k', 2);
    expect(await collect(state.ledger(jobId))).toEqual([]);
  });

  it('counts the read and write units DynamoDB reports for the ledger, intents and multipart records', async () => {
    const state = store();
    const jobId = newJobId('capacity');
    const grows = async (unit: 'readCapacityUnits' | 'writeCapacityUnits', act: () => Promise<unknown>) => {
      const before = state.capacity[unit];
      await act();
      expect(state.capacity[unit]).toBeGreaterThan(before);
    };

    await grows('writeCapacityUnits', () => state.putLedgerEntry(jobId, copied('k', '"e"'), 1));
    await grows('readCapacityUnits', () => collect(state.ledger(jobId)));
    await grows('writeCapacityUnits', () =>
      state.putUploadIntent(jobId, 'run', 1, { since: iso(0), objects: [{ key: 'k', size: 3 }] }),
    );
    await grows('readCapacityUnits', () => state.readUploadIntents(jobId));
    await grows('writeCapacityUnits', () => state.putMultipartUpload(jobId, upload('k')));
    await grows('readCapacityUnits', () => state.readMultipartUploads(jobId));
  });
});

describe('StateStore lease (DynamoDB Local)', () => {
  it('holds the lease until now + ttl, then lets the next run take it with a higher fence', async () => {
    const state = store();
    const jobId = newJobId('lease');
    const now = Date.now();

    const lease = await state.acquireLease(jobId, 'run-a', TTL, now);
    const refused = await state.acquireLease(jobId, 'run-b', TTL, now + TTL).catch((e: unknown) => e);
    const next = await state.acquireLease(jobId, 'run-b', TTL, now + TTL + 1);

    expect(lease).toEqual({ owner: 'run-a', expiresAt: now + TTL, fence: 1, acquiredAt: now });
    expect(refused).toBeInstanceOf(JobAlreadyRunningError);
    expect((refused as Error).message).toBe(
      `job ${jobId} is already running (run run-a, holding the lease since ${iso(now)}, until ` +
        `${iso(now + TTL)} unless it renews it); this invocation copied nothing. It will run on the next schedule.`,
    );
    expect(refused).toMatchObject({ cause: { name: 'ConditionalCheckFailedException' } });
    expect(next).toEqual({
      owner: 'run-b',
      expiresAt: now + 2 * TTL + 1,
      fence: 2,
      acquiredAt: now + TTL + 1,
    });
    expect(await state.readLease(jobId)).toMatchObject(next);
  });

  it('says "unknown" for when a lease taken before acquiredAt was recorded was taken', async () => {
    const state = store();
    const jobId = newJobId('lease-old');
    const now = Date.now();
    await state.acquireLease(jobId, 'run-a', TTL, now);
    // What a lease written by an older version looks like: no acquiredAt.
    await rawTable().send(
      new UpdateCommand({
        TableName: sandbox.accountB.tableName,
        Key: { pk: `job#${jobId}`, sk: 'lease' },
        UpdateExpression: 'REMOVE acquiredAt',
      }),
    );

    const refused = state.acquireLease(jobId, 'run-b', TTL, now);

    await expect(refused).rejects.toThrow(
      `(run run-a, holding the lease since unknown, until ${iso(now + TTL)}`,
    );
  });

  it('renews to now + ttl for its holder only, and tells a holder that was taken over', async () => {
    const state = store();
    const jobId = newJobId('renew');
    const now = Date.now();
    const lease = await state.acquireLease(jobId, 'run-a', TTL, now);

    const renewed = await state.renewLease(jobId, lease, TTL, now + 30_000);

    expect(renewed).toEqual({ ...lease, expiresAt: now + 30_000 + TTL });
    expect(await state.readLease(jobId)).toMatchObject({ owner: 'run-a', expiresAt: now + 30_000 + TTL });
    await expect(state.acquireLease(jobId, 'run-b', TTL, now + TTL + 1)).rejects.toThrow(
      JobAlreadyRunningError,
    );

    await state.acquireLease(jobId, 'run-b', TTL, now + 30_000 + TTL + 1);
    const lost = await state.renewLease(jobId, renewed, TTL, now + 60_000).catch((e: unknown) => e);

    expect(lost).toBeInstanceOf(LeaseLostError);
    expect((lost as Error).message).toBe(`job ${jobId}: lease taken over by another run; stopping`);
    expect(lost).toMatchObject({ cause: { name: 'ConditionalCheckFailedException' } });
  });

  it('releases the lease for its holder even when it renewed since, and never a later holder’s', async () => {
    const state = store();
    const jobId = newJobId('release');
    const now = Date.now();
    const lease = await state.acquireLease(jobId, 'run-a', TTL, now);
    // The heartbeat renewed it; the run hands back the lease object it started with.
    await state.renewLease(jobId, lease, TTL, now + 1_000);

    await state.releaseLease(jobId, lease);

    expect(await state.readLease(jobId)).toMatchObject({ owner: 'run-a', expiresAt: 0 });
    const next = await state.acquireLease(jobId, 'run-b', TTL, now);
    await state.releaseLease(jobId, lease);
    expect(await state.readLease(jobId)).toMatchObject({ owner: 'run-b', expiresAt: next.expiresAt });
  });

  it('ends a lease for unlock only as it was read, not once its holder renewed it', async () => {
    const state = store();
    const jobId = newJobId('end');
    const now = Date.now();
    const lease = await state.acquireLease(jobId, 'run-a', TTL, now);
    const renewed = await state.renewLease(jobId, lease, TTL, now + 1_000);

    expect(await state.endLease(jobId, lease)).toBe(false);
    expect(await state.readLease(jobId)).toMatchObject({ expiresAt: renewed.expiresAt });
    expect(await state.endLease(jobId, renewed)).toBe(true);
    expect(await state.readLease(jobId)).toMatchObject({ expiresAt: 0 });
  });
});

describe('StateStore checkpoint (DynamoDB Local)', () => {
  it('keeps a newer run’s checkpoint from a stale fence, naming the job, with the refusal as cause', async () => {
    const state = store();
    const jobId = newJobId('checkpoint');
    const newer = { resumeAfter: 'm', lastCompletePass: { runId: 'r2', finishedAt: iso(0) } };

    expect(await state.readCheckpoint(jobId)).toEqual({});
    await state.writeCheckpoint(jobId, newer, 2);
    const stale = await state.writeCheckpoint(jobId, { resumeAfter: 'a' }, 1).catch((e: unknown) => e);

    expect(stale).toBeInstanceOf(LeaseLostError);
    expect((stale as Error).message).toBe(`job ${jobId}: a newer run owns the checkpoint; stopping`);
    expect(stale).toMatchObject({ cause: { name: 'ConditionalCheckFailedException' } });
    expect(await state.readCheckpoint(jobId)).toStrictEqual(newer);
  });
});

const upload = (key: string): MultipartUploadRecord => ({
  key,
  destinationKey: `copies/${key}`,
  uploadId: `upload-of-${key.slice(0, 8)}`,
  runId: 'run-1',
  startedAt: iso(0),
  sourceEtag: '"abc-2"',
  size: 20 * 1024 * 1024,
  partSize: 8 * 1024 * 1024,
  resume: {
    completedParts: 1,
    readStart: 8 * 1024 * 1024,
    sourcePartMd5s: new Uint8Array(16).fill(1),
    cutAt: iso(1),
  },
});

describe('StateStore upload intents, multipart records and run records (DynamoDB Local)', () => {
  it('reads a job’s upload intents in batch order, of one run or all, and deletes the ones asked for', async () => {
    const state = store();
    const jobId = newJobId('intents');
    const intent = (n: number) => ({ since: iso(n), objects: [{ key: `k${n}`, size: n }] });
    await state.putUploadIntent(jobId, 'run1', 10, intent(10));
    await state.putUploadIntent(jobId, 'run1', 2, intent(2));
    await state.putUploadIntent(jobId, 'run10', 1, intent(1));

    const all = await state.readUploadIntents(jobId);
    const ofRun1 = await state.readUploadIntents(jobId, 'run1');
    await state.deleteUploadIntents(jobId, ['intent#run1#000002', 'intent#run10#000001']);
    const left = await state.readUploadIntents(jobId);

    expect(all).toEqual([
      { id: 'intent#run1#000002', ...intent(2) },
      { id: 'intent#run1#000010', ...intent(10) },
      { id: 'intent#run10#000001', ...intent(1) },
    ]);
    expect(ofRun1.map((i) => i.id)).toEqual(['intent#run1#000002', 'intent#run1#000010']);
    expect(left.map((i) => i.id)).toEqual(['intent#run1#000010']);
  });

  it('keeps multipart upload records, even for a 1,024-byte key, until each is deleted', async () => {
    const state = store();
    const jobId = newJobId('uploads');
    const long = upload('x'.repeat(1024));
    const { resume: _resume, ...creating } = { ...upload('k'), uploadId: '' };
    await state.putMultipartUpload(jobId, long);
    await state.putMultipartUpload(jobId, creating);
    await state.putMultipartUpload(jobId, { ...creating, uploadId: 'created' });

    const both = await state.readMultipartUploads(jobId);
    await state.deleteMultipartUpload(jobId, long.key);
    const left = await state.readMultipartUploads(jobId);

    expect(both).toHaveLength(2);
    expect(both).toContainEqual(long);
    expect(left).toEqual([{ ...creating, uploadId: 'created' }]);
  });

  it('returns the newest run records first, and only run records', async () => {
    const state = store();
    const jobId = newJobId('runs');
    const run = (n: number) => ({ runId: `r${n}`, startedAt: iso(n * 1000), status: 'complete' });
    for (const n of [2, 1, 3]) await state.putRunRecord(jobId, run(n));
    // Items that sort after "run#" in the same partition.
    await state.putMultipartUpload(jobId, upload('k'));
    await state.putUploadIntent(jobId, 'r3', 1, { since: iso(0), objects: [] });

    const newest = await state.recentRuns(jobId, 2);
    const all = await state.recentRuns(jobId);

    expect(newest).toMatchObject([run(3), run(2)]);
    expect(all).toMatchObject([run(3), run(2), run(1)]);
    expect(all).toHaveLength(3);
  });

  it('knows a job by its ledger alone or by its lease alone, and not a job it never saw', async () => {
    const state = store();
    const ledgerOnly = newJobId('known-ledger');
    const leaseOnly = newJobId('known-lease');
    await state.putLedgerEntry(ledgerOnly, { key: 'k' }, 1);
    await state.acquireLease(leaseOnly, 'run', TTL);

    expect(await state.hasJobRecords(ledgerOnly)).toBe(true);
    expect(await state.hasJobRecords(leaseOnly)).toBe(true);
    expect(await state.hasJobRecords(newJobId('unknown'))).toBe(false);
  });

  it('samples the job ids of a table from its job and ledger items, and says when it read it all', async () => {
    const table = `state-store-sample-${randomBytes(3).toString('hex')}`;
    await createStateTable(sandbox, table);
    const state = store(table);
    await state.acquireLease('job-b', 'run', TTL);
    await state.putLedgerEntry('job-a', { key: 'k' }, 1);
    await state.putLedgerEntry('job-a', { key: 'l' }, 1);
    // An item of no job: another tool's, sharing the table.
    await rawTable().send(new PutCommand({ TableName: table, Item: { pk: 'settings#global', sk: 'x' } }));

    expect(await state.sampleJobIds(100)).toEqual({ jobIds: ['job-a', 'job-b'], complete: true });
    expect(await state.sampleJobIds(2)).toMatchObject({ complete: false });
  });
});

describe('StateStore errors (DynamoDB Local)', () => {
  const lease = { owner: 'run', expiresAt: 1, fence: 1 };
  const operations: [string, (state: StateStore) => Promise<unknown>][] = [
    ['ledger (Query)', (state) => collect(state.ledger('job'))],
    ['ledgerFailures (Query)', (state) => collect(state.ledgerFailures('job'))],
    ['putLedgerEntry (PutItem)', (state) => state.putLedgerEntry('job', { key: 'k' }, 1)],
    ['deleteLedgerEntry (DeleteItem)', (state) => state.deleteLedgerEntry('job', 'k', 1)],
    ['acquireLease (UpdateItem)', (state) => state.acquireLease('job', 'run', TTL)],
    ['renewLease (UpdateItem)', (state) => state.renewLease('job', lease, TTL)],
    ['releaseLease (UpdateItem)', (state) => state.releaseLease('job', lease)],
    ['endLease (UpdateItem)', (state) => state.endLease('job', lease)],
    ['readLease (GetItem)', (state) => state.readLease('job')],
    ['readCheckpoint (GetItem)', (state) => state.readCheckpoint('job')],
    ['writeCheckpoint (PutItem)', (state) => state.writeCheckpoint('job', {}, 1)],
    [
      'putUploadIntent (PutItem)',
      (state) => state.putUploadIntent('job', 'run', 1, { since: iso(0), objects: [] }),
    ],
    ['readUploadIntents (Query)', (state) => state.readUploadIntents('job')],
    ['deleteUploadIntents (DeleteItem)', (state) => state.deleteUploadIntents('job', ['intent#run#000001'])],
    ['putRunRecord (PutItem)', (state) => state.putRunRecord('job', { runId: 'r', startedAt: iso(0) })],
    ['recentRuns (Query)', (state) => state.recentRuns('job')],
    ['putMultipartUpload (PutItem)', (state) => state.putMultipartUpload('job', upload('k'))],
    ['readMultipartUploads (Query)', (state) => state.readMultipartUploads('job')],
    ['deleteMultipartUpload (DeleteItem)', (state) => state.deleteMultipartUpload('job', 'k')],
    ['hasJobRecords (Query)', (state) => state.hasJobRecords('job')],
    ['sampleJobIds (Scan)', (state) => state.sampleJobIds(10)],
  ];

  it('names the table, the operation and the fix when the table does not exist, for every operation', async () => {
    const state = store('no-such-table');

    for (const [operation, act] of operations) {
      const error = await act(state).then(
        () => expect.fail(`${operation} did not fail`),
        (e: unknown) => e,
      );

      expect(error, operation).toBeInstanceOf(StateStoreError);
      expect(error, operation).toMatchObject({
        table: 'no-such-table',
        operation,
        cause: { name: 'ResourceNotFoundException' },
      });
      expect((error as Error).message).toMatch(
        new RegExp(
          `^state table "no-such-table": ${operation.replace(/[()]/g, '\\$&')} failed: .*` +
            'Check STATE_TABLE_NAME and the region: the table does not exist there$',
        ),
      );
    }
  });

  it('says to check that DynamoDB is reachable when nothing answers', async () => {
    const client = new DynamoDBClient({
      region: sandbox.region,
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
    const state = new StateStore(client, 'table');

    const error = await state.readLease('job').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StateStoreError);
    expect((error as Error).message).toMatch(
      /^state table "table": readLease \(GetItem\) failed: .*ECONNREFUSED.*\. Check that DynamoDB is reachable from here \(endpoint, region, network\) and the table exists$/,
    );
  });
});
