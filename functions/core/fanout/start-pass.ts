/**
 * The pass starter (docs/fan-out.md): the scheduled function of a fan-out job. It checks both buckets as an
 * inline run does, takes the job's lease only while it starts the pass (the lease's counter is the pass's
 * fence), cuts the key space into shards from the ledger the last pass left, opens the pass, and sends one
 * plan-shard task per shard. The workers do the rest; the last of them ends the pass.
 */
import { openSourceAccess } from '../access/preflight.js';
import { cleanOrphanUploads } from '../copy/clean-orphan-uploads.js';
import { shardTasks } from '../dispatch/shard-tasks.js';
import { eventWindow } from '../events/missed-by-events.js';
import type { Job } from '../job.js';
import { type FirstPassLimits, firstPassSplits } from '../plan/first-pass-splits.js';
import { ledgerSplits } from '../plan/shards.js';
import { inDestinationRegion, newRunId } from '../run/sync-job.js';
import type { SyncLogger } from '../run/sync-types.js';
import { type PassState, PassTally } from '../state/pass-tally.js';
import { releaseLeaseWithRetry } from '../state/release-lease.js';
import { type EndControl, endIfAllSettled } from './end-pass.js';
import { type FanOutDependencies, PassOpener, PassOverError } from './open-pass.js';

/** A pass with no settlement for this long has lost its messages (they reached a dead-letter queue, say). */
export const PASS_QUIET_MS = 30 * 60 * 1000;
/** The starter holds the lease only while it opens the pass. */
const STARTER_LEASE_MS = 5 * 60 * 1000;

/** What the scheduled invocation of a fan-out job did. */
export type PassStart =
  | { mode: 'fan-out'; status: 'started'; jobId: string; runId: string; fence: number; shards: number }
  | { mode: 'fan-out'; status: 'busy'; jobId: string; fence: number; outstanding: number; since: string };

/**
 * Starts a pass of `job`, unless its last pass is still at work (`busy`). A last pass whose tasks have all
 * settled but whose end no live worker is writing (its ender's message went to the dead-letter queue) is
 * ended here first, as its ender would have. A last pass quiet for `quietMs` with tasks outstanding is
 * abandoned: its stragglers' writes carry an older fence and are refused.
 *
 * @throws AssumeRoleError, BucketAccessError (nothing written), JobAlreadyRunningError (an inline run holds
 *   the lease), TaskQueueError
 */
export async function startPass(
  dependencies: FanOutDependencies,
  job: Job,
  options: {
    log: SyncLogger;
    runId?: string;
    quietMs?: number;
    now?: () => number;
    /** When this invocation is killed (epoch ms): the end of a last pass it takes on is taken over after. */
    deadlineAt?: number;
    firstPassLimits?: Partial<FirstPassLimits>;
    /** For a job that follows events, the grace for events still on the way (RunControl.eventGraceMs). */
    eventGraceMs?: number;
  },
): Promise<PassStart> {
  const deps = inDestinationRegion(dependencies, job);
  const { state } = deps;
  const { log } = options;
  const now = options.now ?? Date.now;
  const runId = options.runId ?? newRunId(new Date(now()));
  const { sourceS3 } = await openSourceAccess(deps, job, runId);

  const last = await PassTally.current(state.client, state.tableName, job.jobId);
  const lastPass =
    last === undefined ? undefined : new PassTally(state.client, state.tableName, job.jobId, last);
  let lastState = await lastPass?.find();
  const settled = lastState?.outstanding === 0;
  if (lastPass && settled && (lastState?.state === 'running' || lastState?.state === 'ending')) {
    lastState = await endSettledPass(dependencies, job, lastPass, {
      log,
      worker: `starter-${runId}`,
      deadlineAt: options.deadlineAt,
    });
  }
  if (lastPass && (lastState?.state === 'running' || lastState?.state === 'ending')) {
    const quietFor = now() - Date.parse(lastState.updatedAt);
    if (quietFor < (options.quietMs ?? PASS_QUIET_MS)) {
      log.info('last pass still running; no new pass', { jobId: job.jobId, fence: last, ...lastState });
      return {
        mode: 'fan-out',
        status: 'busy',
        jobId: job.jobId,
        fence: lastPass.fence,
        outstanding: lastState.outstanding,
        since: lastState.startedAt,
      };
    }
  }

  const lease = await state.acquireLease(job.jobId, runId, STARTER_LEASE_MS);
  try {
    if (lastPass && (await lastPass.abandon())) {
      log.warn('last pass went quiet before it ended; abandoned', {
        jobId: job.jobId,
        fence: lastPass.fence,
      });
    }
    // The last pass is over, so every multipart upload on record is an orphan.
    await cleanOrphanUploads(deps.destinationS3, state, job, { keepContinuable: false });
    const { keysPerShard } = job.options.fanOut;
    const ledger = await ledgerSplits(state.ledger(job.jobId), keysPerShard);
    let { splits } = ledger;
    // No ledger yet (a first pass): cut from the source's listing instead (docs/fan-out.md). A later pass
    // whose ledger is smaller than one shard is one shard, without the search's requests.
    if (ledger.keys === 0) {
      const found = await firstPassSplits(sourceS3, job.source, keysPerShard, {
        limits: options.firstPassLimits,
      });
      splits = found.splits;
      const { splits: _, ...search } = found;
      log.info('shards cut from the source listing', {
        jobId: job.jobId,
        shards: splits.length + 1,
        ...search,
      });
    }
    const tasks = shardTasks(job.jobId, lease.fence, splits);
    const pass = new PassTally(state.client, state.tableName, job.jobId, lease.fence);
    const startedAt = new Date(now());
    const window = job.options.events
      ? eventWindow(await lastCompletePass(deps, job, lastState), startedAt, options.eventGraceMs)
      : undefined;
    await pass.open(tasks.length, startedAt.toISOString(), {
      runId,
      job,
      ...(window && { eventWindow: { from: window.from.toISOString(), to: window.to.toISOString() } }),
    });
    for (const task of tasks) await deps.queues.planShard(task);
    log.info('pass started', { jobId: job.jobId, runId, fence: lease.fence, shards: tasks.length });
    return {
      mode: 'fan-out',
      status: 'started',
      jobId: job.jobId,
      runId,
      fence: lease.fence,
      shards: tasks.length,
    };
  } finally {
    await releaseLeaseWithRetry(state, job.jobId, lease, log, {});
  }
}

/**
 * When the job's last complete pass ended, which the reconciling pass judges from (docs/event-driven.md):
 * the last fan-out pass if it ended, or the last complete inline pass (the checkpoint), whichever is later,
 * for a job that changed mode. A last fan-out pass that was abandoned is not looked behind: with no inline
 * pass either, nothing is judged (the figure errs low).
 */
async function lastCompletePass(
  deps: FanOutDependencies,
  job: Job,
  lastState: PassState | undefined,
): Promise<string | undefined> {
  const checkpoint = await deps.state.readCheckpoint(job.jobId);
  const times = [checkpoint.lastCompletePass?.finishedAt, lastState?.finishedAt].filter(
    (time): time is string => time !== undefined,
  );
  return times.sort().at(-1);
}

/**
 * Ends the last pass of `job` when every task of it has settled and no live worker is ending it: the
 * last settler died before claiming the end, or the ender died after, and their messages, out of receives,
 * went to the dead-letter queue, so no delivery would end it. Abandoning it would lose its manifest,
 * `_SUCCESS`, run record and event. Returns the pass as stored after (`ended`, or still `ending` when a
 * live worker holds the end: the start is then `busy`).
 */
async function endSettledPass(
  dependencies: FanOutDependencies,
  job: Job,
  last: PassTally,
  control: EndControl,
): Promise<PassState | undefined> {
  const pass = await new PassOpener(dependencies).open(job.jobId, last.fence).catch((error: unknown) => {
    if (error instanceof PassOverError) return undefined;
    throw error;
  });
  if (pass && (await endIfAllSettled(pass, control, { wait: false }))) {
    control.log.warn('ended the last pass, whose tasks had all settled but whose end no worker completed', {
      jobId: job.jobId,
      fence: last.fence,
      runId: pass.runId,
    });
  }
  return last.find();
}
