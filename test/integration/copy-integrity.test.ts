/**
 * Finding 1 of issue 9, over real HTTP against the sandbox: a source read that is cut short (its response
 * ends cleanly with a matching Content-Length) or corrupted must never become the destination's object.
 * A middleware on the source client rewrites chosen GetObject responses before the SDK parses them; the
 * destination bucket is versioned, so every write that ever became current is visible afterwards.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  type S3Client,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { DeserializeMiddleware } from '@smithy/types';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { copyObject } from '../../functions/core/copy/copy-object.js';
import type { Job } from '../../functions/core/job.js';
import { type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import { createKmsBucket, isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const DESTINATION = 'accountb-integrity-test';
const MiB = 1024 * 1024;

/**
 * How one GetObject response body is rewritten: cut to `keep` bytes, or one byte flipped at `flip`. With
 * `keepChecksums` the source's x-amz-checksum-* headers stay (a fault on the way, not an old object).
 */
type Fault = ({ keep: number } | { flip: number }) & { keepChecksums?: boolean };

/**
 * A source client whose GetObject responses for the keys in `faults` are rewritten, as a faulty network or
 * proxy would: the body is cut short (and Content-Length says so, so the response ends cleanly), or one
 * byte is changed. The checksum headers are dropped, as for objects written by tools that send none.
 * `times` counts down per key; a key without a count is faulted on every GET.
 */
function faultySource(faults: Map<string, { fault: Fault; times?: number }>): SyncDependencies['sourceS3'] {
  return (credentials, region) => {
    const client: S3Client = deps.sourceS3(credentials, region);
    const cut: DeserializeMiddleware<ServiceInputTypes, ServiceOutputTypes> =
      (next, context) => async (args) => {
        const result = await next(args);
        const key = (args.input as { Key?: string }).Key ?? '';
        const planned = faults.get(key);
        if (context.commandName !== 'GetObjectCommand' || !planned) return result;
        if (planned.times !== undefined) {
          if (planned.times === 0) return result;
          planned.times -= 1;
        }
        const response = result.response as {
          headers: Record<string, string>;
          body: Readable;
        };
        for (const name of Object.keys(response.headers)) {
          if (name.startsWith('x-amz-checksum-') && !planned.fault.keepChecksums)
            delete response.headers[name];
        }
        response.body = rewrite(response.body, planned.fault);
        if ('keep' in planned.fault) response.headers['content-length'] = String(planned.fault.keep);
        return result;
      };
    client.middlewareStack.addRelativeTo(cut, {
      relation: 'after',
      toMiddleware: 'deserializerMiddleware',
      name: 'faultyBody',
      override: true,
    });
    return client;
  };
}

function rewrite(body: Readable, fault: Fault): Readable {
  const out = new PassThrough();
  let offset = 0;
  body.on('data', (chunk: Buffer) => {
    if ('keep' in fault) {
      const room = fault.keep - offset;
      if (room > 0) out.write(chunk.subarray(0, room));
      offset += chunk.length;
      if (offset >= fault.keep && !out.writableEnded) {
        out.end();
        body.destroy();
      }
      return;
    }
    const copy = Buffer.from(chunk);
    const at = fault.flip - offset;
    if (at >= 0 && at < copy.length) copy[at] = (copy[at] ?? 0) ^ 0xff;
    offset += chunk.length;
    out.write(copy);
  });
  body.on('end', () => {
    if (!out.writableEnded) out.end();
  });
  body.on('error', (error) => out.destroy(error));
  return out;
}

function integrityJob(name: string): Job {
  const job = isolatedJob(sandbox, name);
  return { ...job, destination: { ...job.destination, bucket: DESTINATION } };
}

/** Uploads `data` as a multipart object of `partSize` parts, so its ETag is a composite `…-N`. */
async function putMultipart(key: string, data: Buffer, partSize = 5 * MiB): Promise<string> {
  const result = await new Upload({
    client: producer,
    partSize,
    params: { Bucket: source, Key: key, Body: data },
  }).done();
  return result.ETag ?? '';
}

async function versionsOf(key: string) {
  const listed = await consumer.send(new ListObjectVersionsCommand({ Bucket: DESTINATION, Prefix: key }));
  return (listed.Versions ?? []).filter((version) => version.Key === key);
}

async function uploadsUnder(prefix: string) {
  const listed = await consumer.send(
    new ListMultipartUploadsCommand({ Bucket: DESTINATION, Prefix: prefix }),
  );
  return listed.Uploads ?? [];
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  await consumer.send(new CreateBucketCommand({ Bucket: DESTINATION })).catch(() => {});
  await consumer.send(
    new PutBucketVersioningCommand({ Bucket: DESTINATION, VersioningConfiguration: { Status: 'Enabled' } }),
  );
});

describe('copy integrity against the sandbox (issue 9, finding 1)', () => {
  it('never commits a truncated read of a single-part object; the retry copies it whole', async () => {
    const job = integrityJob('cut-single');
    const key = `${job.source.prefix}small.bin`;
    const data = randomBytes(100_000);
    await putObject(producer, source, key, data);
    const sourceS3 = faultySource(new Map([[key, { fault: { keep: 60_000 }, times: 1 }]]));

    const summary = await syncJob({ ...deps, sourceS3 }, job);

    const destinationKey = `${job.destination.prefix}small.bin`;
    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    expect(sha256(await readObject(consumer, DESTINATION, destinationKey))).toBe(sha256(data));
    expect(await versionsOf(destinationKey)).toHaveLength(1);
  });

  it('never completes a multipart upload from a truncated read of a multipart source', async () => {
    const job = integrityJob('cut-multipart');
    const key = `${job.source.prefix}big.bin`;
    const data = randomBytes(12 * MiB + 4321);
    expect(await putMultipart(key, data)).toMatch(/-3"$/);
    // Past the first destination part, so a part has been uploaded when the body ends early.
    const sourceS3 = faultySource(new Map([[key, { fault: { keep: 10 * MiB }, times: 1 }]]));

    const summary = await syncJob({ ...deps, sourceS3 }, job);

    const destinationKey = `${job.destination.prefix}big.bin`;
    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    expect(sha256(await readObject(consumer, DESTINATION, destinationKey))).toBe(sha256(data));
    expect(await versionsOf(destinationKey)).toHaveLength(1);
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
  });

  it('reports a single-part key whose bytes always arrive corrupted as failed and writes nothing', async () => {
    const job = integrityJob('corrupt-single');
    const key = `${job.source.prefix}bad.bin`;
    await putObject(producer, source, key, randomBytes(50_000));
    const sourceS3 = faultySource(new Map([[key, { fault: { flip: 1234 } }]]));

    const summary = await syncJob({ ...deps, sourceS3 }, job, { objectRetry: { baseBackoffMs: 1 } });

    expect(summary).toMatchObject({ copied: 0, failed: 1 });
    expect(await versionsOf(`${job.destination.prefix}bad.bin`)).toEqual([]);
  });

  it('reports a multipart key whose bytes always arrive corrupted as failed and leaves no upload', async () => {
    const job = integrityJob('corrupt-multipart');
    const key = `${job.source.prefix}bad-big.bin`;
    await putMultipart(key, randomBytes(11 * MiB));
    const sourceS3 = faultySource(new Map([[key, { fault: { flip: 6 * MiB + 7 } }]]));

    const summary = await syncJob({ ...deps, sourceS3 }, job, { objectRetry: { baseBackoffMs: 1 } });

    expect(summary).toMatchObject({ copied: 0, failed: 1 });
    expect(summary.failures[0]?.reason).toMatch(/ETag|digest|match/i);
    expect(await versionsOf(`${job.destination.prefix}bad-big.bin`)).toEqual([]);
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
  });

  it('copies an intact multipart source and keeps its bytes', async () => {
    const job = integrityJob('intact-multipart');
    const key = `${job.source.prefix}ok.bin`;
    const data = randomBytes(11 * MiB);
    await putMultipart(key, data);

    const summary = await syncJob(deps, job);

    const destinationKey = `${job.destination.prefix}ok.bin`;
    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    expect(sha256(await readObject(consumer, DESTINATION, destinationKey))).toBe(sha256(data));
    const head = await consumer.send(new HeadObjectCommand({ Bucket: DESTINATION, Key: destinationKey }));
    expect(head.ContentLength).toBe(data.length);
  });

  it('copies a multipart source whose parts are not equal though its first part suggests they are', async () => {
    const job = integrityJob('uneven-parts');
    const key = `${job.source.prefix}uneven.bin`;
    // 3 parts of 5 MiB + 1, 5 MiB and 5 MiB + 2: ceil(size / first part) is 3, as for equal parts.
    const parts = [randomBytes(5 * MiB + 1), randomBytes(5 * MiB), randomBytes(5 * MiB + 2)];
    const { UploadId } = await producer.send(new CreateMultipartUploadCommand({ Bucket: source, Key: key }));
    const etags = [];
    for (const [index, Body] of parts.entries()) {
      const part = await producer.send(
        new UploadPartCommand({ Bucket: source, Key: key, UploadId, PartNumber: index + 1, Body }),
      );
      etags.push({ PartNumber: index + 1, ETag: part.ETag });
    }
    await producer.send(
      new CompleteMultipartUploadCommand({
        Bucket: source,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: etags },
      }),
    );

    const summary = await syncJob(deps, job);

    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    const copy = await readObject(consumer, DESTINATION, `${job.destination.prefix}uneven.bin`);
    expect(sha256(copy)).toBe(sha256(Buffer.concat(parts)));
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
  });
});

/** Any key ARN: the sandbox does not call KMS, S3 only records the key and encrypts "with" it. */
const KMS_KEY = `arn:aws:kms:us-east-1:${sandbox.accountA.id}:key/11111111-2222-3333-4444-555555555555`;
const KMS_DESTINATION = 'accountb-integrity-kms';
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

describe('SSE-KMS sources and destinations, whose ETags are not MD5s (issue 10)', () => {
  beforeAll(async () => {
    await createKmsBucket(consumer, KMS_DESTINATION, KMS_KEY);
  });

  const kms = { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: KMS_KEY } as const;

  it('the sandbox gives an SSE-KMS object an ETag that is not the MD5 of its bytes, as S3 does', async () => {
    const key = `sandbox-kms/${randomBytes(4).toString('hex')}`;
    const data = randomBytes(1000);
    const put = await putObject(producer, source, key, data, kms);
    const read = await producer.send(new GetObjectCommand({ Bucket: source, Key: key, IfMatch: put.ETag }));
    await read.Body?.transformToByteArray();

    expect(put.ServerSideEncryption).toBe('aws:kms');
    expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(put.ETag).not.toBe(`"${md5(data)}"`);
    expect(read.ETag).toBe(put.ETag);
  });

  it('the sandbox gives parts uploaded into a bucket encrypted with SSE-KMS by default ETags that are not their MD5s, as S3 does', async () => {
    const key = `sandbox-kms/${randomBytes(4).toString('hex')}`;
    const part = randomBytes(5 * MiB);
    const { UploadId } = await consumer.send(
      new CreateMultipartUploadCommand({ Bucket: KMS_DESTINATION, Key: key }),
    );
    const uploaded = await consumer.send(
      new UploadPartCommand({ Bucket: KMS_DESTINATION, Key: key, UploadId, PartNumber: 1, Body: part }),
    );
    await consumer.send(new AbortMultipartUploadCommand({ Bucket: KMS_DESTINATION, Key: key, UploadId }));

    expect(uploaded.ServerSideEncryption).toBe('aws:kms');
    expect(uploaded.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(uploaded.ETag).not.toBe(`"${md5(part)}"`);
  });

  it('copies an SSE-KMS source, below and above the part size, checked against its own checksum', async () => {
    const job = integrityJob('kms-source');
    const small = randomBytes(70_000);
    const big = randomBytes(9 * MiB + 11);
    await putObject(producer, source, `${job.source.prefix}small.bin`, small, {
      ...kms,
      ChecksumAlgorithm: 'SHA256',
    });
    await putObject(producer, source, `${job.source.prefix}big.bin`, big, kms);

    const summary = await syncJob(deps, job);

    expect(summary).toMatchObject({ copied: 2, failed: 0 });
    const at = (name: string) => `${job.destination.prefix}${name}`;
    expect(sha256(await readObject(consumer, DESTINATION, at('small.bin')))).toBe(sha256(small));
    expect(sha256(await readObject(consumer, DESTINATION, at('big.bin')))).toBe(sha256(big));
  });

  it('refuses an SSE-KMS source whose bytes arrive corrupted, and writes nothing', async () => {
    const job = integrityJob('kms-corrupt');
    const key = `${job.source.prefix}bad.bin`;
    await putObject(producer, source, key, randomBytes(50_000), { ...kms, ChecksumAlgorithm: 'CRC32' });
    const sourceS3 = faultySource(new Map([[key, { fault: { flip: 4321, keepChecksums: true } }]]));

    const summary = await syncJob({ ...deps, sourceS3 }, job, { objectRetry: { baseBackoffMs: 1 } });

    expect(summary).toMatchObject({ copied: 0, failed: 1 });
    expect(summary.failures[0]?.reason).toMatch(/checksum/i);
    expect(await versionsOf(`${job.destination.prefix}bad.bin`)).toEqual([]);
  });

  it('copies into an SSE-KMS destination, single-part and multipart', async () => {
    const job = isolatedJob(sandbox, 'kms-destination');
    const kmsJob = { ...job, destination: { ...job.destination, bucket: KMS_DESTINATION } };
    const small = randomBytes(30_000);
    const big = randomBytes(12 * MiB + 5);
    await putObject(producer, source, `${job.source.prefix}small.bin`, small);
    await putMultipart(`${job.source.prefix}big.bin`, big);

    const summary = await syncJob(deps, kmsJob);

    expect(summary).toMatchObject({ copied: 2, failed: 0 });
    for (const [name, data] of [
      ['small.bin', small],
      ['big.bin', big],
    ] as const) {
      const destinationKey = `${job.destination.prefix}${name}`;
      const head = await consumer.send(
        new HeadObjectCommand({ Bucket: KMS_DESTINATION, Key: destinationKey }),
      );
      expect(head.ServerSideEncryption).toBe('aws:kms');
      expect(sha256(await readObject(consumer, KMS_DESTINATION, destinationKey))).toBe(sha256(data));
    }
  });
});

describe('zero-byte objects', () => {
  /**
   * The SDK's S3 client warns on console.warn (its logger is a NoOpLogger) when a PutObject leaves without
   * a Content-Length header, the hint for a stream of unknown length; in Lambda that is an unstructured
   * line per empty object, pointing at a cause that is not there.
   */
  it('copies an empty object with one PutObject of Content-Length 0, and the SDK warns of nothing', async () => {
    const key = `zero-byte/${randomBytes(4).toString('hex')}`;
    const destinationKey = `${key}.copy`;
    onTestFinished(async () => {
      await producer.send(new DeleteObjectCommand({ Bucket: source, Key: key }));
      await consumer.send(new DeleteObjectCommand({ Bucket: DESTINATION, Key: destinationKey }));
    });
    const put = await putObject(producer, source, key, Buffer.alloc(0));
    const warn = vi.spyOn(console, 'warn');
    onTestFinished(() => warn.mockRestore());

    const result = await copyObject(
      { sourceS3: producer, destinationS3: consumer },
      {
        sourceBucket: source,
        key,
        etag: put.ETag ?? '',
        size: 0,
        destinationBucket: DESTINATION,
        destinationKey,
        overwrite: false,
      },
    );

    expect(warn).not.toHaveBeenCalled();
    const emptyMd5 = md5(Buffer.alloc(0));
    expect(result).toMatchObject({ bytes: 0, destinationEtag: emptyMd5, verifiedBy: 'etag-md5' });
    const head = await consumer.send(new HeadObjectCommand({ Bucket: DESTINATION, Key: destinationKey }));
    expect(head).toMatchObject({ ContentLength: 0, ETag: `"${emptyMd5}"` });
  });
});
