import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { type CopyRequest, copyObject, PART_SIZE } from '../../functions/core/copy-object.js';
import { IntegrityError, ObjectCopyError, SourceVanishedError } from '../../functions/core/errors.js';
import { HashingStream } from '../../functions/core/integrity.js';

const sourceS3 = new S3Client({ region: 'us-east-1' });
const destinationS3 = new S3Client({ region: 'us-east-1', requestChecksumCalculation: 'WHEN_REQUIRED' });
const s3Mock = mockClient(S3Client);
const clients = { sourceS3, destinationS3 };

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');
const body = (data: Buffer) => sdkStreamMixin(Readable.from([data]));
const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

function request(data: Buffer, overrides: Partial<CopyRequest> = {}): CopyRequest {
  return {
    sourceBucket: 'src',
    key: 'dir/file name+1%.txt',
    etag: `"${md5(data)}"`,
    size: data.length,
    destinationBucket: 'dst',
    destinationKey: 'copy/dir/file name+1%.txt',
    overwrite: false,
    ...overrides,
  };
}

describe('copyObject', () => {
  beforeEach(() => s3Mock.reset());

  it('pins the GET to the listed ETag and keeps content headers and metadata', async () => {
    // Prepare
    const data = Buffer.from('hello');
    s3Mock.on(GetObjectCommand).resolves({
      Body: body(data),
      ContentType: 'text/plain',
      CacheControl: 'max-age=60',
      ContentDisposition: 'inline',
      Metadata: { owner: 'team-a' },
    });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    // Act
    const result = await copyObject(clients, request(data));

    // Assess
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: 'src',
      Key: 'dir/file name+1%.txt',
      IfMatch: `"${md5(data)}"`,
    });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: 'dst',
      Key: 'copy/dir/file name+1%.txt',
      ContentType: 'text/plain',
      CacheControl: 'max-age=60',
      ContentDisposition: 'inline',
      Metadata: { owner: 'team-a' },
      IfNoneMatch: '*',
    });
    expect(result).toMatchObject({ bytes: 5, destinationEtag: md5(data), verifiedBy: 'etag-md5' });
    expect(result.sha256).toBe(createHash('sha256').update(data).digest('base64'));
  });

  it('overwrites only the copy it wrote before (If-Match on the recorded destination ETag)', async () => {
    const data = Buffer.from('v2');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    await copyObject(clients, request(data, { previousDestinationEtag: 'abc' }));

    const put = s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(put?.IfMatch).toBe('"abc"');
    expect(put?.IfNoneMatch).toBeUndefined();
  });

  it('leaves a destination object it did not write untouched and says how to proceed', async () => {
    const data = Buffer.from('x');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5(Buffer.from('y'))}"`, ContentLength: 1 });

    const copy = copyObject(clients, request(data));

    await expect(copy).rejects.toThrow(ObjectCopyError);
    await expect(copy).rejects.toThrow(/did not write, so it was left untouched.*options\.mirror/);
  });

  it('adopts a destination object holding exactly these bytes (a run killed before recording it)', async () => {
    const data = Buffer.from('same bytes');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5(data)}"`, ContentLength: data.length });

    const result = await copyObject(clients, request(data));

    expect(result).toMatchObject({ adopted: true, destinationEtag: md5(data), bytes: data.length });
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('fails cleanly when the source changed after listing', async () => {
    s3Mock.on(GetObjectCommand).rejects(s3Error('PreconditionFailed', 412));

    await expect(copyObject(clients, request(Buffer.from('x')))).rejects.toThrow(
      /changed after it was listed/,
    );
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('reports a source object deleted after listing as vanished', async () => {
    s3Mock.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));

    await expect(copyObject(clients, request(Buffer.from('x')))).rejects.toThrow(SourceVanishedError);
  });

  it('detects bytes that do not match the ETag S3 stored', async () => {
    const data = Buffer.from('hello');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"00000000000000000000000000000000"' });

    await expect(copyObject(clients, request(data))).rejects.toThrow(IntegrityError);
  });

  it('streams a large object as a multipart upload and verifies the multipart ETag', async () => {
    const data = Buffer.alloc(PART_SIZE + 1024, 7);
    const parts = [data.subarray(0, PART_SIZE), data.subarray(PART_SIZE)];
    const multipartEtag = `${md5(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest())))}-2`;
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: `"${multipartEtag}"` });

    const result = await copyObject(clients, request(data, { etag: '"whatever-2"' }));

    expect(result).toMatchObject({
      bytes: data.length,
      destinationEtag: multipartEtag,
      verifiedBy: 'etag-md5',
    });
    expect(s3Mock).toHaveReceivedCommandTimes(UploadPartCommand, 2);
    expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, {
      IfNoneMatch: '*',
      UploadId: 'u1',
    });
  });

  it('checks a large source object with a single-part ETag against the MD5 of all its bytes', async () => {
    const data = Buffer.alloc(PART_SIZE + 1024, 9);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u3' });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"ffffffffffffffffffffffffffffffff-2"' });
    s3Mock.on(AbortMultipartUploadCommand).resolves({});

    await expect(
      copyObject(clients, request(data, { etag: `"${md5(Buffer.from('other'))}"` })),
    ).rejects.toThrow(/bytes read do not match its ETag/);
    await expect(copyObject(clients, request(data, { etag: `"${md5(data)}"` }))).rejects.toThrow(
      /stored ETag .* does not match the bytes sent/,
    );
  });

  it('aborts the multipart upload when a part fails, leaving no parts behind', async () => {
    const data = Buffer.alloc(PART_SIZE * 2 + 1, 1);
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u2' });
    s3Mock.on(UploadPartCommand).rejects(s3Error('InternalError', 500));
    s3Mock.on(AbortMultipartUploadCommand).resolves({});

    await expect(copyObject(clients, request(data, { etag: '"e-3"' }))).rejects.toThrow(
      /PUT s3:\/\/dst\/.* failed/,
    );
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { Bucket: 'dst', UploadId: 'u2' });
    expect(s3Mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
  });
});

describe('HashingStream', () => {
  const hash = async (data: Buffer, partSize: number, options?: { wholeMd5?: boolean }) => {
    const hashing = new HashingStream(partSize, options);
    await pipeline(
      Readable.from([data.subarray(0, 5), data.subarray(5)]),
      hashing,
      new PassThrough().resume(),
    );
    return hashing.digests();
  };

  it('gives the whole-body MD5 of a body that fits one part, and its SHA-256', async () => {
    const data = Buffer.from('hello, world');
    const digests = await hash(data, 64);

    expect(digests.md5).toBe(md5(data));
    expect(digests.sha256).toBe(createHash('sha256').update(data).digest('base64'));
  });

  it('hashes a body of several parts twice only when asked for its whole MD5', async () => {
    const data = Buffer.from('0123456789abcdef-tail');
    const partMd5s = [data.subarray(0, 8), data.subarray(8, 16), data.subarray(16)].map((part) =>
      createHash('md5').update(part).digest(),
    );

    expect((await hash(data, 8)).md5).toBeUndefined();
    expect((await hash(data, 8, { wholeMd5: true })).md5).toBe(md5(data));
    expect((await hash(data, 8)).multipartEtag(3)).toBe(`${md5(Buffer.concat(partMd5s))}-3`);
  });
});
