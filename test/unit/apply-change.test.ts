import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { applyChange, type ChangeDependencies } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { parseJob } from '../../functions/core/job.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';

const sourceS3 = new S3Client({ region: 'us-east-1' });
const destinationS3 = new S3Client({ region: 'us-east-1', requestChecksumCalculation: 'WHEN_REQUIRED' });
const s3Mock = mockClient(S3Client);

const md5 = (data: string) => createHash('md5').update(data).digest('hex');
const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

const job = (mirror = false) =>
  parseJob({
    jobId: 'events',
    source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'src', prefix: 'in/' },
    destination: { bucket: 'dst', prefix: 'out/' },
    options: { mirror },
  });

const change = (overrides: Partial<ObjectChange> = {}): ObjectChange => ({
  eventId: 'event-1',
  bucket: 'src',
  key: 'in/a.txt',
  change: 'created',
  sequencer: '0062E99A88DC407460',
  eventTime: new Date('2026-12-03T06:00:00Z'),
  ...overrides,
});

/** A ledger held in memory, refusing writes as the state table's conditions do (sequencer only). */
function fakeState(entries: LedgerEntry[] = []) {
  const ledger = new Map(entries.map((entry) => [entry.key, entry]));
  const writes: LedgerEntry[] = [];
  const marks = new Map<string, string>();
  const state: ChangeDependencies['state'] = {
    readLease: async () => ({ owner: 'pass', expiresAt: 0, fence: 3 }),
    ledgerEntry: async (_jobId, key) => ledger.get(key),
    putLedgerEntryInOrder: async (_jobId, entry) => {
      const stored = ledger.get(entry.key)?.sequencer;
      if (stored !== undefined && stored >= entry.sequencer) return 'stale';
      ledger.set(entry.key, entry);
      writes.push(entry);
      return 'recorded';
    },
    // Marks only an entry still as read, as markDeletion's condition does; the mark is kept beside the ledger.
    markDeletion: async (_jobId, read) => {
      const stored = ledger.get(read.key);
      if (stored !== read || marks.has(read.key)) return { marked: false, now: stored };
      marks.set(read.key, 'token');
      return { marked: true, token: 'token' };
    },
    clearDeletionMark: async (_jobId, key) => {
      marks.delete(key);
    },
    putMultipartUpload: async () => {},
    deleteMultipartUpload: async () => {},
  };
  return { state, ledger, writes, marks };
}

describe('applyChange', () => {
  beforeEach(() => s3Mock.reset());

  it('skips a key outside the job’s source prefix without reading the source', async () => {
    const { state, writes } = fakeState();

    const outcome = await applyChange(
      { sourceS3, destinationS3, state },
      job(),
      change({ key: 'elsewhere/a.txt' }),
    );

    expect(outcome).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/outside .*"in\/"/) });
    expect(s3Mock).not.toHaveReceivedCommand(HeadObjectCommand);
    expect(writes).toHaveLength(0);
  });

  it('keeps the destination copy of a deleted key when the job does not mirror', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    const { state, writes } = fakeState([
      { key: 'in/a.txt', etag: '"e1"', destinationKey: 'out/a.txt', destinationEtag: 'e1' },
    ]);

    const outcome = await applyChange(
      { sourceS3, destinationS3, state },
      job(false),
      change({ change: 'deleted' }),
    );

    expect(outcome).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/not mirrored/) });
    expect(s3Mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(writes).toHaveLength(0);
  });

  it('deletes a mirror job’s copy only if it is the one the ledger records, then marks the key', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    s3Mock.on(DeleteObjectCommand).resolves({});
    const { state, ledger } = fakeState([
      { key: 'in/a.txt', etag: '"e1"', destinationKey: 'out/a.txt', destinationEtag: 'e1' },
    ]);

    const outcome = await applyChange(
      { sourceS3, destinationS3, state },
      job(true),
      change({ change: 'deleted' }),
      { now: () => new Date('2026-12-03T06:00:02Z') },
    );

    expect(outcome).toEqual({ outcome: 'deleted', key: 'in/a.txt', lagMs: 2000 });
    expect(s3Mock).toHaveReceivedCommandWith(DeleteObjectCommand, {
      Bucket: 'dst',
      Key: 'out/a.txt',
      IfMatch: '"e1"',
    });
    expect(ledger.get('in/a.txt')).toEqual({
      key: 'in/a.txt',
      sequencer: storedSequencer(change().sequencer),
    });
  });

  it('keeps a mirror job’s copy when the deletion cap says no, and records nothing', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    const { state, writes } = fakeState([
      { key: 'in/a.txt', etag: '"e1"', destinationKey: 'out/a.txt', destinationEtag: 'e1' },
    ]);

    const outcome = await applyChange(
      { sourceS3, destinationS3, state },
      job(true),
      change({ change: 'deleted' }),
      {
        mayDelete: async () => ({
          granted: false,
          reason: 'the cap (options.maxDeletesPerRun 100) is spent',
        }),
      },
    );

    expect(outcome).toEqual({
      outcome: 'skipped',
      key: 'in/a.txt',
      reason: 'the cap (options.maxDeletesPerRun 100) is spent',
    });
    expect(s3Mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(writes).toHaveLength(0);
  });

  it('fails, deleting and recording nothing, when the deletion cap cannot be read', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    const { state, writes } = fakeState([
      { key: 'in/a.txt', etag: '"e1"', destinationKey: 'out/a.txt', destinationEtag: 'e1' },
    ]);

    const applying = applyChange(
      { sourceS3, destinationS3, state },
      job(true),
      change({ change: 'deleted' }),
      {
        mayDelete: () => Promise.reject(new Error('state table "state": unreachable')),
      },
    );

    await expect(applying).rejects.toThrow('unreachable');
    expect(s3Mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(writes).toHaveLength(0);
  });

  it('asks the deletion cap only for a deletion it is about to make, once', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    s3Mock.on(DeleteObjectCommand).resolves({});
    const { state } = fakeState([
      { key: 'in/a.txt', etag: '"e1"', destinationKey: 'out/a.txt', destinationEtag: 'e1' },
      { key: 'in/never-copied.txt' },
    ]);
    let asked = 0;
    const mayDelete = async () => {
      asked += 1;
      return { granted: true } as const;
    };

    const deleted = await applyChange(
      { sourceS3, destinationS3, state },
      job(true),
      change({ change: 'deleted' }),
      {
        mayDelete,
      },
    );
    const notCopied = await applyChange(
      { sourceS3, destinationS3, state },
      job(true),
      change({ change: 'deleted', key: 'in/never-copied.txt' }),
      { mayDelete },
    );
    const notMirrored = await applyChange(
      { sourceS3, destinationS3, state },
      job(false),
      change({ change: 'deleted' }),
      {
        mayDelete,
      },
    );

    expect([deleted.outcome, notCopied.outcome, notMirrored.outcome]).toEqual([
      'deleted',
      'skipped',
      'skipped',
    ]);
    expect(asked).toBe(1);
  });

  it('leaves a mirror job’s destination object the ledger does not record, failing retryably', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    s3Mock.on(DeleteObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const { state, writes } = fakeState([
      { key: 'in/a.txt', etag: '"e1"', destinationKey: 'out/a.txt', destinationEtag: 'e1' },
    ]);

    const applied = applyChange({ sourceS3, destinationS3, state }, job(true), change({ change: 'deleted' }));

    await expect(applied).rejects.toMatchObject({
      name: 'ObjectCopyError',
      retryable: true,
      message: expect.stringMatching(/out\/a\.txt is not the copy the ledger records/),
    });
    expect(writes).toHaveLength(0);
  });

  it('fails retryably when the source changes between its HEAD and its GET, and records nothing', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5('v1')}"`, ContentLength: 2 });
    s3Mock.on(GetObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const { state, writes } = fakeState();

    const applied = applyChange({ sourceS3, destinationS3, state }, job(), change());

    await expect(applied).rejects.toMatchObject({
      name: 'ObjectCopyError',
      retryable: true,
      message: expect.stringMatching(/changed between its HEAD and its GET/),
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(writes).toHaveLength(0);
  });

  it('refuses, before any read of the bytes, a change older than one the ledger recorded', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5('v3')}"`, ContentLength: 2 });
    const { state, writes } = fakeState([
      {
        key: 'in/a.txt',
        etag: '"v2"',
        destinationEtag: 'v2',
        sequencer: storedSequencer('0062E99A88DC407470'),
      },
    ]);

    const outcome = await applyChange({ sourceS3, destinationS3, state }, job(), change());

    expect(outcome).toMatchObject({ outcome: 'stale' });
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
    expect(writes).toHaveLength(0);
  });

  describe('when the destination holds an object the ledger does not record', () => {
    const data = 'v1';
    const later = storedSequencer('0062E99A88DC407470');
    beforeEach(() => {
      s3Mock.on(HeadObjectCommand, { Bucket: 'src' }).resolves({ ETag: `"${md5(data)}"`, ContentLength: 2 });
      s3Mock.on(HeadObjectCommand, { Bucket: 'dst' }).resolves({ ETag: '"other"', ContentLength: 5 });
      s3Mock
        .on(GetObjectCommand)
        .callsFake(() => ({ Body: sdkStreamMixin(Readable.from([Buffer.from(data)])) }));
      // The key is taken: only a write conditional on exactly what is there goes through.
      s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
      s3Mock.on(PutObjectCommand, { IfMatch: '"other"' }).resolves({ ETag: `"${md5(data)}"` });
    });

    it.each([true, false])(
      'leaves it when a racing worker recorded a later change meanwhile (mirror %s)',
      async (mirror) => {
        const { state, ledger, writes } = fakeState();
        const read = state.ledgerEntry;
        // The racing worker records its change once this copy's write has been refused.
        state.ledgerEntry = async (jobId, key) => {
          const found = await read(jobId, key);
          ledger.set(key, { key, etag: '"v2"', destinationEtag: 'other', sequencer: later });
          return found;
        };

        const outcome = await applyChange({ sourceS3, destinationS3, state }, job(mirror), change());

        expect(outcome).toMatchObject({ outcome: 'stale' });
        expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
        expect(writes).toHaveLength(0);
      },
    );

    it('replaces it in a mirror job once no later change is recorded, conditional on what it found', async () => {
      const { state, ledger } = fakeState();

      const outcome = await applyChange({ sourceS3, destinationS3, state }, job(true), change());

      expect(outcome).toMatchObject({ outcome: 'copied' });
      expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { IfMatch: '"other"' });
      expect(ledger.get('in/a.txt')).toMatchObject({ destinationEtag: md5(data) });
    });

    it('fails without replacing it in a job that does not mirror', async () => {
      const { state, writes } = fakeState();

      const applied = applyChange({ sourceS3, destinationS3, state }, job(false), change());

      await expect(applied).rejects.toThrow(/holds an object this sync did not write/);
      expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
      expect(writes).toHaveLength(0);
    });
  });

  it('copies the version the source holds now, pinned to its ETag, and records it with the sequencer', async () => {
    const data = 'v1';
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5(data)}"`, ContentLength: data.length });
    s3Mock.on(GetObjectCommand).resolves({ Body: sdkStreamMixin(Readable.from([Buffer.from(data)])) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });
    const { state, ledger } = fakeState();

    const outcome = await applyChange({ sourceS3, destinationS3, state }, job(), change(), {
      now: () => new Date('2026-12-03T06:00:01.500Z'),
    });

    expect(outcome).toEqual({ outcome: 'copied', key: 'in/a.txt', bytes: 2, lagMs: 1500 });
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, { IfMatch: `"${md5(data)}"` });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: 'out/a.txt', IfNoneMatch: '*' });
    expect(ledger.get('in/a.txt')).toMatchObject({
      etag: `"${md5(data)}"`,
      destinationEtag: md5(data),
      sequencer: storedSequencer(change().sequencer),
    });
  });

  it('defers, writing nothing, a change of the version a deletion holding the key is deleting', async () => {
    const data = 'v1';
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5(data)}"`, ContentLength: data.length });
    const held = {
      key: 'in/a.txt',
      etag: `"${md5(data)}"`,
      destinationKey: 'out/a.txt',
      deletingBy: 'deleter',
      deletingUntil: Date.now() + 60_000,
    };
    const { state, writes } = fakeState([held]);

    const applied = applyChange({ sourceS3, destinationS3, state }, job(true), change());

    await expect(applied).rejects.toMatchObject({
      name: 'ObjectCopyError',
      retryable: true,
      message: expect.stringMatching(/a deletion of its copy is under way/),
    });
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(writes).toHaveLength(0);
  });

  it('records the sequencer of a change whose version the ledger already records as copied', async () => {
    const data = 'v1';
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5(data)}"`, ContentLength: data.length });
    const copied = {
      key: 'in/a.txt',
      etag: `"${md5(data)}"`,
      destinationKey: 'out/a.txt',
      copiedAt: '2026-12-03T05:00:00.000Z',
    };
    const { state, ledger } = fakeState([copied]);

    const outcome = await applyChange({ sourceS3, destinationS3, state }, job(true), change());

    expect(outcome).toMatchObject({ outcome: 'up-to-date' });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(ledger.get('in/a.txt')).toEqual({ ...copied, sequencer: storedSequencer(change().sequencer) });
  });

  it('deletes nothing, failing retryably, when its ledger entry moved before the deletion could mark it', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    const recorded = { key: 'in/a.txt', etag: '"e1"', destinationKey: 'out/a.txt', destinationEtag: 'e1' };
    const { state, writes, marks } = fakeState([recorded]);
    marks.set('in/a.txt', 'another deleter');

    const applied = applyChange({ sourceS3, destinationS3, state }, job(true), change({ change: 'deleted' }));

    await expect(applied).rejects.toMatchObject({ name: 'ObjectCopyError', retryable: true });
    expect(s3Mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(writes).toHaveLength(0);
  });
});
