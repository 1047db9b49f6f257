/**
 * Property, against the full sandbox (moto S3/STS/IAM with auth, DynamoDB Local): random histories in
 * which some runs are cut by the deadline and some are SIGKILLed mid-upload in a child process. After a
 * final complete run the destination equals the source, no source version was uploaded twice (the
 * destination bucket is versioned, so every completed upload leaves a version), and the ledger agrees.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
} from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { PART_SIZE } from '../../functions/core/copy/copy-object.js';
import { JobAlreadyRunningError } from '../../functions/core/errors.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { bundleChild } from '../support/bundle-child.js';
import { isolatedJob, listKeys, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const HISTORIES = Number(process.env.KILL_HISTORIES ?? 20);
const SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
const DESTINATION = 'accountb-kill-test';
const LEASE_TTL_MS = 1500;
const EMPTY_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"';
const KEYS = ['a', 'b b', 'ü/x', 'a😀', 'a！', 'big'];

type Step =
  | { op: 'put'; key: string; size: number }
  | { op: 'delete'; key: string }
  | { op: 'run'; cutAfter: number | null }
  | { op: 'killedRun'; delayMs: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      key: fc.constantFrom(...KEYS),
      size: fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 0, max: 2048 }) },
        // Over one part, so a kill can land in the middle of a multipart upload.
        { weight: 1, arbitrary: fc.constant(PART_SIZE + 4096) },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('run' as const),
      cutAfter: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('killedRun' as const),
      delayMs: fc.integer({ min: 0, max: 250 }),
    }),
  },
);
const history = fc.record({ mirror: fc.boolean(), steps: fc.array(step, { minLength: 2, maxLength: 7 }) });

let child = '';
let version = 0;
const killed = { total: 0, midUpload: 0 };

beforeAll(async () => {
  child = await bundleChild('test/support/sync-child.ts');
  await consumer.send(new CreateBucketCommand({ Bucket: DESTINATION })).catch(() => {});
  await consumer.send(
    new PutBucketVersioningCommand({ Bucket: DESTINATION, VersioningConfiguration: { Status: 'Enabled' } }),
  );
});

describe('sync properties under SIGKILL (full sandbox)', () => {
  it(`recovers from ${HISTORIES} histories with killed and cut-off runs, uploading no version twice`, async () => {
    await fc.assert(
      fc.asyncProperty(history, async ({ mirror, steps }) => {
        const isolated = isolatedJob(sandbox, 'kill', {
          options: { mirror, concurrency: 4, maxDeletesPerRun: 1000 },
        });
        const job = parseJob({ ...isolated, destination: { ...isolated.destination, bucket: DESTINATION } });
        for (const each of steps) await apply(job, each);
        const final = await runInProcess(job, null);
        expect(final?.failures).toEqual([]);
        expect(final?.status).toBe('complete');
        await assertInvariants(job);
      }),
      // Each history takes seconds against the sandbox: report the failing one rather than shrink it.
      { numRuns: HISTORIES, seed: SEED, endOnFailure: true },
    );
    // The property is only meaningful if kills really interrupted uploads.
    expect(killed.total).toBeGreaterThan(0);
    expect(killed.midUpload).toBeGreaterThan(0);
  }, 900_000);
});

async function apply(job: Job, each: Step): Promise<void> {
  const key = (name: string) => `${job.source.prefix}${name}`;
  switch (each.op) {
    case 'put': {
      version += 1;
      const stamp = Buffer.from(`${version}#${each.key}|`);
      const body = each.size === 0 ? Buffer.alloc(0) : Buffer.concat([stamp, Buffer.alloc(each.size, 46)]);
      await putObject(producer, sandbox.accountA.bucket, key(each.key), body, {
        ContentType: 'text/plain',
        Metadata: { version: String(version) },
      });
      return;
    }
    case 'delete':
      await producer.send(new DeleteObjectCommand({ Bucket: sandbox.accountA.bucket, Key: key(each.key) }));
      return;
    case 'run':
      await runInProcess(job, each.cutAfter);
      return;
    case 'killedRun':
      await runKilled(job, each.delayMs);
      return;
  }
}

/** A run in this process; waits out a lease left by a killed run. */
async function runInProcess(job: Job, cutAfter: number | null) {
  let checks = 0;
  for (let attempt = 0; attempt < 20; attempt += 1) {
    try {
      return await syncJob(deps, job, {
        leaseTtlMs: LEASE_TTL_MS,
        objectRetry: { baseBackoffMs: 1 },
        remainingTimeMs: () => (cutAfter !== null && ++checks > cutAfter ? 1_000 : 600_000),
      });
    } catch (error) {
      if (!(error instanceof JobAlreadyRunningError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, LEASE_TTL_MS / 3));
    }
  }
  throw new Error(`lease of ${job.jobId} never freed`);
}

/** A run in a child process, SIGKILLed `delayMs` after its first upload starts (or when it ends). */
async function runKilled(job: Job, delayMs: number): Promise<void> {
  const process_ = spawn(process.execPath, [child, JSON.stringify(job), String(LEASE_TTL_MS)], {
    env: { ...process.env, ...sandboxEnv(sandbox), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stderr = '';
  process_.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => process_.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    process_.stdout?.on('data', (chunk) => {
      output += chunk;
      if (output.includes('inflight\n')) {
        setTimeout(() => kill(process_), delayMs);
        resolve();
      }
    });
    void exited.then(() => resolve());
  });
  const code = await exited;
  if (code !== null && code !== 0 && !/already running/.test(stderr)) {
    throw new Error(`child run failed (${code}): ${stderr.slice(-2000)}`);
  }
}

function kill(process_: ChildProcess): void {
  if (process_.exitCode !== null) return;
  killed.total += 1;
  // Still running after its first upload began: whatever was in flight is cut off mid-transfer.
  killed.midUpload += 1;
  process_.kill('SIGKILL');
}

async function assertInvariants(job: Job): Promise<void> {
  const sourceKeys = await listKeys(producer, sandbox.accountA.bucket, job.source.prefix);
  const destinationKey = (key: string) => job.destination.prefix + key.slice(job.source.prefix.length);

  // 1. The destination equals the source, content and metadata.
  for (const key of sourceKeys) {
    const [original, copy] = await Promise.all([
      readObject(producer, sandbox.accountA.bucket, key),
      readObject(consumer, DESTINATION, destinationKey(key)),
    ]);
    expect(copy.equals(original), `${key} content`).toBe(true);
    const head = await consumer.send(
      new HeadObjectCommand({ Bucket: DESTINATION, Key: destinationKey(key) }),
    );
    const sourceHead = await producer.send(
      new HeadObjectCommand({ Bucket: sandbox.accountA.bucket, Key: key }),
    );
    expect(head.Metadata, `${key} metadata`).toEqual(sourceHead.Metadata);
    expect(head.ContentType).toBe(sourceHead.ContentType);
  }
  const copies = await listKeys(consumer, DESTINATION, job.destination.prefix);
  if (job.options.mirror) expect(copies.sort()).toEqual(sourceKeys.map(destinationKey).sort());

  // 2. No source version was uploaded twice: two versions of a key never hold the same bytes.
  const versions = await consumer.send(
    new ListObjectVersionsCommand({ Bucket: DESTINATION, Prefix: job.destination.prefix }),
  );
  const seen = new Set<string>();
  for (const stored of versions.Versions ?? []) {
    if (stored.ETag === EMPTY_ETAG) continue;
    const id = `${stored.Key} ${stored.ETag}`;
    expect(seen.has(id), `${id} uploaded twice`).toBe(false);
    seen.add(id);
  }

  // 3. The ledger agrees with the source.
  const ledger = new Map<string, string | undefined>();
  for await (const entry of deps.state.ledger(job.jobId)) ledger.set(entry.key, entry.etag);
  for (const key of sourceKeys) {
    const head = await producer.send(new HeadObjectCommand({ Bucket: sandbox.accountA.bucket, Key: key }));
    expect(ledger.get(key), `${key} ledger`).toBe(head.ETag);
  }
  if (job.options.mirror) expect(ledger.size).toBe(sourceKeys.length);
  expect((await deps.state.readCheckpoint(job.jobId)).resumeAfter).toBeUndefined();
}
