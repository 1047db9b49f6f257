/**
 * `npm start -- --workers N`: a fan-out pass on the sandbox (docs/fan-out.md). The scheduled function's
 * code starts the pass; shard planners and N copy workers work it from moto's SQS through local event
 * source mappings; the last worker ends it. Two passes: a first copy (no ledger yet: shards cut from the
 * source listing), then one after the producer adds objects (shards cut from the ledger).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import type { Job } from '../../functions/core/job.js';
import type { SyncDependencies } from '../../functions/core/run/sync-types.js';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import { sandboxS3, sandboxSqs } from '../../sandbox/clients.js';
import { startLocalFanOut } from '../../sandbox/fan-out.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { compareBuckets } from './compare-buckets.js';

const PREFIX = 'fan-out/';
const FIRST_OBJECTS = 400;
const ADDED_OBJECTS = 100;
const KEYS_PER_SHARD = 100;

interface Output {
  say: (line?: string) => void;
  ok: (line: string) => void;
  /** Each pass's run record, as it ends (`--json` prints it). */
  onPass?: (record: Record<string, unknown>) => void;
}

/** Runs the demo; returns what went wrong (nothing, when the destination matches the source). */
export async function runFanOutDemo(
  sandbox: Sandbox,
  deps: SyncDependencies,
  baseJob: Job,
  workers: number,
  { say, ok, onPass }: Output,
): Promise<string[]> {
  const producer = sandboxS3(sandbox, sandbox.accountA.admin);
  const job: Job = {
    ...baseJob,
    jobId: 'demo-fan-out',
    source: { ...baseJob.source, prefix: PREFIX },
    destination: { ...baseJob.destination, prefix: PREFIX },
    options: {
      ...baseJob.options,
      fanOut: { ...baseJob.options.fanOut, mode: 'always', aboveKeys: 1, keysPerShard: KEYS_PER_SHARD },
    },
  };
  const fanOut = await startLocalFanOut(
    sandboxSqs(sandbox, sandbox.accountB.admin),
    sandbox.region,
    deps,
    sandboxSqs(sandbox, sandbox.accountB.syncer),
    { workers, visibilityTimeoutSeconds: 300 },
  );
  const failures: string[] = [];
  try {
    ok(`queues plan-shard and copy (each with a dead-letter queue) on moto's SQS; ${workers} copy workers`);
    await putObjects(producer, sandbox.accountA.bucket, 0, FIRST_OBJECTS);
    ok(`AccountA wrote ${FIRST_OBJECTS} objects under ${PREFIX}`);
    for (const [label, expected] of [
      ['first pass', FIRST_OBJECTS],
      ['second pass', ADDED_OBJECTS],
    ] as const) {
      if (label === 'second pass') {
        await putObjects(producer, sandbox.accountA.bucket, FIRST_OBJECTS, ADDED_OBJECTS);
        ok(`AccountA added ${ADDED_OBJECTS} more`);
      }
      const started = Date.now();
      const start = (await handleEvent(fanOut.deps, job)) as PassStart;
      if (start.status !== 'started') throw new Error(`the ${label} did not start: ${JSON.stringify(start)}`);
      say(`  ${label}: fence ${start.fence}, ${start.shards} shard${start.shards === 1 ? '' : 's'}`);
      const record = await untilEnded(deps, job, start.fence, (line) => say(`    ${line}`));
      onPass?.(record);
      const seconds = (Date.now() - started) / 1000;
      ok(
        `${label} ended once: copied ${record.copied}, skipped ${record.skipped}, failed ${record.failed} in ` +
          `${seconds.toFixed(2)} s (${Math.round(record.copied / seconds)} objects/s)`,
      );
      if (record.copied !== expected || record.failed !== 0) {
        failures.push(
          `fan-out ${label}: copied ${record.copied} (expected ${expected}), failed ${record.failed}`,
        );
      }
    }
    const stats = fanOut.mappings.copy.stats;
    ok(`copy mapping: ${stats.batches} batches, ${stats.deleted} tasks deleted, ${stats.returned} returned`);
    const mismatches = await compareBuckets(sandbox, PREFIX);
    if (mismatches.length === 0) ok(`every object under ${PREFIX} is in AccountB’s bucket, byte for byte`);
    failures.push(...mismatches);
  } finally {
    await fanOut.stop();
  }
  return failures;
}

async function putObjects(s3: S3Client, bucket: string, from: number, count: number): Promise<void> {
  const keys = Array.from(
    { length: count },
    (_, i) => `${PREFIX}part-${String(from + i).padStart(5, '0')}.json`,
  );
  for (let i = 0; i < keys.length; i += 25) {
    await Promise.all(
      keys
        .slice(i, i + 25)
        .map((Key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: JSON.stringify({ Key }) }))),
    );
  }
}

/**
 * Waits for the pass to end, printing its progress when it changes (read every `pollMs`: the benchmark,
 * which times the pass, reads more often and waits longer); returns its run record.
 */
export async function untilEnded(
  deps: SyncDependencies,
  job: Job,
  fence: number,
  progress: (line: string) => void,
  { pollMs = 1000, limitMinutes = 10 } = {},
) {
  const pass = new PassTally(deps.state.client, deps.state.tableName, job.jobId, fence);
  let last = '';
  for (let waited = 0; ; waited += 1) {
    const state = await pass.read();
    const line = `${state.state}: ${state.outstanding} tasks outstanding, ${state.totals.copied ?? 0} objects copied`;
    if (line !== last) progress(line);
    last = line;
    if (state.state === 'ended') break;
    if (waited * pollMs > limitMinutes * 60_000) {
      throw new Error(`pass ${fence} did not end in ${limitMinutes} minutes: ${line}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  const [record] = await deps.state.recentRuns(job.jobId, 1);
  return record as Record<string, unknown> & { copied: number; skipped: number; failed: number };
}
