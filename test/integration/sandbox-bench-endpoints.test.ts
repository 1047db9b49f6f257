import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { describe, expect, inject, it } from 'vitest';
import { takeS3RequestCounts } from '../../bench/lib/request-counts.js';
import { deletePrefix, listPrefix, seedBody, seedObjectsInServer } from '../../bench/lib/seed.js';
import { sandboxS3, sandboxSts } from '../../sandbox/clients.js';
import { forgetObjectsSince } from '../support/forget-objects.js';
import { motoOpenBytes } from '../support/moto-open-bytes.js';

const sandbox = inject('sandbox');
const { accountA, accountB } = sandbox;

describe("the sandbox's benchmark endpoints", () => {
  it('counts the S3 requests moto serves by type, and nothing else', async () => {
    const s3 = sandboxS3(sandbox, accountB.syncer);
    const Bucket = accountB.destinationBucket;
    const Key = `counted/${Date.now()}.txt`;
    await takeS3RequestCounts(sandbox.motoEndpoint); // start from zero

    await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'counted' }));
    await s3.send(new GetObjectCommand({ Bucket, Key }));
    await s3.send(new HeadObjectCommand({ Bucket, Key }));
    await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'counted/' }));
    await s3.send(new GetBucketLocationCommand({ Bucket }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: `${Key}.mpu` }));
    const part = await s3.send(
      new UploadPartCommand({ Bucket, Key: `${Key}.mpu`, UploadId, PartNumber: 1, Body: 'one part' }),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key: `${Key}.mpu`,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    await s3.send(
      new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key }, { Key: `${Key}.mpu` }] } }),
    );
    await sandboxSts(sandbox, accountB.syncer).send(new GetCallerIdentityCommand({})); // not S3
    const counts = await takeS3RequestCounts(sandbox.motoEndpoint);

    expect(counts).toEqual({ LIST: 1, GET: 1, PUT: 2, POST: 3, HEAD: 1, DELETE: 0, OTHER: 1 });
    expect(await takeS3RequestCounts(sandbox.motoEndpoint)).toMatchObject({ PUT: 0, POST: 0 });
  });

  it('seeds many objects in one call, with the bytes seedBody says', async () => {
    const prefix = `seeded-${Date.now()}/`;
    const admin = sandboxS3(sandbox, accountA.admin);

    await seedObjectsInServer(
      sandbox.motoEndpoint,
      { account: accountA.id, bucket: accountA.bucket, prefix },
      1_200,
      100,
    );
    const listed = await listPrefix(admin, accountA.bucket, prefix);
    const last = await admin.send(
      new GetObjectCommand({ Bucket: accountA.bucket, Key: `${prefix}obj-001199` }),
    );
    const bytes = Buffer.from((await last.Body?.transformToByteArray()) ?? []);
    await deletePrefix(admin, accountA.bucket, prefix); // other tests share the source bucket

    expect(listed).toHaveLength(1_200);
    expect(listed.every((object) => object.size === 100)).toBe(true);
    expect(bytes).toEqual(seedBody('obj-001199', 100));
  });

  it('says why it cannot seed a bucket that does not exist', async () => {
    await expect(
      seedObjectsInServer(
        sandbox.motoEndpoint,
        { account: accountA.id, bucket: 'no-such-bucket-anywhere', prefix: 'x/' },
        1,
        1,
      ),
    ).rejects.toThrow(/no-such-bucket-anywhere.*NoSuchBucket|MissingBucket/);
  });

  it('forgets the objects and uploads stored since a moment, and keeps the ones before it', async () => {
    const s3 = sandboxS3(sandbox, accountA.admin);
    const Bucket = accountA.bucket;
    const prefix = `forget-${Date.now()}/`;
    await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}before.txt`, Body: 'kept' }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const since = Date.now();
    await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}after.txt`, Body: 'forgotten' }));
    await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: `${prefix}upload.bin` }));

    const forgotten = await forgetObjectsSince(sandbox.motoEndpoint, since);

    expect(forgotten.versions).toBeGreaterThanOrEqual(1);
    expect(forgotten.uploads).toBe(1);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix }));
    expect(listed.Contents?.map((object) => object.Key)).toEqual([`${prefix}before.txt`]);
    const kept = await s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}before.txt` }));
    expect(await kept.Body?.transformToString()).toBe('kept');
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('closes the bodies it forgets, even those of writes it refused, so its disk use goes back down', async () => {
    const s3 = sandboxS3(sandbox, accountA.admin);
    const Bucket = accountA.bucket;
    const Key = `forget-disk-${Date.now()}/big.bin`;
    const big = Buffer.alloc(12 * 1024 * 1024, 7); // above moto's in-memory limit: kept in a temporary file
    const before = motoOpenBytes(sandbox.motoEndpoint) ?? Number.NaN;
    const since = Date.now();
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: big }));
    const refused = s3.send(new PutObjectCommand({ Bucket, Key, Body: big, IfNoneMatch: '*' }));
    await expect(refused).rejects.toMatchObject({ name: 'PreconditionFailed' });
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: `${Key}.mpu` }));
    const part = await s3.send(
      new UploadPartCommand({ Bucket, Key: `${Key}.mpu`, UploadId, PartNumber: 1, Body: big }),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key: `${Key}.mpu`,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    await s3.send(new GetObjectCommand({ Bucket, Key: `${Key}.mpu`, Range: 'bytes=0-99' }));
    const wrongDigest = s3.send(
      new PutObjectCommand({ Bucket, Key: `${Key}.bad`, Body: big, ContentMD5: 'AAAAAAAAAAAAAAAAAAAAAA==' }),
    );
    await expect(wrongDigest).rejects.toMatchObject({ name: 'BadDigest' });
    expect(motoOpenBytes(sandbox.motoEndpoint)).toBeGreaterThanOrEqual(before + 2 * big.length);

    await forgetObjectsSince(sandbox.motoEndpoint, since);

    expect(motoOpenBytes(sandbox.motoEndpoint)).toBeLessThanOrEqual(before);
  });

  it('says what forgetting objects needs when no moment is given', async () => {
    const response = await fetch(new URL('/_sandbox/forget-objects', sandbox.motoEndpoint), {
      method: 'POST',
      body: '{}',
    });

    expect(response.status).toBe(400);
    expect(await response.text()).toContain('since');
  });
});
