import { createHash } from 'node:crypto';
import { AbortMultipartUploadCommand, ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { CopyRequest } from '../../functions/core/copy/copy-object.js';
import {
  boundaryFinder,
  continuableUpload,
  keepForNextRun,
} from '../../functions/core/copy/resume-multipart.js';
import type { PartDigest, UploadProgress } from '../../functions/core/copy/upload-parts.js';
import { type SourceCheck, VerifyStream } from '../../functions/core/copy/verify-stream.js';
import type { MultipartUploadRecord } from '../../functions/core/state/state-store.js';

const s3 = new S3Client({ region: 'us-east-1' });
const s3Mock = mockClient(S3Client);
const etag = '"0123456789abcdef0123456789abcdef"';
const partEtag = '"fedcba9876543210fedcba9876543210"';
const plan = { partSize: 10, partCount: 3, queueSize: 1 };
const request: CopyRequest = {
  sourceBucket: 'src',
  key: 'big.bin',
  etag,
  size: 25,
  destinationBucket: 'dst',
  destinationKey: 'copy/big.bin',
  overwrite: false,
};
const cut: MultipartUploadRecord = {
  key: 'big.bin',
  destinationKey: 'copy/big.bin',
  uploadId: 'cut',
  runId: 'earlier',
  startedAt: '2025-01-01T00:00:00.000Z',
  sourceEtag: etag,
  size: 25,
  partSize: 10,
  resume: { completedParts: 1, readStart: 0, cutAt: '2025-01-01T00:01:00.000Z' },
};
const uploads = () => ({ save: vi.fn(async () => {}), forget: vi.fn(async () => {}) });
const md5 = (bytes: Buffer | string) => createHash('md5').update(bytes).digest();
const hex = '0123456789abcdef0123456789abcdef';
/** S3 lists the cut upload's parts 1..n (of the recorded 10-byte size) with these ETags. */
const listing = (...etags: (string | undefined)[]) =>
  s3Mock
    .on(ListPartsCommand)
    .resolves({ Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag, Size: 10 })) });
/** The copy request carrying the cut upload with this resume point. */
const resumed = (resume: Partial<NonNullable<MultipartUploadRecord['resume']>>): CopyRequest => ({
  ...request,
  cutUpload: {
    ...cut,
    resume: { completedParts: 1, readStart: 0, cutAt: '2025-01-01T00:01:00.000Z', ...resume },
  },
});

describe('continuableUpload', () => {
  beforeEach(() => {
    s3Mock.reset();
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
    s3Mock.on(ListPartsCommand).resolves({ Parts: [{ PartNumber: 1, ETag: partEtag, Size: 10 }] });
  });

  it('continues a cut upload of the same source version, part size and destination key', async () => {
    const continued = await continuableUpload(s3, { ...request, cutUpload: cut }, plan, {
      uploads: uploads(),
    });

    expect(continued?.parts).toEqual([{ PartNumber: 1, ETag: partEtag }]);
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
  });

  it.each([
    ['its record has no resume point', { resume: undefined }, {}],
    ['the source size changed', { size: 26 }, {}],
    ['the part size changed (S3 holding parts of the size recorded)', { partSize: 11 }, { Size: 11 }],
    ['the destination key changed', { destinationKey: 'old/big.bin' }, {}],
    ['S3 no longer has it', {}, { missing: true }],
    ['S3 holds a part of another size', {}, { Size: 9 }],
  ])('aborts and forgets the cut upload when %s', async (_why, record, listing) => {
    const records = uploads();
    if ('missing' in listing) s3Mock.on(ListPartsCommand).rejects(new Error('NoSuchUpload'));
    if ('Size' in listing)
      s3Mock
        .on(ListPartsCommand)
        .resolves({ Parts: [{ PartNumber: 1, ETag: partEtag, Size: listing.Size }] });

    const continued = await continuableUpload(s3, { ...request, cutUpload: { ...cut, ...record } }, plan, {
      uploads: records,
    });

    expect(continued).toBeUndefined();
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, {
      Bucket: 'dst',
      Key: (record as { destinationKey?: string }).destinationKey ?? 'copy/big.bin',
      UploadId: 'cut',
    });
    expect(records.forget).toHaveBeenCalledWith('big.bin');
  });

  it('aborts a cut upload when this copy cannot keep a record of it', async () => {
    const continued = await continuableUpload(s3, { ...request, cutUpload: cut }, plan, {});

    expect(continued).toBeUndefined();
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'cut' });
  });

  it('aborts a cut upload whose stored part no longer has the ETag recorded beside its MD5', async () => {
    const recorded = { ...cut.resume, completedParts: 1, partMd5s: Buffer.alloc(16), partEtags: ['"other"'] };

    const continued = await continuableUpload(
      s3,
      { ...request, cutUpload: { ...cut, resume: recorded as MultipartUploadRecord['resume'] } },
      plan,
      { uploads: uploads() },
    );

    expect(continued).toBeUndefined();
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'cut' });
  });

  it.each([
    ['quoted', `"${hex}"`],
    ['unquoted', hex],
  ])(
    'continues an upload recorded without part MD5s when the parts the next read covers whole have %s MD5s as ETags, whatever the parts before it hold',
    async (_form, md5Etag) => {
      listing('"not-an-md5"', md5Etag);

      const continued = await continuableUpload(s3, resumed({ completedParts: 2, readStart: 10 }), plan, {
        uploads: uploads(),
      });

      expect(continued?.parts).toEqual([
        { PartNumber: 1, ETag: '"not-an-md5"' },
        { PartNumber: 2, ETag: md5Etag },
      ]);
      expect(continued?.partDigests).toEqual(new Map());
      expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
    },
  );

  it.each([
    ['a multipart ETag', `"${hex}-2"`],
    ['an MD5 after other text', `"x${hex}"`],
    ['too short a digest', '"0123abcd"'],
    ['no ETag', undefined],
  ])(
    'does not continue an upload recorded without part MD5s when a part the next read covers whole has %s (not an MD5 to check it against)',
    async (_what, badEtag) => {
      const records = uploads();
      listing(`"${hex}"`, badEtag);

      const continued = await continuableUpload(s3, resumed({ completedParts: 2, readStart: 10 }), plan, {
        uploads: records,
      });

      expect(continued).toBeUndefined();
      expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'cut' });
      expect(records.forget).toHaveBeenCalledWith('big.bin');
    },
  );

  it('hands on the recorded MD5 and ETag of each part the next read covers whole, by part number', async () => {
    listing('"etag-1"', '"etag-2"');

    const continued = await continuableUpload(
      s3,
      resumed({ completedParts: 2, readStart: 10, partMd5s: md5('part 2'), partEtags: ['"etag-2"'] }),
      plan,
      { uploads: uploads() },
    );

    expect(continued?.partDigests).toEqual(new Map([[2, { md5: md5('part 2'), etag: '"etag-2"' }]]));
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
  });

  it.each([
    ['part MD5s without the ETags S3 gave those parts', { readStart: 10, partMd5s: md5('part 2') }],
    [
      'more part ETags than MD5s',
      { readStart: 10, partMd5s: md5('part 2'), partEtags: ['"etag-2"', '"etag-2"'] },
    ],
    [
      'no MD5 for one of the parts the next read covers whole',
      { readStart: 0, partMd5s: md5('part 1'), partEtags: ['"etag-1"'] },
    ],
  ])('does not continue an upload whose record has %s', async (_what, resume) => {
    listing('"etag-1"', '"etag-2"');

    const continued = await continuableUpload(s3, resumed({ completedParts: 2, ...resume }), plan, {
      uploads: uploads(),
    });

    expect(continued).toBeUndefined();
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'cut' });
  });

  it('continues an upload whose next read covers no part whole, with an empty MD5 list and no ETags recorded', async () => {
    const continued = await continuableUpload(
      s3,
      resumed({ completedParts: 1, readStart: 10, partMd5s: new Uint8Array(0) }),
      plan,
      { uploads: uploads() },
    );

    expect(continued?.partDigests).toEqual(new Map());
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
  });

  it('takes a part S3 lists without an ETag to match a part recorded without one', async () => {
    listing(undefined);

    const continued = await continuableUpload(
      s3,
      resumed({ completedParts: 1, readStart: 0, partMd5s: md5('part 1'), partEtags: [''] }),
      plan,
      { uploads: uploads() },
    );

    expect(continued?.partDigests).toEqual(new Map([[1, { md5: md5('part 1'), etag: '' }]]));
  });
});

describe('keepForNextRun', () => {
  const source = Buffer.from('abcdefghijklmnopqrstuvwxyz0123');
  const record = {
    key: 'big.bin',
    destinationKey: 'copy/big.bin',
    uploadId: '',
    startedAt: '2025-01-01T00:00:00.000Z',
    sourceEtag: etag,
    size: 30,
    partSize: 10,
  };
  const parts = { partSize: 10, partCount: 3, queueSize: 1 };
  const plainMd5: SourceCheck = { kind: 'md5', md5: md5(source).toString('hex') };
  const inParts = (...partSizes: number[]): SourceCheck => ({ kind: 'composite', etag: 'x-2', partSizes });
  const digest = (part: number): PartDigest => ({ md5: md5(`part ${part}`), etag: `"etag-${part}"` });
  const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  /** A read of the source that has let its first `bytes` bytes through. */
  const readThrough = (check: SourceCheck, bytes: number) => {
    const read = new VerifyStream({ where: 's3://src/big.bin', size: 30, start: 0, check });
    if (bytes > 0) read.write(source.subarray(0, bytes));
    return read;
  };
  /** Parts 1..n uploaded, with the MD5 and ETag of the parts listed in `digests` (all by default). */
  const progress = (
    contiguousParts: number,
    { digests = range(contiguousParts), tails = [] as [number, Buffer][] } = {},
  ): UploadProgress => ({
    uploadId: 'cut',
    contiguousParts,
    tailMd5s: new Map(tails),
    partDigests: new Map(digests.map((part) => [part, digest(part)])),
  });
  const savedRecord = (records: ReturnType<typeof uploads>) =>
    (records.save.mock.calls[0] as unknown[] | undefined)?.[0] as MultipartUploadRecord | undefined;

  it('reads a plain-MD5 source again from its first byte, recording the MD5 and ETag of every uploaded part', async () => {
    const records = uploads();

    const kept = await keepForNextRun(record, progress(2), readThrough(plainMd5, 0), parts, records);

    expect(kept).toBe(true);
    expect(records.save).toHaveBeenCalledWith({
      ...record,
      uploadId: 'cut',
      resume: {
        completedParts: 2,
        readStart: 0,
        sourcePartMd5s: undefined,
        tailMd5: undefined,
        partMd5s: Buffer.concat([digest(1).md5, digest(2).md5]),
        partEtags: ['"etag-1"', '"etag-2"'],
        cutAt: expect.any(String),
      },
    });
  });

  it('continues a multipart source from the last source part boundary the uploaded parts reach, carrying the MD5s of the source parts before it', async () => {
    const records = uploads();

    const kept = await keepForNextRun(record, progress(2), readThrough(inParts(10, 20), 20), parts, records);

    expect(kept).toBe(true);
    expect(savedRecord(records)?.resume).toMatchObject({
      completedParts: 2,
      readStart: 10,
      sourcePartMd5s: md5(source.subarray(0, 10)),
      tailMd5: undefined,
      partMd5s: digest(2).md5,
      partEtags: ['"etag-2"'],
    });
  });

  it('reads nothing again when the uploaded parts end on a source part boundary, carrying only the MD5s of the source parts before it', async () => {
    const records = uploads();

    const kept = await keepForNextRun(
      record,
      progress(2),
      readThrough(inParts(10, 10, 10), 30),
      parts,
      records,
    );

    expect(kept).toBe(true);
    expect(savedRecord(records)?.resume).toEqual({
      completedParts: 2,
      readStart: 20,
      sourcePartMd5s: Buffer.concat([md5(source.subarray(0, 10)), md5(source.subarray(10, 20))]),
      tailMd5: undefined,
      partMd5s: undefined,
      partEtags: undefined,
      cutAt: expect.any(String),
    });
  });

  it('never records a read start past the source parts whose MD5s the read has taken', async () => {
    const records = uploads();

    const kept = await keepForNextRun(
      record,
      progress(2),
      readThrough(inParts(10, 10, 10), 15),
      parts,
      records,
    );

    expect(kept).toBe(true);
    expect(savedRecord(records)?.resume).toMatchObject({
      readStart: 10,
      sourcePartMd5s: md5(source.subarray(0, 10)),
      partMd5s: digest(2).md5,
    });
  });

  it('continues a source that can only be size-checked right after the uploaded parts, with nothing to read again', async () => {
    const records = uploads();

    const kept = await keepForNextRun(
      record,
      progress(2),
      readThrough({ kind: 'size-only' }, 0),
      parts,
      records,
    );

    expect(kept).toBe(true);
    expect(savedRecord(records)?.resume).toEqual({
      completedParts: 2,
      readStart: 20,
      sourcePartMd5s: undefined,
      tailMd5: undefined,
      partMd5s: undefined,
      partEtags: undefined,
      cutAt: expect.any(String),
    });
  });

  it('records the MD5 of the tail of the part the next read starts inside', async () => {
    const records = uploads();
    const tail = md5(source.subarray(15, 20));

    const kept = await keepForNextRun(
      record,
      progress(2, { tails: [[2, tail]] }),
      readThrough(inParts(15, 15), 20),
      parts,
      records,
    );

    expect(kept).toBe(true);
    expect(savedRecord(records)?.resume).toMatchObject({ readStart: 15, tailMd5: tail, partMd5s: undefined });
  });

  it('does not keep an upload whose next read starts inside a part without the MD5 of that part from there on', async () => {
    const records = uploads();

    const kept = await keepForNextRun(record, progress(2), readThrough(inParts(15, 15), 20), parts, records);

    expect(kept).toBe(false);
    expect(records.save).not.toHaveBeenCalled();
  });

  it('records no part MD5s when one of the parts the next read covers whole has none (its ETag is then checked instead)', async () => {
    const records = uploads();

    const kept = await keepForNextRun(
      record,
      progress(3, { digests: [1, 3] }),
      readThrough(plainMd5, 0),
      parts,
      records,
    );

    expect(kept).toBe(true);
    expect(savedRecord(records)?.resume).toMatchObject({
      completedParts: 3,
      readStart: 0,
      partMd5s: undefined,
      partEtags: undefined,
    });
  });

  it('records the MD5s of at most 1,025 parts the next read covers whole, and does not keep an upload needing more', async () => {
    const records = uploads();

    const atLimit = await keepForNextRun(record, progress(1025), readThrough(plainMd5, 0), parts, records);
    const pastLimit = await keepForNextRun(record, progress(1026), readThrough(plainMd5, 0), parts, records);

    expect([atLimit, pastLimit]).toEqual([true, false]);
    expect(records.save).toHaveBeenCalledTimes(1);
    expect(savedRecord(records)?.resume?.partEtags).toHaveLength(1025);
  });
});

describe('boundaryFinder', () => {
  it('gives the last source part boundary strictly inside a range', () => {
    const inside = boundaryFinder([3, 3, 3]);

    expect([inside(0, 4), inside(0, 7), inside(3, 6), inside(0, 3), inside(4, 9), inside(2, 10)]).toEqual([
      3,
      6,
      undefined,
      undefined,
      6,
      9,
    ]);
  });
});
