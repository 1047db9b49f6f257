import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const MiB = 1024 * 1024;
/** moto serves ~280 PUT/s on one core; more writers than this only queue. */
const SEED_CONCURRENCY = 32;
/** The big object goes up in parts of this size, generated as they are sent: nothing is stored. */
const SEED_PART_SIZE = 16 * MiB;

/** One listed object. */
export interface Listed {
  key: string;
  size: number;
  lastModified: Date;
  /** As listed, quotes included: equal ETags of single-part objects mean equal bytes (their MD5). */
  etag: string;
}

/** `prefix` + a zero-padded index, so keys list in creation order. */
export function seedKey(prefix: string, index: number): string {
  return `${prefix}obj-${String(index).padStart(6, '0')}`;
}

/** Runs `task` for 0..count-1, `concurrency` at once. */
export async function forEachConcurrently(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < count; index = next++) await task(index);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Writes `count` objects of `bytes` random bytes each under `prefix`, as PutObjects. */
export async function seedObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
  count: number,
  bytes: number,
): Promise<void> {
  await forEachConcurrently(count, SEED_CONCURRENCY, async (index) => {
    const key = seedKey(prefix, index);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomBytes(bytes) }));
  });
}

/**
 * Stores `count` objects of `bytes` bytes each under `prefix` (the keys seedKey gives) inside moto's
 * server, in one call: for tens of thousands of objects whose upload is not what is measured, where
 * 20,000 PutObjects would spend 40 s of moto's time. Their bytes are seedBody(name, bytes).
 */
export async function seedObjectsInServer(
  motoEndpoint: string,
  target: { account: string; bucket: string; prefix: string },
  count: number,
  bytes: number,
): Promise<void> {
  const response = await fetch(new URL('/_sandbox/seed-objects', motoEndpoint), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...target, count, size: bytes }),
  });
  if (!response.ok) throw new Error(`moto could not seed ${target.bucket}: ${await response.text()}`);
}

/**
 * The bytes seedObjectsInServer stores as `<prefix><name>`: the SHA-256 of the name, repeated (as
 * sandbox/server_patches/sandbox_endpoints.py's seed_body), so a name holds the same bytes under every
 * prefix.
 */
export function seedBody(name: string, bytes: number): Buffer {
  const pattern = createHash('sha256').update(name).digest();
  return Buffer.alloc(bytes, pattern);
}

/**
 * Writes one object of `bytes` random bytes as a multipart upload, generating each part as it is sent,
 * so the object exists only in the S3 server, never in the repository or on this side's disk.
 */
export async function seedBigObject(s3: S3Client, bucket: string, key: string, bytes: number): Promise<void> {
  let remaining = bytes;
  const body = new Readable({
    read() {
      if (remaining === 0) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(MiB, remaining));
      remaining -= chunk.length;
      this.push(chunk);
    },
  });
  await new Upload({
    client: s3,
    partSize: SEED_PART_SIZE,
    queueSize: 2,
    params: { Bucket: bucket, Key: key, Body: body, ContentLength: bytes },
  }).done();
}

/** Every object under `prefix`, in listing order. */
export async function listPrefix(s3: S3Client, bucket: string, prefix: string): Promise<Listed[]> {
  const objects: Listed[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) {
      objects.push({
        key: object.Key ?? '',
        size: object.Size ?? 0,
        lastModified: object.LastModified ?? new Date(0),
        etag: object.ETag ?? '',
      });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

/** Deletes everything under `prefix`, 1,000 keys a request. */
export async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  const keys = (await listPrefix(s3, bucket, prefix)).map((object) => object.key);
  for (let start = 0; start < keys.length; start += 1000) {
    await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.slice(start, start + 1000).map((Key) => ({ Key })), Quiet: true },
      }),
    );
  }
}
