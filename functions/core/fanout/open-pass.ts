/**
 * What every task of a fan-out pass works with: the job as the pass started it, the pass's run id and
 * fence, its tally, and the source opened with the job's role. A worker's container keeps these for the
 * tasks of one pass that follow, so only its first task reads the pass and assumes the role.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { openSourceAccess } from '../access/preflight.js';
import type { SourceCredentials } from '../access/source-credentials.js';
import type { TaskQueues } from '../dispatch/task-queue.js';
import type { EventWindow } from '../events/missed-by-events.js';
import { type Job, parseJob } from '../job.js';
import type { RunContext } from '../run/run-context.js';
import { inDestinationRegion } from '../run/sync-job.js';
import type { RunControl, SyncDependencies, SyncLogger } from '../run/sync-types.js';
import { PassTally } from '../state/pass-tally.js';

/** A fan-out deployment's dependencies: an inline run's, and the task queues. */
export interface FanOutDependencies extends SyncDependencies {
  queues: TaskQueues;
}

/** An open pass, as its tasks see it. */
export interface OpenPass {
  /** The worker's dependencies, with the destination client in the job's destination region. */
  deps: FanOutDependencies;
  job: Job;
  runId: string;
  fence: number;
  startedAt: string;
  tally: PassTally;
  source: { s3: S3Client; credentials: SourceCredentials };
  /** For a job that follows events, the window its planners judge `missedByEvents` by (start-pass.ts). */
  eventWindow?: EventWindow;
}

/**
 * What a task's worker is given: the run control, its signal and logger, its own name, and its deadline
 * (epoch ms: when Lambda would kill it).
 */
export type TaskControl = RunControl & {
  signal: AbortSignal;
  log: SyncLogger;
  worker: string;
  deadlineAt?: number;
};

/**
 * The run context a task's steps (CopyRecorder, DeletePropagator) work in: the pass's job, source and
 * fence, with the task's own tally, manifest lines and interrupted writes.
 */
export function taskContext(
  pass: OpenPass,
  control: TaskControl,
  own: Pick<RunContext, 'tally' | 'manifest' | 'interrupted'>,
): RunContext {
  return {
    deps: pass.deps,
    job: pass.job,
    control: {
      ...control,
      runId: pass.runId,
      leaseTtlMs: 0,
      dispatchMarginMs: 0,
      delivery: control.worker,
    },
    source: pass.source,
    log: control.log,
    lease: { fence: pass.fence },
    ...own,
  };
}

/** A task of a pass that is over: a newer pass took its place, or it ended. Its message can go. */
export class PassOverError extends Error {
  override readonly name = 'PassOverError';
}

/** Opens passes for a worker's tasks, once per pass per container. */
export class PassOpener {
  /** Passes opened, by `<jobId>#<fence>`: the newest of each job (a straggler's older pass is opened afresh). */
  readonly #open = new Map<string, Promise<OpenPass>>();

  constructor(readonly deps: FanOutDependencies) {}

  /**
   * The pass `fence` of `jobId`, checked to be still running, or ending (every task of an ending pass has
   * settled: its delivery only checks that the end is being written, see endIfAllSettled).
   *
   * @throws PassOverError when the pass does not exist, was abandoned or has ended
   */
  async open(jobId: string, fence: number): Promise<OpenPass> {
    const id = `${jobId}#${fence}`;
    let pass = this.#open.get(id);
    if (!pass) {
      pass = this.#read(jobId, fence);
      for (const other of this.#open.keys()) if (other.startsWith(`${jobId}#`)) this.#open.delete(other);
      this.#open.set(id, pass);
      // A failed open (the role refused, say) is tried again by the next task, not remembered.
      pass.catch(() => this.#open.delete(id));
    }
    const opened = await pass;
    const stored = await opened.tally.find();
    if (stored?.state !== 'running' && stored?.state !== 'ending') {
      throw new PassOverError(
        `pass ${fence} of job ${jobId} is ${stored?.state ?? 'gone'}: its tasks are dropped`,
      );
    }
    return opened;
  }

  async #read(jobId: string, fence: number): Promise<OpenPass> {
    const { state } = this.deps;
    const tally = new PassTally(state.client, state.tableName, jobId, fence);
    const stored = await tally.find();
    if (stored?.runId === undefined) {
      throw new PassOverError(
        `pass ${fence} of job ${jobId} is not on record with its job: its tasks are dropped`,
      );
    }
    const job = parseJob(stored.job);
    const deps = inDestinationRegion(this.deps, job);
    const { sourceS3, credentials } = await openSourceAccess(deps, job, stored.runId);
    return {
      deps,
      job,
      runId: stored.runId,
      fence,
      startedAt: stored.startedAt,
      tally,
      source: { s3: sourceS3, credentials },
      ...(stored.eventWindow && {
        eventWindow: { from: new Date(stored.eventWindow.from), to: new Date(stored.eventWindow.to) },
      }),
    };
  }
}
