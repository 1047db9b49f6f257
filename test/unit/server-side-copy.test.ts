import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { copierFor } from '../../functions/core/copy/copy-method.js';
import type { CopyRequest, UploadRecords } from '../../functions/core/copy/copy-object.js';
import { copyObject } from '../../functions/core/copy/copy-object.js';
import { serverSideCopy } from '../../functions/core/copy/server-side-copy.js';
import { ObjectCopyError, SourceVanishedError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';

const MiB = 1024 * 1024;
const ETAG = '0123456789abcdef0123456789abcdef';
const destinationS3 = new S3Client({ region: 'us-east-1' });
const s3Mock = mockClient(S3Client);
const clients = { destinationS3 };

const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

function request(overrides: Partial<CopyRequest> = {}): CopyRequest {
  return {
    sourceBucket: 'src',
    key: 'dir/file name+1%.txt',
    etag: `"${ETAG}"`,
    size: 100,
    destinationBucket: 'dst',
    destinationKey: 'copy/dir/file name+1%.txt',
    overwrite: false,
    ...overrides,
  };
}

function records(): UploadRecords & { saved: string[]; forgotten: string[] } {
  const saved: string[] = [];
  const forgotten: string[] = [];
  return {
    saved,
    forgotten,
    save: async (record) => void saved.push(record.uploadId),
    forget: async (key) => void forgotten.push(key),
  };
}

describe('serverSideCopy', () => {
  beforeEach(() => s3Mock.reset());

  it('copies a small object with one CopyObject pinned to the listed ETag, written only where nothing is', async () => {
    // Arrange
    s3Mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: `"${ETAG}"` }, VersionId: 'v1' });

    // Act
    const result = await serverSideCopy(clients, request());

    // Assess
    expect(s3Mock).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
    expect(s3Mock).toHaveReceivedCommandWith(CopyObjectCommand, {
      Bucket: 'dst',
      Key: 'copy/dir/file name+1%.txt',
      CopySource: 'src/dir/file%20name%2B1%25.txt',
      CopySourceIfMatch: `"${ETAG}"`,
      MetadataDirective: 'COPY',
      TaggingDirective: 'REPLACE',
      IfNoneMatch: '*',
    });
    expect(result).toEqual({
      bytes: 100,
      destinationEtag: ETAG,
      destinationVersionId: 'v1',
      verifiedBy: 'copy-etag',
    });
  });

  it('overwrites only the copy this sync wrote last (If-Match), and copies tags when the job does', async () => {
    s3Mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: `"${ETAG}"` } });

    await serverSideCopy(clients, request({ previousDestinationEtag: 'old', copyTags: true }));

    const input = s3Mock.commandCalls(CopyObjectCommand)[0]?.args[0].input;
    expect(input).toMatchObject({ IfMatch: '"old"', TaggingDirective: 'COPY' });
    expect(input?.IfNoneMatch).toBeUndefined();
  });

  it('records a copy whose ETag is not the source one as verified by the pin only', async () => {
    s3Mock.on(CopyObjectCommand).resolves({
      CopyObjectResult: { ETag: '"ffffffffffffffffffffffffffffffff"' },
      ServerSideEncryption: 'aws:kms',
    });

    const result = await serverSideCopy(clients, request());

    expect(result.verifiedBy).toBe('copy-pinned');
  });

  it('copies a large object in ranged UploadPartCopy parts, each pinned, with the source headers, then completes', async () => {
    // Arrange: 12 MiB in 5 MiB parts
    const size = 12 * MiB;
    s3Mock.on(HeadObjectCommand).resolves({ ContentType: 'text/csv', Metadata: { team: 'a' } });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-1' });
    s3Mock.on(UploadPartCopyCommand).callsFake((input) => ({
      CopyPartResult: { ETag: `"part-${input.PartNumber}"` },
    }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"abc-3"', VersionId: 'v2' });
    const uploads = records();

    // Act
    const result = await serverSideCopy(clients, request({ size }), { partSize: 5 * MiB, uploads });

    // Assess
    expect(s3Mock).toHaveReceivedCommandWith(HeadObjectCommand, {
      Bucket: 'src',
      Key: 'dir/file name+1%.txt',
      IfMatch: `"${ETAG}"`,
    });
    expect(s3Mock).toHaveReceivedCommandWith(CreateMultipartUploadCommand, {
      Bucket: 'dst',
      ContentType: 'text/csv',
      Metadata: { team: 'a' },
    });
    const ranges = s3Mock
      .commandCalls(UploadPartCopyCommand)
      .map(({ args: [{ input }] }) => [input.PartNumber, input.CopySourceRange, input.CopySourceIfMatch]);
    expect(ranges.sort()).toEqual([
      [1, `bytes=0-${5 * MiB - 1}`, `"${ETAG}"`],
      [2, `bytes=${5 * MiB}-${10 * MiB - 1}`, `"${ETAG}"`],
      [3, `bytes=${10 * MiB}-${size - 1}`, `"${ETAG}"`],
    ]);
    expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, {
      UploadId: 'up-1',
      IfNoneMatch: '*',
      MultipartUpload: {
        Parts: [
          { ETag: '"part-1"', PartNumber: 1 },
          { ETag: '"part-2"', PartNumber: 2 },
          { ETag: '"part-3"', PartNumber: 3 },
        ],
      },
    });
    expect(result).toMatchObject({ bytes: size, destinationEtag: 'abc-3', verifiedBy: 'copy-pinned' });
    expect(uploads.saved).toEqual(['', 'up-1']);
    expect(uploads.forgotten).toEqual(['dir/file name+1%.txt']);
  });

  it('uses CopyObject up to 5 GiB when no part size is set', async () => {
    s3Mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: `"${ETAG}"` } });

    await serverSideCopy(clients, request({ size: 5 * 1024 * MiB }));

    expect(s3Mock).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
    expect(s3Mock).toHaveReceivedCommandTimes(CreateMultipartUploadCommand, 0);
  });

  it('aborts the multipart upload when a part copy fails, and says why', async () => {
    s3Mock.on(HeadObjectCommand).resolves({});
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-2' });
    s3Mock.on(UploadPartCopyCommand).rejects(s3Error('InternalError', 500));
    const uploads = records();

    const copy = serverSideCopy(clients, request({ size: 12 * MiB }), { partSize: 5 * MiB, uploads });

    await expect(copy).rejects.toThrow(/server-side copy of s3:\/\/src\/.* failed: InternalError/);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, {
      UploadId: 'up-2',
      Bucket: 'dst',
    });
    expect(s3Mock).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 0);
    expect(uploads.forgotten).toContain('dir/file name+1%.txt');
  });

  it('fails cleanly, writing nothing, when the source changed since the listing (412 on the pin)', async () => {
    // Arrange: the copy and the pinned HEAD both say the ETag no longer matches.
    s3Mock.on(CopyObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).rejects(s3Error('PreconditionFailed', 412));

    // Act
    const copy = serverSideCopy(clients, request());

    // Assess
    await expect(copy).rejects.toThrow(/changed after it was listed/);
    await expect(copy).rejects.toMatchObject({ retryable: false });
    expect(s3Mock).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
  });

  it('aborts a multipart copy whose source changed between parts', async () => {
    s3Mock.on(HeadObjectCommand).resolvesOnce({}).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-3' });
    s3Mock
      .on(UploadPartCopyCommand)
      .resolvesOnce({ CopyPartResult: { ETag: '"p1"' } })
      .rejects(s3Error('PreconditionFailed', 412));

    const copy = serverSideCopy(clients, request({ size: 12 * MiB }), { partSize: 5 * MiB });

    await expect(copy).rejects.toThrow(/changed after it was listed/);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'up-3' });
    expect(s3Mock).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 0);
  });

  it('reports a source deleted since the listing as vanished', async () => {
    s3Mock.on(CopyObjectCommand).rejects(s3Error('NoSuchKey', 404));
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));

    await expect(serverSideCopy(clients, request())).rejects.toBeInstanceOf(SourceVanishedError);
  });

  it('names the bucket-policy statement AccountA must add when the copy is denied', async () => {
    s3Mock.on(CopyObjectCommand).rejects(s3Error('AccessDenied', 403));

    const copy = serverSideCopy(clients, request());

    await expect(copy).rejects.toBeInstanceOf(ObjectCopyError);
    await expect(copy).rejects.toThrow(
      /denied: .*AccountA's bucket policy must grant that role s3:GetObject on arn:aws:s3:::src\/\*.*ServerSideCopyPrincipalArn/,
    );
    await expect(copy).rejects.toMatchObject({ retryable: false });
  });

  it('leaves a foreign object at the destination untouched', async () => {
    // Arrange: the source is as listed; the destination holds something else.
    s3Mock.on(CopyObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock
      .on(HeadObjectCommand, { Bucket: 'src' })
      .resolves({})
      .on(HeadObjectCommand, { Bucket: 'dst' })
      .resolves({ ETag: '"ffffffffffffffffffffffffffffffff"', ContentLength: 7 });

    const copy = serverSideCopy(clients, request());

    await expect(copy).rejects.toThrow(/did not write, so it was left untouched/);
    expect(s3Mock).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
  });

  it('replaces exactly the object it saw when the job mirrors', async () => {
    s3Mock
      .on(CopyObjectCommand)
      .rejectsOnce(s3Error('PreconditionFailed', 412))
      .resolves({ CopyObjectResult: { ETag: `"${ETAG}"` } });
    s3Mock
      .on(HeadObjectCommand, { Bucket: 'src' })
      .resolves({})
      .on(HeadObjectCommand, { Bucket: 'dst' })
      .resolves({ ETag: '"ffffffffffffffffffffffffffffffff"', ContentLength: 7 });

    await serverSideCopy(clients, request({ overwrite: true }));

    expect(s3Mock.commandCalls(CopyObjectCommand)[1]?.args[0].input).toMatchObject({
      IfMatch: '"ffffffffffffffffffffffffffffffff"',
    });
  });

  it('adopts an identical copy already at the destination instead of copying again', async () => {
    s3Mock.on(CopyObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock
      .on(HeadObjectCommand, { Bucket: 'src' })
      .resolves({})
      .on(HeadObjectCommand, { Bucket: 'dst' })
      .resolves({ ETag: `"${ETAG}"`, ContentLength: 100, VersionId: 'v9' });

    const result = await serverSideCopy(clients, request());

    expect(result).toMatchObject({ adopted: true, destinationEtag: ETAG, destinationVersionId: 'v9' });
  });

  it('names the tagging grant when reading the tags for a multipart copy is denied', async () => {
    s3Mock.on(HeadObjectCommand).resolves({});
    s3Mock.on(GetObjectTaggingCommand).rejects(s3Error('AccessDenied', 403));

    const copy = serverSideCopy(clients, request({ size: 12 * MiB, copyTags: true }), { partSize: 5 * MiB });

    await expect(copy).rejects.toThrow(/s3:GetObject and s3:GetObjectTagging.*ServerSideCopyPrincipalArn/);
    expect(s3Mock).toHaveReceivedCommandTimes(CreateMultipartUploadCommand, 0);
  });
});

describe('copierFor', () => {
  const job = (copyMethod?: 'stream' | 'server-side') =>
    parseJob({
      jobId: 'j',
      source: { roleArn: 'arn:aws:iam::111111111111:role/R', bucket: 'src' },
      destination: { bucket: 'dst' },
      options: { copyMethod },
    });

  it('streams by default and copies server-side when the job asks', () => {
    expect(copierFor(job())).toBe(copyObject);
    expect(copierFor(job('server-side'))).toBe(serverSideCopy);
  });
});
