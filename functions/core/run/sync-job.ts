/**
 * The run room: one sync run of a job, from lease to summary.
 *
 * - sync-job.ts (this file): the run's steps, in order, and the names callers import;
 * - run-pass.ts: the pass over the job's keys: plan each range, dispatch, settle, sum up;
 * - copy-and-record.ts: one planned copy and what the run records of it;
 * - propagate-deletes.ts: deletions carried to the destination (mirror jobs) or kept on record;
 * - intent-batcher.ts: copies announced in upload-intent batches before they start;
 * - task-pool.ts: concurrency slots, tasks in flight, the first fatal error;
 * - lease-keeper.ts: the lease's heartbeat, and a lost lease stopping the run;
 * - run-deadline.ts: when to stop starting copies, and when to cut those in flight;
 * - run-context.ts, sync-types.ts: what the steps share, and the types callers see;
 * - semaphore.ts: the counting semaphore behind the concurrency slots.
 */
import { randomBytes } from 'node:crypto';
import { openSourceAccess } from '../access/preflight.js';
import type { Job } from '../job.js';
import { announceRun } from '../report/announce-run.js';
import { releaseLeaseWithRetry } from '../state/release-lease.js';
import { LEASE_TTL_MS } from './lease-keeper.js';
import { deadlineMargins, deadlineSignal } from './run-deadline.js';
import { RunPass } from './run-pass.js';
import type { RunControl, RunSummary, SyncDependencies, SyncLogger } from './sync-types.js';

export { copiedLedgerEntry } from './copy-records.js';
export { LEASE_TTL_MS } from './lease-keeper.js';
export type {
  CopiedObject,
  RunControl,
  RunSummary,
  SyncDependencies,
  SyncLogger,
  SyncMetrics,
  SyncProgress,
} from './sync-types.js';
export { LARGE_OBJECT_CONCURRENCY, SMALL_OBJECT_BYTES } from './task-pool.js';

/**
 * Runs one sync of `job`: assume the source role, check both buckets, take the job's lease, merge the
 * source listing with the ledger, copy what is new or changed, record each copy, and save where to
 * resume. Nothing is written before the checks pass.
 *
 * @throws JobValidationError, AssumeRoleError, BucketAccessError, JobAlreadyRunningError, LeaseLostError
 */
export async function syncJob(
  dependencies: SyncDependencies,
  job: Job,
  control: RunControl = {},
): Promise<RunSummary> {
  const deps = inDestinationRegion(dependencies, job);
  const runId = control.runId ?? newRunId();
  const log = deps.logger ?? silentLogger;
  const started = Date.now();

  const { sourceS3, credentials } = await openSourceAccess(deps, job, runId);

  const leaseTtlMs = control.leaseTtlMs ?? LEASE_TTL_MS;
  const lease = await deps.state.acquireLease(job.jobId, runId, leaseTtlMs);
  log.info('run started', { jobId: job.jobId, runId, fence: lease.fence });
  const margins = deadlineMargins(control.timeoutMs);
  const deadline = deadlineSignal(margins.abortMs, control.remainingTimeMs, control.signal);
  const run = new RunPass(
    deps,
    job,
    { ...control, runId, leaseTtlMs, dispatchMarginMs: margins.dispatchMs, signal: deadline.signal },
    lease,
    { s3: sourceS3, credentials },
    log,
  );
  try {
    const summary = await run.execute(started);
    summary.manifest = await run.manifest.publish(deps.destinationS3, summary.finishedAt, {
      status: summary.status,
      copied: summary.copied,
      failed: summary.failed,
      deferred: summary.deferred,
    });
    await deps.state.putRunRecord(job.jobId, summary);
    await announceRun(deps, job, summary, log);
    log.info('run finished', { ...summary, failures: summary.failures.length, archivedKeys: undefined });
    return summary;
  } catch (error) {
    await run.manifest.discard();
    throw error;
  } finally {
    deadline.dispose();
    run.lease.stop();
    await releaseLeaseWithRetry(deps.state, job.jobId, run.lease.lease, log, {
      remainingTimeMs: control.remainingTimeMs,
    });
  }
}

/**
 * A job that names its destination bucket's region writes there directly; otherwise the destination
 * client (in the function's region) follows S3's redirect on each request.
 */
export function inDestinationRegion<D extends SyncDependencies>(deps: D, job: Job): D {
  const region = job.destination.region;
  return region && deps.destinationS3In ? { ...deps, destinationS3: deps.destinationS3In(region) } : deps;
}

/** Sortable and short: it goes into the STS session name and run record keys. */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** For callers that give no logger. */
export const silentLogger: SyncLogger = { debug() {}, info() {}, warn() {}, error() {} };
