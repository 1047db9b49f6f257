/**
 * Findings 4 and 6 of issue 9, over real HTTP against the sandbox: a multipart upload a killed run left is
 * aborted by the next run (and an upload this job did not start is not), and a multipart copy cut by the
 * deadline is continued by the next runs, from the next part, until the object completes.
 *
 * The deadline is made deterministic: a middleware on the destination client lets a given number of
 * UploadPart requests through in a run, holds back the rest, and aborts the run's signal once those parts
 * have been stored.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { beforeAll, describe, expect, it } from 'vitest';
import { JobAlreadyRunningError } from '../../functions/core/errors.js';
import type { Job } from '../../functions/core/job.js';
import { type RunControl, type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { bundleChild } from '../support/bundle-child.js';
import { captureLogger } from '../support/capture-logger.js';
import { createKmsBucket, isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const DESTINATION = 'accountb-multipart-test';
const MiB = 1024 * 1024;
const LEASE_TTL_MS = 1500;

let stalledChild = '';

beforeAll(async () => {
  stalledChild = await bundleChild('test/support/sync-child-stalled.ts');
  await consumer.send(new CreateBucketCommand({ Bucket: DESTINATION })).catch(() => {});
  await consumer.send(
    new PutBucketVersioningCommand({ Bucket: DESTINATION, VersioningConfiguration: { Status: 'Enabled' } }),
  );
});

function multipartJob(name: string): Job {
  const job = isolatedJob(sandbox, name);
  return { ...job, destination: { ...job.destination, bucket: DESTINATION } };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function uploadsUnder(prefix: string, bucket = DESTINATION) {
  const listed = await consumer.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return listed.Uploads ?? [];
}

async function versionsOf(key: string, bucket = DESTINATION) {
  const listed = await consumer.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return (listed.Versions ?? []).filter((version) => version.Key === key);
}

/**
 * A run whose deadline comes once `parts` UploadPart requests have been stored: later ones are held back
 * until the deadline, then fail as aborted without reaching S3. `sent` counts the parts S3 received.
 */
function runCutAfterParts(parts: number, sent: { parts: number }) {
  const deadline = new AbortController();
  const destinationS3: S3Client = sandboxS3(sandbox, sandbox.accountB.syncer);
  let admitted = 0;
  let stored = 0;
  destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UploadPartCommand') return next(args);
      if (admitted >= parts) {
        await new Promise<void>((resolve) => {
          if (deadline.signal.aborted) resolve();
          deadline.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        throw Object.assign(new Error('held back until the deadline'), { name: 'AbortError' });
      }
      admitted += 1;
      const result = await next(args);
      sent.parts += 1;
      stored += 1;
      if (stored === parts) deadline.abort();
      return result;
    },
    { step: 'initialize' },
  );
  return { destinationS3, signal: deadline.signal };
}

/** A run that counts the parts it sends. */
function countingRun(sent: { parts: number }) {
  const destinationS3: S3Client = sandboxS3(sandbox, sandbox.accountB.syncer);
  destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'UploadPartCommand') sent.parts += 1;
      return result;
    },
    { step: 'initialize' },
  );
  return { destinationS3 };
}

/**
 * A 23 MiB object copied in 5 MiB parts into `bucket`, cut by the deadline after two parts in each of two
 * runs: the third run completes it, each part uploaded once, and the destination is the source.
 */
async function continueOverThreeRuns(job: Job, bucket: string) {
  const key = `${job.source.prefix}big.bin`;
  const data = randomBytes(23 * MiB); // five parts of 5 MiB, the last 3 MiB
  await putObject(producer, source, key, data);
  const control = { minPartSize: 5 * MiB };
  const sent = { parts: 0 };

  const cut1 = runCutAfterParts(2, sent);
  const first = await sync(job, { destinationS3: cut1.destinationS3 }, { ...control, signal: cut1.signal });
  const afterFirst = await uploadsUnder(job.destination.prefix, bucket);
  expect(afterFirst).toHaveLength(1); // the cut upload is kept, not aborted
  const recorded = await deps.state.readMultipartUploads(job.jobId);
  const cut2 = runCutAfterParts(2, sent);
  const second = await sync(job, { destinationS3: cut2.destinationS3 }, { ...control, signal: cut2.signal });
  const afterSecond = await uploadsUnder(job.destination.prefix, bucket);
  const third = await sync(job, countingRun(sent), control);

  const destinationKey = `${job.destination.prefix}big.bin`;
  expect(first).toMatchObject({ copied: 0, status: 'partial' });
  expect(recorded).toEqual([
    expect.objectContaining({ key, resume: expect.objectContaining({ completedParts: 2 }) }),
  ]);
  expect(afterFirst.map((upload) => upload.UploadId)).toEqual([recorded[0]?.uploadId]);
  expect(second).toMatchObject({ copied: 0, status: 'partial' });
  expect(afterSecond.map((upload) => upload.UploadId)).toEqual([recorded[0]?.uploadId]);
  expect(third).toMatchObject({ copied: 1, failed: 0, status: 'complete' });
  expect(sent.parts).toBe(5); // each part uploaded once, across three runs
  expect(sha256(await readObject(consumer, bucket, destinationKey))).toBe(sha256(data));
  expect(await versionsOf(destinationKey, bucket)).toHaveLength(1);
  expect(await uploadsUnder(job.destination.prefix, bucket)).toEqual([]);
  expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
  return destinationKey;
}

/** A run that also notes the upload ids it completes. */
function watchedRun() {
  const completed: string[] = [];
  const run = countingRun({ parts: 0 });
  run.destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'CompleteMultipartUploadCommand') {
        completed.push((args.input as { UploadId?: string }).UploadId ?? '');
      }
      return next(args);
    },
    { step: 'initialize' },
  );
  return { run, completed };
}

async function sync(job: Job, dependencies: Partial<SyncDependencies>, control: RunControl = {}) {
  for (let attempt = 0; attempt < 40; attempt += 1) {
    try {
      return await syncJob({ ...deps, ...dependencies }, job, {
        leaseTtlMs: LEASE_TTL_MS,
        objectRetry: { baseBackoffMs: 1 },
        ...control,
      });
    } catch (error) {
      // A killed run's lease frees itself after LEASE_TTL_MS.
      if (!(error instanceof JobAlreadyRunningError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, LEASE_TTL_MS / 3));
    }
  }
  throw new Error(`lease of ${job.jobId} never freed`);
}

describe('multipart uploads across runs (issue 9, findings 4 and 6)', () => {
  it('aborts the multipart upload a SIGKILLed run left, and no upload it did not start', async () => {
    const job = multipartJob('orphan');
    const key = `${job.source.prefix}big.bin`;
    const data = randomBytes(20 * MiB);
    await putObject(producer, source, key, data);
    // Another writer's upload under the job's destination prefix, even of the same key.
    const destinationKey = `${job.destination.prefix}big.bin`;
    const foreign = await consumer.send(
      new CreateMultipartUploadCommand({ Bucket: DESTINATION, Key: destinationKey }),
    );

    const child = spawn(process.execPath, [stalledChild, JSON.stringify(job), String(LEASE_TTL_MS)], {
      env: {
        ...process.env,
        ...sandboxEnv(sandbox),
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout?.on('data', (chunk) => {
        output += chunk;
        if (output.includes('stalled\n')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child ended (${code}) before its upload stalled`)));
    });
    child.kill('SIGKILL');
    await exited;
    const afterKill = await uploadsUnder(job.destination.prefix);

    const logger = captureLogger();
    const first = await sync(job, { logger });
    const second = await sync(job, {});

    const left = await uploadsUnder(job.destination.prefix);
    expect(afterKill).toHaveLength(2);
    expect(first).toMatchObject({ copied: 1, failed: 0 });
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'aborted multipart uploads left by earlier runs',
      fields: { aborted: 1 },
    });
    expect(second).toMatchObject({ copied: 0, failed: 0 });
    expect(left.map((upload) => upload.UploadId)).toEqual([foreign.UploadId]);
    expect(sha256(await readObject(consumer, DESTINATION, destinationKey))).toBe(sha256(data));
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
    await consumer.send(
      new AbortMultipartUploadCommand({
        Bucket: DESTINATION,
        Key: destinationKey,
        UploadId: foreign.UploadId,
      }),
    );
  });

  it('aborts an upload whose run was killed before it could record the upload id, and no other', async () => {
    const job = multipartJob('orphan-unrecorded');
    const key = `${job.source.prefix}big.bin`;
    const data = randomBytes(20 * MiB);
    await putObject(producer, source, key, data);
    const destinationKey = `${job.destination.prefix}big.bin`;
    const foreign = await consumer.send(
      new CreateMultipartUploadCommand({ Bucket: DESTINATION, Key: destinationKey }),
    );
    // The foreign upload is older than the run's record by more than the clock allowance.
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const child = spawn(
      process.execPath,
      [stalledChild, JSON.stringify(job), String(LEASE_TTL_MS), 'after-create'],
      {
        env: {
          ...process.env,
          ...sandboxEnv(sandbox),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        stdio: ['ignore', 'ignore', 'ignore'],
      },
    );
    const signal = await new Promise((resolve) => child.on('exit', (_code, killed) => resolve(killed)));
    const afterKill = await uploadsUnder(job.destination.prefix);

    const first = await sync(job, {});

    const left = await uploadsUnder(job.destination.prefix);
    expect(signal).toBe('SIGKILL');
    expect(afterKill).toHaveLength(2);
    expect(first).toMatchObject({ copied: 1, failed: 0 });
    expect(left.map((upload) => upload.UploadId)).toEqual([foreign.UploadId]);
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
    await consumer.send(
      new AbortMultipartUploadCommand({
        Bucket: DESTINATION,
        Key: destinationKey,
        UploadId: foreign.UploadId,
      }),
    );
  });

  it('continues a multipart copy cut by the deadline, from the next part, until the object completes', async () => {
    await continueOverThreeRuns(multipartJob('continue'), DESTINATION);
  });

  it("continues a cut copy of a multipart source whose parts differ from the destination's", async () => {
    const job = multipartJob('continue-composite');
    const key = `${job.source.prefix}big.bin`;
    const data = randomBytes(26 * MiB);
    // Source parts of 5 MiB, destination parts of 6 MiB: the next read starts inside a stored part.
    await new Upload({
      client: producer,
      partSize: 5 * MiB,
      params: { Bucket: source, Key: key, Body: data },
    }).done();
    const control = { minPartSize: 6 * MiB };
    const sent = { parts: 0 };

    const cut = runCutAfterParts(2, sent);
    const first = await sync(job, { destinationS3: cut.destinationS3 }, { ...control, signal: cut.signal });
    const [recorded] = await deps.state.readMultipartUploads(job.jobId);
    const reported: { key: string; sha256: string }[] = [];
    const second = await sync(job, countingRun(sent), {
      ...control,
      onObjectCopied: ({ key: copied, sha256 }) => reported.push({ key: copied, sha256 }),
    });

    const destinationKey = `${job.destination.prefix}big.bin`;
    expect(first).toMatchObject({ copied: 0, status: 'partial' });
    expect(recorded?.resume).toMatchObject({ completedParts: 2, readStart: 10 * MiB });
    // No one run read all the bytes (checked against the source's multipart ETag): reported unhashed.
    expect(reported).toEqual([{ key, sha256: '' }]);
    expect(recorded?.resume?.tailMd5).toBeDefined();
    expect(second).toMatchObject({ copied: 1, failed: 0 });
    expect(sent.parts).toBe(5);
    expect(sha256(await readObject(consumer, DESTINATION, destinationKey))).toBe(sha256(data));
    expect(await versionsOf(destinationKey)).toHaveLength(1);
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
  });

  it('aborts a cut upload whose key was deleted at the source before the next run', async () => {
    const job = multipartJob('continue-gone');
    const key = `${job.source.prefix}big.bin`;
    await putObject(producer, source, key, randomBytes(12 * MiB));
    await putObject(producer, source, `${job.source.prefix}small.txt`, 'small');
    const control = { minPartSize: 5 * MiB };
    const cut = runCutAfterParts(1, { parts: 0 });
    await sync(job, { destinationS3: cut.destinationS3 }, { ...control, signal: cut.signal });
    const cutUploads = await uploadsUnder(job.destination.prefix);
    await producer.send(new DeleteObjectCommand({ Bucket: source, Key: key }));

    const next = await sync(job, {}, control);

    expect(cutUploads).toHaveLength(1);
    expect(next).toMatchObject({ status: 'complete', failed: 0 });
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
  });

  it('aborts a cut upload once its source has changed, and copies the new version', async () => {
    const job = multipartJob('continue-stale');
    const key = `${job.source.prefix}big.bin`;
    await putObject(producer, source, key, randomBytes(12 * MiB));
    const control = { minPartSize: 5 * MiB };
    const cut = runCutAfterParts(1, { parts: 0 });
    await sync(job, { destinationS3: cut.destinationS3 }, { ...control, signal: cut.signal });
    const [stale] = await uploadsUnder(job.destination.prefix);
    const rewritten = randomBytes(12 * MiB);
    await putObject(producer, source, key, rewritten);

    const next = await sync(job, {}, control);

    expect(stale?.UploadId).toBeDefined();
    expect(next).toMatchObject({ copied: 1, failed: 0 });
    expect(sha256(await readObject(consumer, DESTINATION, `${job.destination.prefix}big.bin`))).toBe(
      sha256(rewritten),
    );
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
  });
});

describe('a multipart copy cut by the deadline into an SSE-KMS destination (issue 10)', () => {
  const KMS_KEY = `arn:aws:kms:us-east-1:${sandbox.accountA.id}:key/11111111-2222-3333-4444-555555555555`;
  const KMS_DESTINATION = 'accountb-multipart-kms';

  beforeAll(async () => {
    await createKmsBucket(consumer, KMS_DESTINATION, KMS_KEY);
    await consumer.send(
      new PutBucketVersioningCommand({
        Bucket: KMS_DESTINATION,
        VersioningConfiguration: { Status: 'Enabled' },
      }),
    );
  });

  function kmsJob(name: string): Job {
    const job = isolatedJob(sandbox, name);
    return { ...job, destination: { ...job.destination, bucket: KMS_DESTINATION } };
  }

  const control = { minPartSize: 5 * MiB };

  /** A 17 MiB object whose copy into the SSE-KMS bucket the deadline cut after two of its four parts. */
  async function cutAfterTwoParts(name: string) {
    const job = kmsJob(name);
    const data = randomBytes(17 * MiB);
    await putObject(producer, source, `${job.source.prefix}big.bin`, data);
    const cut = runCutAfterParts(2, { parts: 0 });
    await sync(job, { destinationS3: cut.destinationS3 }, { ...control, signal: cut.signal });
    const [recorded] = await deps.state.readMultipartUploads(job.jobId);
    return { job, data, recorded, destinationKey: `${job.destination.prefix}big.bin` };
  }

  /** The cut upload was aborted, never completed; the copy started over and wrote the source. */
  async function expectStartedOver(
    { job, data, recorded, destinationKey }: Awaited<ReturnType<typeof cutAfterTwoParts>>,
    next: Awaited<ReturnType<typeof sync>>,
    completed: string[],
  ) {
    expect(recorded?.uploadId).toBeTruthy();
    expect(completed).not.toContain(recorded?.uploadId);
    expect(await uploadsUnder(job.destination.prefix, KMS_DESTINATION)).toEqual([]);
    expect(next).toMatchObject({ copied: 1, failed: 0 });
    expect(sha256(await readObject(consumer, KMS_DESTINATION, destinationKey))).toBe(sha256(data));
    expect(await versionsOf(destinationKey, KMS_DESTINATION)).toHaveLength(1);
  }

  it('continues a copy into an SSE-KMS destination cut by the deadline, from the next part, until it completes', async () => {
    const destinationKey = await continueOverThreeRuns(kmsJob('kms-continue'), KMS_DESTINATION);

    const head = await consumer.send(new HeadObjectCommand({ Bucket: KMS_DESTINATION, Key: destinationKey }));
    expect(head.ServerSideEncryption).toBe('aws:kms');
  });

  it('aborts a cut upload into an SSE-KMS destination whose recorded part digests do not match the bytes read again', async () => {
    const cut = await cutAfterTwoParts('kms-continue-mismatch');
    const { job, recorded } = cut;
    const digests = Buffer.from(recorded?.resume?.partMd5s ?? new Uint8Array());
    digests[20] = (digests[20] ?? 0) ^ 0xff; // part 2's digest, as if its bytes had been other bytes
    if (recorded?.resume) {
      await deps.state.putMultipartUpload(job.jobId, {
        ...recorded,
        resume: { ...recorded.resume, partMd5s: digests },
      });
    }
    const { run, completed } = watchedRun();

    const next = await sync(job, run, control);

    expect(digests).toHaveLength(32); // parts 1 and 2, which the next read covers again
    await expectStartedOver(cut, next, completed);
  });

  it('aborts a cut upload into an SSE-KMS destination when a part S3 holds was replaced since it was recorded', async () => {
    const cut = await cutAfterTwoParts('kms-continue-replaced');
    // Part 2 overwritten with other bytes in the same upload: S3 now holds something the record never saw.
    await consumer.send(
      new UploadPartCommand({
        Bucket: KMS_DESTINATION,
        Key: cut.destinationKey,
        UploadId: cut.recorded?.uploadId,
        PartNumber: 2,
        Body: randomBytes(5 * MiB),
      }),
    );
    const { run, completed } = watchedRun();

    const next = await sync(cut.job, run, control);

    await expectStartedOver(cut, next, completed);
  });
});
