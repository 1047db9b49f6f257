import { AbortMultipartUploadCommand, ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { CopyRequest } from '../../functions/core/copy/copy-object.js';
import { boundaryFinder, continuableUpload } from '../../functions/core/copy/resume-multipart.js';
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
