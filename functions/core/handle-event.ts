/**
 * What the function does with the event it is invoked with: the schedule's input is a job to sync, inline
 * or, for a large job in a deployment with the fan-out queues, as a pass spread over workers;
 * `{"doctor": <job>}` asks for the doctor's checks of that job, run with the function's own identity
 * (the one production runs as), copying nothing. `cross-account-sync doctor --stack` sends it.
 * `{"jobId": "..."}` alone names a job stored as data (`cross-account-sync jobs add`): it is read from the
 * state table's job store and run like an inline job, unless it is paused.
 */
import { doctorDependenciesOf } from './clients.js';
import { type DoctorReport, diagnoseJob } from './diagnose/diagnose-job.js';
import { fansOut } from './fanout/choose-mode.js';
import { type PassStart, startPass } from './fanout/start-pass.js';
import { type Job, parseJob } from './job.js';
import { silentLogger, syncJob } from './run/sync-job.js';
import type { RunControl, RunSummary, SyncDependencies, SyncLogger } from './run/sync-types.js';
import { JobStore } from './state/job-store.js';

/** An event asking the function to diagnose a job instead of running it. */
export interface DoctorEvent {
  doctor: unknown;
}

/** Whether `event` is a {@link DoctorEvent}: an object with a `doctor` field (a job never has one). */
export function isDoctorEvent(event: unknown): event is DoctorEvent {
  return typeof event === 'object' && event !== null && 'doctor' in event;
}

/** A schedule's input naming a stored job: `{"jobId": "..."}` and nothing else. */
export interface StoredJobEvent {
  jobId: string;
}

/** Whether `event` is a {@link StoredJobEvent}: an object whose only field is a string `jobId`. */
export function isStoredJobEvent(event: unknown): event is StoredJobEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return false;
  const keys = Object.keys(event);
  return keys.length === 1 && keys[0] === 'jobId' && typeof (event as StoredJobEvent).jobId === 'string';
}

/** What the function answers for a paused stored job: nothing was read, leased or written. */
export interface SkippedRun {
  jobId: string;
  status: 'skipped';
  reason: 'paused';
  message: string;
}

/**
 * Runs a scheduled sync, or the doctor for a {@link DoctorEvent}. The doctor's only writes are a
 * multipart upload it starts and aborts at the destination; no lease, ledger, manifest or metrics.
 *
 * @throws JobValidationError naming the field, for any kind of event; UnknownJobError naming `jobs add`
 *   for a {@link StoredJobEvent} whose job is not stored.
 */
export async function handleEvent(
  deps: SyncDependencies,
  event: unknown,
  control: RunControl = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunSummary | DoctorReport | PassStart | SkippedRun> {
  // Async, so an invalid doctor job rejects the promise like every other failure instead of throwing.
  if (isDoctorEvent(event)) return diagnoseJob(doctorDependenciesOf(deps, env), parseJob(event.doctor));
  const log = deps.logger ?? silentLogger;
  let job: Job;
  if (isStoredJobEvent(event)) {
    const stored = await new JobStore(deps.state.client, deps.state.tableName).require(event.jobId);
    if (stored.status === 'paused') return skipPaused(event.jobId, log);
    job = stored.job;
  } else {
    job = parseJob(event);
  }
  if (deps.queues && (await fansOut(deps, job))) {
    return startPass({ ...deps, queues: deps.queues }, job, {
      log,
      runId: control.runId,
      deadlineAt: control.remainingTimeMs && Date.now() + control.remainingTimeMs(),
      eventGraceMs: control.eventGraceMs,
    });
  }
  return syncJob(deps, job, control);
}

function skipPaused(jobId: string, log: SyncLogger): SkippedRun {
  log.info('job paused; run skipped', { jobId });
  const message = `job "${jobId}" is paused: \`cross-account-sync jobs resume ${jobId}\` runs it again`;
  return { jobId, status: 'skipped', reason: 'paused', message };
}
