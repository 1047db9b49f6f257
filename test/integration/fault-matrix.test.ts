/**
 * The fault matrix (issue 9): the real sync, wired as in production, runs through the sandbox's fault proxy
 * against a mixed source (a few dozen objects, two of 17 MiB copied multipart) into a versioned
 * destination. Each case injects one fault at a stated rate during one run, then clean runs follow until one
 * copies nothing, and the case must end exact: the destination equals the source byte for byte with its
 * headers and metadata, one version per key, no incomplete multipart upload, and a ledger that agrees.
 *
 * Every run is bounded, so a hang fails its case instead of the suite. `npm run test:sweep` runs each case
 * at higher rates and over more seeds: FAULT_MATRIX_SEEDS (default 1), FAULT_MATRIX_RATE_FACTOR (default 1),
 * FAULT_MATRIX_SEED (first seed, default 1).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { ListMultipartUploadsCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Job } from '../../functions/core/job.js';
import type { RunSummary } from '../../functions/core/run/sync-job.js';
import type { FaultRule } from '../../sandbox/fault-proxy.js';
import { bundleChild } from '../support/bundle-child.js';
import {
  DESTINATION_BUCKET,
  expectConverged,
  type FaultMatrix,
  LEASE_TTL_MS,
  matrixJob,
  RunHungError,
  runBounded,
  runUntilQuiet,
  type SourceObject,
  seedMixedSource,
  startFaultMatrix,
} from '../support/fault-matrix.js';

const SEEDS = Number(process.env.FAULT_MATRIX_SEEDS ?? 1);
const RATE_FACTOR = Number(process.env.FAULT_MATRIX_RATE_FACTOR ?? 1);
const FIRST_SEED = Number(process.env.FAULT_MATRIX_SEED ?? 1);
/** A faulted run that takes longer than this is hung: a clean run of the whole source takes a few seconds. */
const FAULTED_RUN_MS = 45_000;
const CLEAN_RUN_MS = 45_000;
/** A hung run gets this long to wind down once the proxy resets its connections. */
const WIND_DOWN_MS = 20_000;
/** Each case: the faulted run, up to four clean runs and the checks, per seed. */
const CASE_MS = 150_000 * SEEDS;

const SOURCE_PREFIX = `fault-matrix-${Date.now().toString(36)}/`;
const rate = (base: number) => Math.min(1, base * RATE_FACTOR);
const seeds = Array.from({ length: SEEDS }, (_, index) => FIRST_SEED + index);

let matrix: FaultMatrix;
let source: SourceObject[];

beforeAll(async () => {
  matrix = await startFaultMatrix(inject('sandbox'));
  source = await seedMixedSource(matrix, SOURCE_PREFIX);
});
afterAll(() => matrix?.proxy.stop());

const key = (name: string) => `${SOURCE_PREFIX}${name}`;
/** Picks the two 17 MiB keys, so a case that cuts bodies at a rate surely cuts one multipart copy. */
const BIG = 'big/';

interface FaultCase {
  rules: FaultRule[];
  /** Keys that must end as reported failures (absent at the destination), never as wrong objects. */
  failing?: string[];
  /** The fault stays on during the clean runs too (a key that is always corrupted). */
  persistent?: boolean;
  /** What the faulted run itself must show, beyond the common end state. */
  checkFaultedRun?: (outcome: RunSummary | Error) => void;
}

/** One fault at its stated rate during one run, then clean runs, then the common end state. */
async function runFaultCase(name: string, seed: number, fault: FaultCase): Promise<void> {
  const { proxy, deps } = matrix;
  const job = matrixJob(matrix.sandbox, `${name}-${seed}`, SOURCE_PREFIX);
  await proxy.reset();
  proxy.setRules(fault.rules, { seed });
  const outcome = await runBounded(deps, job, FAULTED_RUN_MS).catch((error: Error) => error);
  const injected = proxy.counts();
  await proxy.reset();
  if (outcome instanceof RunHungError) {
    await Promise.race([outcome.settled, new Promise((resolve) => setTimeout(resolve, WIND_DOWN_MS))]);
    throw new RunHungError(
      `${outcome.message}; requests open at the proxy then: ${JSON.stringify(injected.inFlight)}, ` +
        `faults injected: ${JSON.stringify(injected.injected)}`,
      outcome.settled,
    );
  }
  expect(injected.total, `faults injected (${JSON.stringify(injected.injected)})`).toBeGreaterThan(0);
  fault.checkFaultedRun?.(outcome);
  if (fault.persistent) proxy.setRules(fault.rules, { seed });
  const runs = await runUntilQuiet(deps, job, { timeoutMs: CLEAN_RUN_MS, expectedFailures: fault.failing });
  await proxy.reset();
  const reported = runs.at(-1)?.failures.map((failure) => failure.key) ?? [];
  for (const failing of fault.failing ?? [])
    expect(reported, 'failures the last run reported').toContain(failing);
  await expectConverged(matrix, job, source, fault.failing);
}

/** A test per fault, each over every seed. */
function faultCase(title: string, name: string, fault: FaultCase): void {
  it(
    title,
    async () => {
      for (const seed of seeds) await runFaultCase(name, seed, fault);
    },
    CASE_MS,
  );
}

/** The first matching request, so every case really meets its fault, then `base` of the rest. */
const firstThen = (operation: string, base: number, fault: FaultRule['fault']): FaultRule[] => [
  s3Fault(operation, 1, fault, { count: 1 }),
  s3Fault(operation, base, fault),
];

const s3Fault = (
  operation: string,
  base: number,
  fault: FaultRule['fault'],
  extra: Partial<FaultRule> = {},
) => ({ service: 's3', operation, rate: rate(base), fault, ...extra }) satisfies FaultRule;

describe('fault matrix (sync through the fault proxy, versioned destination)', () => {
  faultCase('503 SlowDown on 30% of GetObject', 'slowdown-get', {
    rules: [s3Fault('GetObject', 0.3, { type: 'slow-down' })],
  });
  faultCase('503 SlowDown on 30% of PutObject', 'slowdown-put', {
    rules: [s3Fault('PutObject', 0.3, { type: 'slow-down' })],
  });
  faultCase('503 SlowDown on 30% of UploadPart', 'slowdown-part', {
    rules: [s3Fault('UploadPart', 0.3, { type: 'slow-down' })],
  });
  faultCase('503 SlowDown on the first and 50% of ListObjectsV2', 'slowdown-list', {
    rules: firstThen('ListObjectsV2', 0.5, { type: 'slow-down' }),
  });

  faultCase('connection reset mid-body on 20% of GetObject (and the first big one)', 'reset', {
    rules: [
      s3Fault('GetObject', 1, { type: 'reset', atFraction: 0.6 }, { key: BIG, count: 1 }),
      s3Fault('GetObject', 0.2, { type: 'reset' }),
    ],
  });
  faultCase('body cut short under the full Content-Length on 20% of GetObject', 'cut-declared', {
    rules: [
      s3Fault('GetObject', 1, { type: 'truncate', contentLength: 'declared' }, { key: BIG, count: 1 }),
      s3Fault('GetObject', 0.2, { type: 'truncate', contentLength: 'declared' }),
    ],
  });
  faultCase('body cut short under a matching Content-Length on 20% of GetObject', 'cut-matching', {
    rules: [
      s3Fault('GetObject', 1, { type: 'truncate', contentLength: 'matching' }, { key: BIG, count: 1 }),
      s3Fault('GetObject', 0.2, { type: 'truncate', atFraction: 0.9, contentLength: 'matching' }),
    ],
  });

  // A checksum-less object: only the sync's own verification stands between it and the destination.
  const CORRUPTED = key('deep/er/key-5');
  faultCase('one key always corrupted ends as a reported failure, never a wrong object', 'corrupt', {
    rules: [s3Fault('GetObject', 1, { type: 'corrupt' }, { key: `^${escapeRegExp(CORRUPTED)}$` })],
    persistent: true,
    failing: [CORRUPTED],
  });

  faultCase('500 InternalError on 25% of UploadPart, before and after the part landed', 'part-500', {
    rules: [
      s3Fault('UploadPart', 0.25, { type: 'internal-error' }),
      s3Fault('UploadPart', 0.25, { type: 'internal-error', afterForwarding: true }),
    ],
  });
  faultCase(
    '500 InternalError on the first and 50% of CompleteMultipartUpload, before it landed',
    'complete-500',
    {
      rules: firstThen('CompleteMultipartUpload', 0.5, { type: 'internal-error' }),
    },
  );
  faultCase('500 InternalError on CompleteMultipartUpload after the object landed', 'complete-500-landed', {
    rules: [
      s3Fault('CompleteMultipartUpload', 1, { type: 'internal-error', afterForwarding: true }, { count: 2 }),
    ],
  });

  faultCase('200 ms latency on 30% of S3 requests', 'latency', {
    rules: [{ service: 's3', rate: rate(0.3), fault: { type: 'latency', ms: 200 } }],
  });
  faultCase('a stalled connection mid-body fails that attempt in bounded time', 'stall', {
    rules: [s3Fault('GetObject', 1, { type: 'stall' }, { key: BIG, count: 1 })],
  });

  faultCase('DynamoDB throttling on 10% of state requests', 'throttle', {
    rules: [{ service: 'dynamodb', rate: rate(0.1), fault: { type: 'throttle' } }],
  });

  faultCase('ExpiredToken part-way: the run assumes the role again and retries, failing nothing', 'expired', {
    rules: [s3Fault('GetObject', 1, { type: 'expired-token' }, { skip: 6, count: 1 })],
    checkFaultedRun: (outcome) => {
      expect(outcome).not.toBeInstanceOf(Error);
      expect((outcome as RunSummary).failures).toEqual([]);
    },
  });

  it(
    'STS unreachable at start: a clear error naming the role, nothing written',
    async () => {
      const { proxy, deps } = matrix;
      for (const seed of seeds) {
        const job = matrixJob(matrix.sandbox, `sts-down-${seed}`, SOURCE_PREFIX);
        await proxy.reset();
        await proxy.setReachable('sts', false);
        const outcome = await runBounded(deps, job, FAULTED_RUN_MS).catch((error: Error) => error);
        await proxy.reset();
        expect(outcome).toBeInstanceOf(Error);
        expect((outcome as Error).name).toBe('AssumeRoleError');
        expect((outcome as Error).message).toContain(job.source.roleArn);
        await expectNothingWritten(job);
        await runUntilQuiet(deps, job, { timeoutMs: CLEAN_RUN_MS });
        await expectConverged(matrix, job, source);
      }
    },
    CASE_MS,
  );

  it(
    'DynamoDB unreachable mid-run (connections reset after 40 requests), then back',
    async () => {
      for (const seed of seeds) {
        await runFaultCase('ddb-down', seed, {
          rules: [{ service: 'dynamodb', skip: 40, fault: { type: 'drop' } }],
        });
      }
    },
    CASE_MS,
  );

  it(
    'SIGKILL during a multipart upload, then clean runs',
    async () => {
      for (const seed of seeds) await runKilledCase(seed);
    },
    CASE_MS,
  );
});

async function expectNothingWritten(job: Job): Promise<void> {
  const { consumer, deps } = matrix;
  const uploads = await consumer.send(
    new ListMultipartUploadsCommand({ Bucket: DESTINATION_BUCKET, Prefix: job.destination.prefix }),
  );
  expect(uploads.Uploads ?? []).toEqual([]);
  const versions = await consumer.send(
    new ListObjectVersionsCommand({ Bucket: DESTINATION_BUCKET, Prefix: job.destination.prefix }),
  );
  expect(versions.Versions ?? []).toEqual([]);
  const ledger = [];
  for await (const entry of deps.state.ledger(job.jobId)) ledger.push(entry.key);
  expect(ledger).toEqual([]);
}

let childScript: string | undefined;

/** The sync in a child process (test/support/sync-child.ts), bundled once, so it can be SIGKILLed. */
async function buildChild(): Promise<string> {
  if (childScript) return childScript;
  const bundled = await bundleChild('test/support/sync-child.ts');
  childScript = bundled;
  return bundled;
}

/**
 * A run in a child process, through the proxy, SIGKILLed once a part of a multipart upload reached moto
 * (parts are slowed so the upload is still open then); then clean runs in this process.
 */
async function runKilledCase(seed: number): Promise<void> {
  const { proxy, deps } = matrix;
  const job = matrixJob(matrix.sandbox, `sigkill-${seed}`, SOURCE_PREFIX);
  await proxy.reset();
  proxy.setRules([{ service: 's3', operation: 'UploadPart', fault: { type: 'latency', ms: 400 } }], { seed });
  const child = spawn(process.execPath, [await buildChild(), JSON.stringify(job), String(LEASE_TTL_MS)], {
    env: { ...process.env, ...matrix.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const partLanded = await waitFor(
    () => (proxy.counts().requests['s3:UploadPart'] ?? 0) >= 1,
    exited,
    60_000,
  );
  kill(child);
  const code = await exited;
  expect(
    partLanded,
    `the child started a multipart upload before it ended (exit ${code}): ${stderr.slice(-1000)}`,
  ).toBe(true);
  await proxy.reset();
  await runUntilQuiet(deps, job, { timeoutMs: CLEAN_RUN_MS });
  await expectConverged(matrix, job, source);
}

/** Polls `condition` every 20 ms until it holds, `ended` settles, or `timeoutMs` passes. */
async function waitFor(
  condition: () => boolean,
  ended: Promise<unknown>,
  timeoutMs: number,
): Promise<boolean> {
  let done = false;
  void ended.then(() => {
    done = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (!done && Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null) child.kill('SIGKILL');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
