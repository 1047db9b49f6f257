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
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { beforeAll, describe, expect, it } from 'vitest';
import { JobAlreadyRunningError } from '../../functions/core/errors.js';
import type { Job } from '../../functions/core/job.js';
import { type RunControl, type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { bundleChild } from '../support/bundle-child.js';
import { isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

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

async function uploadsUnder(prefix: string) {
  const listed = await consumer.send(
    new ListMultipartUploadsCommand({ Bucket: DESTINATION, Prefix: prefix }),
  );
  return listed.Uploads ?? [];
}

async function versionsOf(key: string) {
  const listed = await consumer.send(new ListObjectVersionsCommand({ Bucket: DESTINATION, Prefix: key }));
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

    const first = await sync(job, {});
    const second = await sync(job, {});

    const left = await uploadsUnder(job.destination.prefix);
    expect(afterKill).toHaveLength(2);
    expect(first).toMatchObject({ copied: 1, failed: 0 });
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
    const job = multipartJob('continue');
    const key = `${job.source.prefix}big.bin`;
    const data = randomBytes(23 * MiB); // five parts of 5 MiB, the last 3 MiB
    await putObject(producer, source, key, data);
    const control = { minPartSize: 5 * MiB };
    const sent = { parts: 0 };

    const cut1 = runCutAfterParts(2, sent);
    const first = await sync(job, { destinationS3: cut1.destinationS3 }, { ...control, signal: cut1.signal });
    const afterFirst = await uploadsUnder(job.destination.prefix);
    expect(afterFirst).toHaveLength(1); // the cut upload is kept, not aborted
    const recorded = await deps.state.readMultipartUploads(job.jobId);
    const cut2 = runCutAfterParts(2, sent);
    const second = await sync(
      job,
      { destinationS3: cut2.destinationS3 },
      { ...control, signal: cut2.signal },
    );
    const afterSecond = await uploadsUnder(job.destination.prefix);
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
    expect(sha256(await readObject(consumer, DESTINATION, destinationKey))).toBe(sha256(data));
    expect(await versionsOf(destinationKey)).toHaveLength(1);
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
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
    const second = await sync(job, countingRun(sent), control);

    const destinationKey = `${job.destination.prefix}big.bin`;
    expect(first).toMatchObject({ copied: 0, status: 'partial' });
    expect(recorded?.resume).toMatchObject({ completedParts: 2, readStart: 10 * MiB });
    expect(recorded?.resume?.tailMd5).toBeDefined();
    expect(second).toMatchObject({ copied: 1, failed: 0 });
    expect(sent.parts).toBe(5);
    expect(sha256(await readObject(consumer, DESTINATION, destinationKey))).toBe(sha256(data));
    expect(await versionsOf(destinationKey)).toHaveLength(1);
    expect(await uploadsUnder(job.destination.prefix)).toEqual([]);
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
