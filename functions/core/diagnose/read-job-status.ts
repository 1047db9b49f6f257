import type { StateStore } from '../state/state-store.js';

/** `status` lists at most this many failed keys; the count covers them all. */
const MAX_LISTED_FAILURES = 20;

/** One key whose last copy attempt failed, as the ledger records it. */
export interface LedgerFailure {
  key: string;
  reason: string;
  attempts: number;
  at: string;
}

/** A job at a glance: its last run, how far behind it is, what keeps failing, and who holds it. */
export interface JobStatus {
  jobId: string;
  /** The newest run record (the RunSummary the sync stored), if the job ever ran. */
  lastRun?: Record<string, unknown>;
  /** Seconds the destination lagged the source at the end of the last run, when the run recorded it. */
  replicationLagSeconds?: number;
  failureCount: number;
  /** The first failures in key order, at most {@link MAX_LISTED_FAILURES}. */
  failures: LedgerFailure[];
  /** The lease item; `held` is whether it is unexpired now. */
  lease?: { owner: string; expiresAt: string; fence: number; held: boolean };
}

/** What reading a job's status needs. */
export interface JobStatusDependencies {
  state: StateStore;
}

/** Streams the keys of `jobId` whose last copy attempt failed, in key order. */
export async function* listLedgerFailures(state: StateStore, jobId: string): AsyncGenerator<LedgerFailure> {
  for await (const { key, failure } of state.ledgerFailures(jobId)) {
    yield {
      key,
      reason: failure?.reason ?? 'unknown',
      attempts: failure?.attempts ?? 1,
      at: failure?.at ?? '',
    };
  }
}

/** Reads a job's status without writing anything. */
export async function readJobStatus(
  deps: JobStatusDependencies,
  jobId: string,
  now = Date.now(),
): Promise<JobStatus> {
  const [runs, lease] = await Promise.all([deps.state.recentRuns(jobId, 1), deps.state.readLease(jobId)]);
  const failures: LedgerFailure[] = [];
  let failureCount = 0;
  for await (const failure of listLedgerFailures(deps.state, jobId)) {
    failureCount += 1;
    if (failures.length < MAX_LISTED_FAILURES) failures.push(failure);
  }
  const lastRun = runs[0];
  const lag = lastRun?.replicationLagSeconds;
  return {
    jobId,
    lastRun,
    replicationLagSeconds: typeof lag === 'number' ? lag : undefined,
    failureCount,
    failures,
    lease: lease && {
      owner: lease.owner,
      expiresAt: new Date(lease.expiresAt).toISOString(),
      fence: lease.fence,
      held: lease.expiresAt > now,
    },
  };
}
