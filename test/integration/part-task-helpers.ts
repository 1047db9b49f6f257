/**
 * What the part-task tests share (fan-out-parts*.test.ts, part-task-*.test.ts): bytes whose every offset
 * differs, a fan-out pass started, its tasks captured, the destination's open uploads, a job's ledger, and
 * how a test runs a worker's handler by hand (`workerControl`).
 */
import { createHash } from 'node:crypto';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import type { CopyTask } from '../../functions/core/dispatch/copy-tasks.js';
import type { PartTask } from '../../functions/core/dispatch/part-tasks.js';
import type { PlanShardTask } from '../../functions/core/dispatch/shard-tasks.js';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import type { Job } from '../../functions/core/job.js';
import type { SyncDependencies } from '../../functions/core/run/sync-types.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';

const MiB = 1024 * 1024;

/** A worker's control for a handler a test calls itself: errors only logged, 8 MiB parts, never aborted. */
export function workerControl(worker: string) {
  return { log: consoleLogger('error'), worker, signal: new AbortController().signal, minPartSize: 8 * MiB };
}

export const sha = (body: Buffer) => createHash('sha256').update(body).digest('hex');

/** Bytes that differ at every offset, so a part in the wrong place shows. */
export const bytesOf = (size: number, seed: number) => {
  const body = Buffer.alloc(size);
  for (let offset = 0; offset < size; offset += 4)
    body.writeUInt32LE((offset * 2654435761 + seed) >>> 0, offset);
  return body;
};

/** Starts `job`'s fan-out pass, checked to have started. */
export async function startPass(fanOut: LocalFanOut, job: Job) {
  const started = await handleEvent(fanOut.deps, job);
  expect(started).toMatchObject({ mode: 'fan-out', status: 'started' });
  return started as Extract<PassStart, { status: 'started' }>;
}

/** The multipart uploads open under `job`'s destination prefix. */
export async function openUploads(s3: S3Client, job: Job) {
  const { Uploads = [] } = await s3.send(
    new ListMultipartUploadsCommand({ Bucket: job.destination.bucket, Prefix: job.destination.prefix }),
  );
  return Uploads;
}

/** Every ledger entry of `job`, in key order. */
export async function ledgerOf(deps: Pick<SyncDependencies, 'state'>, job: Job) {
  const entries = [];
  for await (const entry of deps.state.ledger(job.jobId)) entries.push(entry);
  return entries;
}

/**
 * Fan-out dependencies over `deps` whose queues capture the tasks sent instead of queueing them, so a test
 * runs each delivery itself, in the order it chooses.
 */
export function capturingTasks<D extends SyncDependencies>(deps: D) {
  const sent = { shards: [] as PlanShardTask[], copies: [] as CopyTask[], parts: [] as PartTask[] };
  const fanOutDeps = {
    ...deps,
    queues: {
      planShard: async (task: PlanShardTask) => void sent.shards.push(task),
      copy: async (task: CopyTask) => void sent.copies.push(task),
      part: async (task: PartTask) => void sent.parts.push(task),
    },
  };
  return { fanOutDeps, sent };
}
