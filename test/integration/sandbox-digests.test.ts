import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { describe, expect, inject, it } from 'vitest';
import { sandboxS3 } from '../../sandbox/clients.js';

const sandbox = inject('sandbox');
const s3 = sandboxS3(sandbox, sandbox.accountB.admin);
const bucket = sandbox.accountB.destinationBucket;
const body = Buffer.from('the bytes that were sent');
const otherDigest = (algorithm: string) => createHash(algorithm).update('other bytes').digest('base64');
const refused = (code: string) => ({
  name: code,
  $metadata: expect.objectContaining({ httpStatusCode: 400 }),
});

async function exists(key: string): Promise<boolean> {
  return s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    () => false,
  );
}

describe('sandbox S3 checks the digests a write states, as S3 does (moto_server.py)', () => {
  const key = () => `sandbox-digests/${randomBytes(4).toString('hex')}`;

  it('refuses a PutObject whose Content-MD5 differs from its body (BadDigest) and stores nothing', async () => {
    const at = key();
    const put = s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: at, Body: body, ContentMD5: otherDigest('md5') }),
    );

    await expect(put).rejects.toMatchObject(refused('BadDigest'));
    expect(await exists(at)).toBe(false);
  });

  it('refuses a Content-MD5 that is not an MD5 at all (InvalidDigest)', async () => {
    const put = s3.send(new PutObjectCommand({ Bucket: bucket, Key: key(), Body: body, ContentMD5: 'abc' }));

    await expect(put).rejects.toMatchObject(refused('InvalidDigest'));
  });

  it('accepts a PutObject whose Content-MD5 and SHA-256 checksum match its body', async () => {
    const at = key();
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: at,
        Body: body,
        ContentMD5: createHash('md5').update(body).digest('base64'),
        ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
      }),
    );

    expect(await exists(at)).toBe(true);
  });

  it('refuses a PutObject whose x-amz-checksum-sha256 differs from its body (BadDigest)', async () => {
    const at = key();
    const put = s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: at, Body: body, ChecksumSHA256: otherDigest('sha256') }),
    );

    await expect(put).rejects.toMatchObject(refused('BadDigest'));
    expect(await exists(at)).toBe(false);
  });

  it('refuses a malformed x-amz-checksum-crc32 (InvalidRequest)', async () => {
    const put = s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key(), Body: body, ChecksumCRC32: 'not-a-crc' }),
    );

    await expect(put).rejects.toMatchObject(refused('InvalidRequest'));
  });

  it('refuses an UploadPart whose Content-MD5 differs from the part (BadDigest)', async () => {
    const at = key();
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: at }));
    try {
      const part = s3.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: at,
          UploadId,
          PartNumber: 1,
          Body: body,
          ContentMD5: otherDigest('md5'),
        }),
      );

      await expect(part).rejects.toMatchObject(refused('BadDigest'));
    } finally {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: at, UploadId }));
    }
  });
  it('refuses a CompleteMultipartUpload whose If-Match names another object (412), as S3 does', async () => {
    const at = key();
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: at, Body: 'what is there now' }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: at }));
    const part = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: at, UploadId, PartNumber: 1, Body: body }),
    );

    const complete = s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: at,
        UploadId,
        IfMatch: '"0123456789abcdef0123456789abcdef"',
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );

    await expect(complete).rejects.toMatchObject({
      name: 'PreconditionFailed',
      $metadata: expect.objectContaining({ httpStatusCode: 412 }),
    });
    const now = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: at }));
    expect(await now.Body?.transformToString()).toBe('what is there now');
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: at, UploadId }));
  });
});
