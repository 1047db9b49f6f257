import {
  GetObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { copierFor, partCopierFor } from '../../functions/core/copy/copy-method.js';
import { copyObject } from '../../functions/core/copy/copy-object.js';
import { copyPart, type PartCopyRequest, UploadGoneError } from '../../functions/core/copy/copy-part.js';
import { copyPartServerSide } from '../../functions/core/copy/copy-part-server-side.js';
import { serverSideCopy } from '../../functions/core/copy/server-side-copy.js';
import { ObjectCopyError, SourceArchivedError, SourceVanishedError } from '../../functions/core/errors.js';

const s3 = mockClient(S3Client);
const clients = { destinationS3: new S3Client({}) };
const request: PartCopyRequest = {
  sourceBucket: 'src',
  key: 'in/big file+é.bin',
  etag: '"listed"',
  size: 3 * 1024,
  destinationBucket: 'dst',
  destinationKey: 'out/big file+é.bin',
  uploadId: 'up-1',
  partNumber: 2,
  range: { start: 1024, end: 2047 },
};
const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

beforeEach(() => {
  s3.reset();
  s3.on(UploadPartCopyCommand).resolves({ CopyPartResult: { ETag: '"part-2"' } });
});

describe('copyPartServerSide: one range of a giant object copied by S3 into its multipart upload', () => {
  it('copies the range with UploadPartCopy, pinned to the listed ETag, and reads no byte itself', async () => {
    const part = await copyPartServerSide(clients, request);

    expect(part).toEqual({ partNumber: 2, etag: '"part-2"', size: 1024 });
    expect(s3).toHaveReceivedCommandWith(UploadPartCopyCommand, {
      Bucket: 'dst',
      Key: 'out/big file+é.bin',
      UploadId: 'up-1',
      PartNumber: 2,
      CopySource: `src/in/${encodeURIComponent('big file+é.bin')}`,
      CopySourceIfMatch: '"listed"',
      CopySourceRange: 'bytes=1024-2047',
    });
    expect(s3).not.toHaveReceivedCommand(GetObjectCommand);
    expect(s3).not.toHaveReceivedCommand(UploadPartCommand);
  });

  it('quotes an ETag listed without quotes for the pin', async () => {
    await copyPartServerSide(clients, { ...request, etag: 'bare' });

    expect(s3).toHaveReceivedCommandWith(UploadPartCopyCommand, { CopySourceIfMatch: '"bare"' });
  });

  it('fails the part, not retryable, when the source changed after it was listed (412), as a streamed part does', async () => {
    s3.on(UploadPartCopyCommand).rejects(s3Error('PreconditionFailed', 412));

    const copy = copyPartServerSide(clients, request);

    await expect(copy).rejects.toThrow(
      's3://src/in/big file+é.bin changed after it was listed; the next run copies the new version',
    );
    await expect(copy).rejects.toBeInstanceOf(ObjectCopyError);
    await expect(copy).rejects.toMatchObject({ retryable: false });
  });

  it('says the same for a 412 as a streamed part whose pinned GET is refused', async () => {
    s3.on(UploadPartCopyCommand).rejects(s3Error('PreconditionFailed', 412));
    s3.on(GetObjectCommand).rejects(s3Error('PreconditionFailed', 412));

    const serverSide = await copyPartServerSide(clients, request).catch((error: Error) => error);
    const streamed = await copyPart({ ...clients, sourceS3: new S3Client({}) }, request).catch(
      (error: Error) => error,
    );

    expect((serverSide as Error).message).toBe((streamed as Error).message);
  });

  it('names the bucket-policy statement AccountA must add when the copy is denied', async () => {
    s3.on(UploadPartCopyCommand).rejects(s3Error('AccessDenied', 403));

    const copy = copyPartServerSide(clients, request);

    await expect(copy).rejects.toThrow(
      "UploadPartCopy of s3://src/in/big file+é.bin bytes 1024-2047 into s3://dst/out/big file+é.bin part 2 was denied: server-side copy reads the source with this function's own role, so AccountA's bucket policy must grant that role s3:GetObject on arn:aws:s3:::src/* (AccountA: deploy source-account/template.yaml with ServerSideCopyPrincipalArn=<the sync role ARN>)",
    );
    await expect(copy).rejects.toMatchObject({ retryable: false });
  });

  it('says the upload is gone when S3 no longer knows it, and tells a deleted source apart (both 404)', async () => {
    s3.on(UploadPartCopyCommand).rejects(s3Error('NoSuchUpload', 404));
    await expect(copyPartServerSide(clients, request)).rejects.toThrow(UploadGoneError);

    s3.on(UploadPartCopyCommand).rejects(s3Error('NoSuchKey', 404));
    const deleted = copyPartServerSide(clients, request);
    await expect(deleted).rejects.toThrow(SourceVanishedError);
    await expect(deleted).rejects.toThrow('s3://src/in/big file+é.bin was deleted after it was listed');
  });

  it('reports an archived source with the fix, not retryable', async () => {
    s3.on(UploadPartCopyCommand).rejects(s3Error('InvalidObjectState', 403));

    const copy = copyPartServerSide(clients, request);

    await expect(copy).rejects.toThrow(SourceArchivedError);
    await expect(copy).rejects.toThrow(/restore it in AccountA/);
  });

  it('leaves any other failure retryable, and refuses an answer without an ETag', async () => {
    s3.on(UploadPartCopyCommand).rejects(s3Error('InternalError', 500));
    const failed = copyPartServerSide(clients, request);
    await expect(failed).rejects.toThrow(/part 2 failed: InternalError/);
    await expect(failed).rejects.toMatchObject({ retryable: true });

    s3.on(UploadPartCopyCommand).resolves({ CopyPartResult: {} });
    await expect(copyPartServerSide(clients, request)).rejects.toThrow(/UploadPartCopy returned no ETag/);
  });
});

describe('partCopierFor: the part copier of a job', () => {
  it('copies parts server-side exactly when the job copies objects server-side', () => {
    const job = (copyMethod: 'stream' | 'server-side') => ({ options: { copyMethod } }) as never;

    expect(partCopierFor(job('server-side'))).toBe(copyPartServerSide);
    expect(copierFor(job('server-side'))).toBe(serverSideCopy);
    expect(partCopierFor(job('stream'))).toBe(copyPart);
    expect(copierFor(job('stream'))).toBe(copyObject);
  });
});
