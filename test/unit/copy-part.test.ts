import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, S3Client, S3ServiceException, UploadPartCommand } from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { copyPart, type PartCopyRequest, UploadGoneError } from '../../functions/core/copy/copy-part.js';
import { IntegrityError, ObjectCopyError } from '../../functions/core/errors.js';

const source = mockClient(S3Client);
const clients = { sourceS3: new S3Client({}), destinationS3: new S3Client({}) };
// aws-sdk-client-mock mocks every S3Client instance's send: tell the two apart by command.
const request: PartCopyRequest = {
  sourceBucket: 'src',
  key: 'big.bin',
  etag: '"listed"',
  size: 100,
  destinationBucket: 'dst',
  destinationKey: 'copy/big.bin',
  uploadId: 'up-1',
  partNumber: 2,
  range: { start: 40, end: 79 },
};
const bytes = Buffer.alloc(40, 7);
const md5 = (data: Buffer) => createHash('md5').update(data);
const body = (...chunks: Buffer[]) => sdkStreamMixin(Readable.from(chunks));
const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

beforeEach(() => {
  source.reset();

  source.on(GetObjectCommand).callsFake(async () => ({
    Body: body(bytes.subarray(0, 25), bytes.subarray(25)),
    ContentRange: 'bytes 40-79/100',
  }));
  source.on(UploadPartCommand).resolves({ ETag: `"${md5(bytes).digest('hex')}"` });
});

describe('copyPart: one range of a giant object into its multipart upload', () => {
  it('reads the range pinned to the listed ETag and uploads it with its Content-MD5', async () => {
    const part = await copyPart(clients, request);

    expect(part).toEqual({
      partNumber: 2,
      etag: `"${md5(bytes).digest('hex')}"`,
      size: 40,
      md5: md5(bytes).digest('base64'),
    });
    expect(source.commandCalls(GetObjectCommand)[0]?.args[0].input).toEqual({
      Bucket: 'src',
      Key: 'big.bin',
      IfMatch: '"listed"',
      Range: 'bytes=40-79',
    });
    const upload = source.commandCalls(UploadPartCommand)[0]?.args[0].input;
    expect(upload).toMatchObject({
      Bucket: 'dst',
      Key: 'copy/big.bin',
      UploadId: 'up-1',
      PartNumber: 2,
      ContentLength: 40,
      ContentMD5: md5(bytes).digest('base64'),
    });
    expect(Buffer.from(upload?.Body as Uint8Array)).toEqual(bytes);
  });

  it('fails without uploading when the source changed after it was listed (412)', async () => {
    source.on(GetObjectCommand).rejects(s3Error('PreconditionFailed', 412));

    const copy = copyPart(clients, request);

    await expect(copy).rejects.toThrow(
      's3://src/big.bin changed after it was listed; the next run copies the new version',
    );
    await expect(copy).rejects.toBeInstanceOf(ObjectCopyError);
    await expect(copy).rejects.toMatchObject({ retryable: false });
    expect(source.commandCalls(UploadPartCommand)).toHaveLength(0);
  });

  it('uploads nothing from a body cut short, or one longer than the range', async () => {
    source.on(GetObjectCommand).callsFake(async () => ({ Body: body(bytes.subarray(0, 39)) }));
    await expect(copyPart(clients, request)).rejects.toThrow(
      new IntegrityError(
        's3://src/big.bin bytes 40-79: the read ended after 39 of 40 bytes; nothing was uploaded',
      ),
    );
    source.on(GetObjectCommand).callsFake(async () => ({ Body: body(bytes, Buffer.from('x')) }));
    await expect(copyPart(clients, request)).rejects.toThrow(/carried more than the 40 bytes asked for/);
    expect(source.commandCalls(UploadPartCommand)).toHaveLength(0);
  });

  it('refuses a range of an object of another size', async () => {
    source
      .on(GetObjectCommand)
      .callsFake(async () => ({ Body: body(bytes), ContentRange: 'bytes 40-79/120' }));

    await expect(copyPart(clients, request)).rejects.toThrow(
      's3://src/big.bin bytes 40-79: the source answered bytes 40-79/120, not bytes 40-79/100',
    );
    expect(source.commandCalls(UploadPartCommand)).toHaveLength(0);
  });

  it('refuses a stored part whose ETag is not the MD5 of the bytes sent', async () => {
    source.on(UploadPartCommand).resolves({ ETag: `"${'0'.repeat(32)}"` });

    await expect(copyPart(clients, request)).rejects.toThrow(IntegrityError);
  });

  it('says the upload is gone when S3 no longer knows it (completed or aborted)', async () => {
    source.on(UploadPartCommand).rejects(s3Error('NoSuchUpload', 404));

    await expect(copyPart(clients, request)).rejects.toThrow(UploadGoneError);
  });

  it('names the missing permission when the part is denied', async () => {
    source.on(UploadPartCommand).rejects(s3Error('AccessDenied', 403));

    await expect(copyPart(clients, request)).rejects.toThrow(
      'UploadPart s3://dst/copy/big.bin part 2 was denied: this identity needs s3:PutObject on the destination',
    );
  });
});
