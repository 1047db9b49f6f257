/**
 * What the tests of a worker held at a gate while another runs share (pass-deletion-marks.test.ts,
 * part-task-deletion-race.test.ts): an event worker held at a gate until released, the outcome of a
 * change applied in the background, and whether the destination holds a key.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ChangeDependencies } from '../../functions/core/events/apply-change.js';
import type { Job } from '../../functions/core/job.js';
import type { SyncDependencies } from '../../functions/core/run/sync-types.js';
import type { SandboxInfo } from '../../sandbox/sandbox.js';
import { eventDependencies, type RaceAt, racingDependencies } from './event-helpers.js';

/** A promise and the function that resolves it: how one held worker waits for the other. */
export function signal(): { reached: Promise<void>; reach: () => void } {
  let reach = () => {};
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  return { reached, reach };
}

/**
 * The event worker's clients for `job` (over `deps`'s table), held at `at` until `release` resolves;
 * `held` resolves once it is there.
 */
export function heldEvent(
  sandbox: SandboxInfo,
  deps: SyncDependencies,
  job: Job,
  at: RaceAt,
  release: Promise<void>,
) {
  const held = signal();
  const gate = racingDependencies(sandbox, deps, at, async () => {
    held.reach();
    await release;
  });
  gate.arm();
  const events: ChangeDependencies = {
    ...eventDependencies(sandbox, deps, job, `${job.jobId}-event`),
    destinationS3: gate.deps.destinationS3,
    state: gate.deps.state,
  };
  return { events, held: held.reached, raced: gate.raced };
}

/** What `run` (a change applied) returned, or the error it threw (the queue delivers a retryable one again). */
export async function settle(run: Promise<unknown>): Promise<{ result?: unknown; error?: unknown }> {
  try {
    return { result: await run };
  } catch (error) {
    return { error };
  }
}

/** Whether `bucket` holds `key`. */
export async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw error;
  }
}
