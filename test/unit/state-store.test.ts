import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import { StateStoreError } from '../../functions/core/errors.js';
import { type LedgerEntry, StateStore } from '../../functions/core/state/state-store.js';

const dynamoMock = mockClient(DynamoDBDocumentClient);
const store = () => new StateStore(new DynamoDBClient({ region: 'us-east-1' }), 'table');

/** Writes `entry`, then reads back the item that write stored. */
async function roundTrip(
  entry: LedgerEntry,
): Promise<{ stored: Record<string, unknown>; read: LedgerEntry[] }> {
  await store().putLedgerEntry('job', entry, 7);
  const stored = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input.Item ?? {};
  dynamoMock.on(QueryCommand).resolves({ Items: [stored] });
  const read: LedgerEntry[] = [];
  for await (const item of store().ledger('job')) read.push(item);
  return { stored, read };
}

describe('StateStore ledger items', () => {
  beforeEach(() => {
    dynamoMock.reset();
    dynamoMock.on(PutCommand).resolves({});
  });

  it('stores a copied entry compactly and reads back exactly what was written', async () => {
    const entry: LedgerEntry = {
      key: 'data/2026/part-00001.json',
      etag: '"0123456789abcdef0123456789abcdef"',
      size: 12,
      lastModified: '2026-11-29T10:00:00.000Z',
      sha256: Buffer.alloc(32, 7).toString('base64'),
      destinationKey: 'copies/2026/part-00001.json',
      destinationEtag: '0123456789abcdef0123456789abcdef',
      verifiedBy: 'etag-md5',
      copiedAt: '2026-11-29T10:01:00.000Z',
      runId: '20261129T100000Z-abcdef',
    };

    const { stored, read } = await roundTrip(entry);

    expect(read).toEqual([entry]);
    expect(stored).toMatchObject({
      pk: 'ledger#job',
      sk: entry.key,
      fence: 7,
      etag: entry.etag,
      dk: '4|copies',
    });
    expect(stored.de).toBeUndefined();
  });

  it('keeps a destination ETag that differs, and an entry without one', async () => {
    const multipart = { key: 'a', etag: '"aa-2"', size: 1, destinationEtag: 'bb-3' };
    const failedFirstCopy = {
      key: 'b',
      etag: '"cc"',
      failure: { reason: 'x', attempts: 1, at: '2026-11-29T10:00:00.000Z', etag: '"cc"' },
    };

    expect((await roundTrip(multipart)).read).toEqual([multipart]);
    dynamoMock.reset();
    dynamoMock.on(PutCommand).resolves({});
    expect((await roundTrip(failedFirstCopy)).read).toEqual([failedFirstCopy]);
  });

  it('keeps fields it has no compact form for under their own names', async () => {
    const entry = { key: 'k', etag: '"e"', size: 1, resume: { uploadId: 'u', parts: 3 } } as LedgerEntry;

    const { stored, read } = await roundTrip(entry);

    expect(stored).toMatchObject({ resume: { uploadId: 'u', parts: 3 } });
    expect(read).toEqual([entry]);
  });

  it('still reads items written with the long attribute names', async () => {
    const old = {
      pk: 'ledger#job',
      sk: 'k',
      fence: 1,
      etag: '"e"',
      size: 3,
      destinationKey: 'k',
      runId: 'r',
    };
    dynamoMock.on(QueryCommand).resolves({ Items: [old] });

    const read: LedgerEntry[] = [];
    for await (const item of store().ledger('job')) read.push(item);

    expect(read).toEqual([{ key: 'k', etag: '"e"', size: 3, destinationKey: 'k', runId: 'r' }]);
  });

  it('names the table and the operation when DynamoDB cannot be reached, keeping the cause', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' });
    dynamoMock.on(PutCommand).rejects(refused);

    const error = await store()
      .putLedgerEntry('job', { key: 'k' }, 1)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StateStoreError);
    expect(error).toMatchObject({ table: 'table', operation: 'putLedgerEntry (PutItem)', cause: refused });
    expect((error as Error).message).toMatch(
      /^state table "table": putLedgerEntry \(PutItem\) failed: connect ECONNREFUSED/,
    );
    expect(exitCodeFor(error)).toBe(EXIT.unexpected);
  });

  it('says a missing table is missing, and the CLI counts it as an access problem', async () => {
    dynamoMock
      .on(QueryCommand)
      .rejects(
        Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' }),
      );

    const error = await store()
      .readUploadIntents('job')
      .catch((e: unknown) => e);

    expect((error as Error).message).toMatch(/readUploadIntents \(Query\) failed.*the table does not exist/);
    expect(exitCodeFor(error)).toBe(EXIT.access);
  });
});

describe('StateStore ledger items, compactly', () => {
  beforeEach(() => {
    dynamoMock.reset();
    dynamoMock.on(PutCommand).resolves({});
  });

  it('stores an entry with nothing copied yet as its key and fence alone', async () => {
    const { stored, read } = await roundTrip({ key: 'k' });

    expect(stored).toEqual({ pk: 'ledger#job', sk: 'k', fence: 7 });
    expect(read).toStrictEqual([{ key: 'k' }]);
  });

  it('reads back exactly the fields written, with no absent field present as undefined', async () => {
    const entry: LedgerEntry = { key: 'k', etag: '"e"', size: 0, destinationEtag: 'other' };

    expect((await roundTrip(entry)).read).toStrictEqual([entry]);
  });

  it('strips only the quotes around an ETag, keeping one inside it', async () => {
    const entry: LedgerEntry = { key: 'k', etag: '"a"b"', size: 1, destinationEtag: 'a"b' };

    expect((await roundTrip(entry)).read).toStrictEqual([entry]);
  });

  it.each(['size', 'lastModified', 'sha256', 'destinationKey', 'runId'])(
    'reads an item written with the long names when %s is the only long name in it',
    async (name) => {
      const value = name === 'size' ? 3 : name === 'lastModified' ? '2026-01-01T00:00:00.000Z' : 'v';
      dynamoMock
        .on(QueryCommand)
        .resolves({ Items: [{ pk: 'ledger#job', sk: 'k', fence: 1, [name]: value }] });

      const read: LedgerEntry[] = [];
      for await (const item of store().ledger('job')) read.push(item);

      expect(read).toEqual([{ key: 'k', [name]: value }]);
    },
  );
});

describe('StateStore requests', () => {
  beforeEach(() => dynamoMock.reset());

  it('reads the lease and the checkpoint strongly consistent, so a write just made is seen', async () => {
    dynamoMock.on(GetCommand).resolves({});

    await store().readLease('job');
    await store().readCheckpoint('job');

    expect(dynamoMock).toHaveReceivedCommandWith(GetCommand, {
      Key: { pk: 'job#job', sk: 'lease' },
      ConsistentRead: true,
    });
    expect(dynamoMock).toHaveReceivedCommandWith(GetCommand, {
      Key: { pk: 'job#job', sk: 'checkpoint' },
      ConsistentRead: true,
    });
  });

  it('names the holder and its times as unknown when the refusing lease is gone by the time it is read', async () => {
    dynamoMock
      .on(UpdateCommand)
      .rejects(new ConditionalCheckFailedException({ message: 'refused', $metadata: {} }));
    dynamoMock.on(GetCommand).resolves({});

    const refused = store().acquireLease('job', 'run-b', 60_000);

    await expect(refused).rejects.toThrow(
      'job job is already running (run unknown, holding the lease since unknown, until unknown unless it renews it)',
    );
  });

  it('does not leave a failed read-ahead page unhandled when the reader stops early', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    dynamoMock
      .on(QueryCommand)
      .resolvesOnce({
        Items: [{ pk: 'ledger#job', sk: 'a' }],
        LastEvaluatedKey: { pk: 'ledger#job', sk: 'a' },
      })
      .rejects(new Error('connection reset'));

    try {
      for await (const entry of store().ledger('job')) if (entry.key === 'a') break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }

    expect(dynamoMock).toHaveReceivedCommandTimes(QueryCommand, 2);
    expect(unhandled).toEqual([]);
  });
});

describe('StateStore pagination', () => {
  beforeEach(() => dynamoMock.reset());
  const more = (sk: string) => ({ LastEvaluatedKey: { pk: 'p', sk } });

  it('lists the failures of every page of the ledger', async () => {
    const failure = { reason: 'x', attempts: 1, at: '2026-01-01T00:00:00.000Z' };
    dynamoMock
      .on(QueryCommand)
      .resolvesOnce({ Items: [{ sk: 'a', failure }], ...more('a') })
      .resolvesOnce({ Items: [], ...more('b') })
      .resolvesOnce({ Items: [{ sk: 'c', failure }] });

    const failures = [];
    for await (const item of store().ledgerFailures('job')) failures.push(item);

    expect(failures).toEqual([
      { key: 'a', failure },
      { key: 'c', failure },
    ]);
    expect(dynamoMock).toHaveReceivedNthCommandWith(QueryCommand, 3, {
      ExclusiveStartKey: { pk: 'p', sk: 'b' },
    });
  });

  it('reads the upload intents and multipart records of every page', async () => {
    const intent = (sk: string) => ({ pk: 'job#job', sk, since: 's', objects: [] });
    const upload = (key: string) => ({ pk: 'job#job', sk: `upload#${key}`, key, uploadId: 'u' });
    dynamoMock
      .on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'job#job', ':intent': 'intent#' } })
      .resolvesOnce({ Items: [intent('intent#r#000001')], ...more('1') })
      .resolvesOnce({ Items: [intent('intent#r#000002')] })
      .on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'job#job', ':upload': 'upload#' } })
      .resolvesOnce({ Items: [upload('a')], ...more('a') })
      .resolvesOnce({ Items: [upload('b')] });

    const intents = await store().readUploadIntents('job');
    const uploads = await store().readMultipartUploads('job');

    expect(intents.map((i) => i.id)).toEqual(['intent#r#000001', 'intent#r#000002']);
    expect(uploads).toEqual([
      { key: 'a', uploadId: 'u' },
      { key: 'b', uploadId: 'u' },
    ]);
  });

  it('samples job ids over pages, reading no more than maxItems in all', async () => {
    dynamoMock
      .on(ScanCommand)
      .resolvesOnce({ Items: [{ pk: 'job#a' }, { pk: 'ledger#b' }], ...more('1') })
      .resolvesOnce({ Items: [{ pk: 'ledger#c' }, { pk: 'settings#global' }], ...more('2') })
      .resolvesOnce({ Items: [{ pk: 'job#d' }] });

    const sample = await store().sampleJobIds(5);

    expect(sample).toEqual({ jobIds: ['a', 'b', 'c', 'd'], complete: true });
    expect(dynamoMock.commandCalls(ScanCommand).map((call) => call.args[0].input.Limit)).toEqual([5, 3, 1]);
  });
});
