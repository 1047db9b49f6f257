/**
 * What the function does with the event it is invoked with: the schedule's input is a job to sync, inline
 * or, for a large job in a deployment with the fan-out queues, as a pass spread over workers;
 * `{"doctor": <job>}` asks for the doctor's checks of that job, run with the function's own identity
 * (the one production runs as), copying nothing. `cross-account-sync doctor --stack` sends it.
 */
import { doctorDependenciesOf } from './clients.js';
import { type DoctorReport, diagnoseJob } from './diagnose/diagnose-job.js';
import { fansOut } from './fanout/choose-mode.js';
import { type PassStart, startPass } from './fanout/start-pass.js';
import { parseJob } from './job.js';
import { silentLogger, syncJob } from './run/sync-job.js';
import type { RunControl, RunSummary, SyncDependencies } from './run/sync-types.js';

/** An event asking the function to diagnose a job instead of running it. */
export interface DoctorEvent {
  doctor: unknown;
}

/** Whether `event` is a {@link DoctorEvent}: an object with a `doctor` field (a job never has one). */
export function isDoctorEvent(event: unknown): event is DoctorEvent {
  return typeof event === 'object' && event !== null && 'doctor' in event;
}

/**
 * Runs a scheduled sync, or the doctor for a {@link DoctorEvent}. The doctor's only writes are a
 * multipart upload it starts and aborts at the destination; no lease, ledger, manifest or metrics.
 *
 * @throws JobValidationError naming the field, for either kind of event.
 */
export async function handleEvent(
  deps: SyncDependencies,
  event: unknown,
  control: RunControl = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunSummary | DoctorReport | PassStart> {
  // Async, so an invalid doctor job rejects the promise like every other failure instead of throwing.
  if (isDoctorEvent(event)) return diagnoseJob(doctorDependenciesOf(deps, env), parseJob(event.doctor));
  const job = parseJob(event);
  if (deps.queues && (await fansOut(deps, job))) {
    return startPass({ ...deps, queues: deps.queues }, job, {
      log: deps.logger ?? silentLogger,
      runId: control.runId,
    });
  }
  return syncJob(deps, job, control);
}
