import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanOrphanUploads } from '../../functions/core/copy/clean-orphan-uploads.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import type { MultipartUploadRecord, StateStore } from '../../functions/core/state/state-store.js';

const s3 = new S3Client({ region: 'us-east-1' });
const s3Mock = mockClient(S3Client);
const job: Job = parseJob({
  jobId: 'orphans',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'src' },
  destination: { bucket: 'dst', prefix: 'copy/' },
});
const startedAt = '2025-01-01T00:00:00.000Z';
const at = (offsetMs: number) => new Date(Date.parse(startedAt) + offsetMs);

function record(overrides: Partial<MultipartUploadRecord> = {}): MultipartUploadRecord {
  return {
    key: 'big.bin',
    destinationKey: 'copy/big.bin',
    uploadId: 'ours',
    runId: 'earlier',
    startedAt,
    sourceEtag: '"e-2"',
    size: 20,
    partSize: 10,
    ...overrides,
  };
}

function stateHolding(records: MultipartUploadRecord[]) {
  return {
    readMultipartUploads: vi.fn(async () => records),
    deleteMultipartUpload: vi.fn(async () => {}),
  };
}

const clean = (records: MultipartUploadRecord[], keepContinuable = true) => {
  const state = stateHolding(records);
  const result = cleanOrphanUploads(s3, state as unknown as StateStore, job, { keepContinuable });
  return { state, result };
};

const listed = (...uploads: { UploadId?: string; Key: string; Initiated?: Date }[]) =>
  s3Mock.on(ListMultipartUploadsCommand).resolves({ Uploads: uploads });
const abortedIds = () =>
  s3Mock.commandCalls(AbortMultipartUploadCommand).map((call) => call.args[0].input.UploadId);

describe('cleanOrphanUploads', () => {
  beforeEach(() => {
    s3Mock.reset();
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
  });

  it('makes no request to S3 when no upload is on record', async () => {
    const { result } = clean([]);

    expect(await result).toEqual({ aborted: 0, continuable: new Map() });
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('aborts an upload on record that S3 still lists at its key, and forgets it', async () => {
    listed({ UploadId: 'ours', Key: 'copy/big.bin' }, { UploadId: 'foreign', Key: 'copy/big.bin' });

    const { state, result } = clean([record()]);

    expect((await result).aborted).toBe(1);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, {
      Bucket: 'dst',
      Key: 'copy/big.bin',
      UploadId: 'ours',
    });
    expect(abortedIds()).toEqual(['ours']);
    expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', undefined);
  });

  it("aborts each fan-out delivery's upload of one key and forgets each delivery's own record", async () => {
    listed({ UploadId: 'first', Key: 'copy/big.bin' }, { UploadId: 'second', Key: 'copy/big.bin' });

    const { state, result } = clean([
      record({ uploadId: 'first', delivery: 'worker-1' }),
      record({ uploadId: 'second', delivery: 'worker-2' }),
    ]);

    expect((await result).aborted).toBe(2);
    expect(abortedIds().sort()).toEqual(['first', 'second']);
    expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', 'worker-1');
    expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', 'worker-2');
  });

  it('lists only under the destination prefix, page after page', async () => {
    s3Mock
      .on(ListMultipartUploadsCommand)
      .resolvesOnce({
        Uploads: [{ UploadId: 'foreign', Key: 'copy/a' }],
        IsTruncated: true,
        NextKeyMarker: 'copy/a',
        NextUploadIdMarker: 'foreign',
      })
      .resolves({ Uploads: [{ UploadId: 'ours', Key: 'copy/big.bin' }] });

    const { result } = clean([record()]);

    expect((await result).aborted).toBe(1);
    expect(s3Mock.commandCalls(ListMultipartUploadsCommand).map((call) => call.args[0].input)).toEqual([
      { Bucket: 'dst', Prefix: 'copy/', KeyMarker: undefined, UploadIdMarker: undefined },
      { Bucket: 'dst', Prefix: 'copy/', KeyMarker: 'copy/a', UploadIdMarker: 'foreign' },
    ]);
  });

  it('keeps an upload a deadline cut for this run to continue, on record', async () => {
    listed({ UploadId: 'ours', Key: 'copy/big.bin' });
    const cut = record({ resume: { completedParts: 1, readStart: 0, cutAt: startedAt } });

    const { state, result } = clean([cut]);

    expect(await result).toEqual({ aborted: 0, continuable: new Map([['big.bin', cut]]) });
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
    expect(state.deleteMultipartUpload).not.toHaveBeenCalled();
  });

  it.each([
    { case: 'S3 no longer lists', uploads: [] },
    { case: 'S3 lists at another key', uploads: [{ UploadId: 'ours', Key: 'copy/other.bin' }] },
  ])('forgets, without aborting or continuing it, a cut upload that $case', async ({ uploads }) => {
    listed(...uploads);
    const cut = record({ resume: { completedParts: 1, readStart: 0, cutAt: startedAt } });

    const { state, result } = clean([cut]);

    expect(await result).toEqual({ aborted: 0, continuable: new Map() });
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
    expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', undefined);
  });

  it('aborts an upload a deadline cut when the run will not continue it', async () => {
    listed({ UploadId: 'ours', Key: 'copy/big.bin' });
    const cut = record({ resume: { completedParts: 1, readStart: 0, cutAt: startedAt } });

    const { state, result } = clean([cut], false);

    expect(await result).toEqual({ aborted: 1, continuable: new Map() });
    expect(abortedIds()).toEqual(['ours']);
    expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', undefined);
  });

  it.each([
    ['S3 no longer lists it', []],
    ['S3 lists its id at another key', [{ UploadId: 'ours', Key: 'copy/other.bin' }]],
  ])('forgets, and aborts nothing, when %s', async (_why, uploads) => {
    listed(...uploads);

    const { state, result } = clean([
      record({ resume: { completedParts: 1, readStart: 0, cutAt: startedAt } }),
    ]);

    expect(await result).toEqual({ aborted: 0, continuable: new Map() });
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
    expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', undefined);
  });

  describe('for a record without an upload id (a run died while creating it)', () => {
    it('aborts the first upload at its key initiated since the record, less a second, and forgets the record', async () => {
      listed(
        { UploadId: 'later', Key: 'copy/big.bin', Initiated: at(500) },
        { UploadId: 'edge', Key: 'copy/big.bin', Initiated: at(-1_000) },
      );

      const { state, result } = clean([record({ uploadId: '' })]);

      expect((await result).aborted).toBe(1);
      expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, {
        Bucket: 'dst',
        Key: 'copy/big.bin',
        UploadId: 'edge',
      });
      expect(abortedIds()).toEqual(['edge']);
      expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', undefined);
    });

    it('aborts nothing S3 lists without an upload id', async () => {
      listed({ Key: 'copy/big.bin', Initiated: at(10) });

      const { result } = clean([record({ uploadId: '' })]);

      expect((await result).aborted).toBe(0);
      expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
    });

    it('leaves uploads started earlier, at other keys, or on another record', async () => {
      listed(
        { UploadId: 'older', Key: 'copy/big.bin', Initiated: at(-1_001) },
        { UploadId: 'elsewhere', Key: 'copy/other.bin', Initiated: at(10) },
        { UploadId: 'recorded', Key: 'copy/big.bin', Initiated: at(20) },
      );
      const other = record({
        key: 'other',
        uploadId: 'recorded',
        resume: { completedParts: 1, readStart: 0, cutAt: startedAt },
      });

      const { state, result } = clean([record({ uploadId: '' }), other]);

      expect((await result).aborted).toBe(0);
      expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
      expect(state.deleteMultipartUpload).toHaveBeenCalledWith('orphans', 'big.bin', undefined);
    });
  });
});
