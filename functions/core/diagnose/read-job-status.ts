import { UnknownJobError } from '../errors.js';
import { LEASE_TTL_MS } from '../run/lease-keeper.js';
import type { Lease, StateStore } from '../state/state-store.js';

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
  /** The last run's replication lag (seconds since it first saw its oldest uncopied key), when recorded. */
  replicationLagSeconds?: number;
  /** Objects and bytes the last run left uncopied (failed or deferred), when it recorded them. */
  backlog?: { objects: number; bytes: number };
  failureCount: number;
  /** The first failures in key order, at most {@link MAX_LISTED_FAILURES}. */
  failures: LedgerFailure[];
  /**
   * The lease item; `held` is whether it is unexpired now, `renewalOverdue` whether its holder missed
   * renewals (a held lease not renewed looks like a run that died: `unlock` ends it).
   */
  lease?: {
    owner: string;
    acquiredAt?: string;
    expiresAt: string;
    fence: number;
    held: boolean;
    renewalOverdue: boolean;
  };
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
  const { backlogObjects: objects, backlogBytes: bytes } = lastRun ?? {};
  return {
    jobId,
    lastRun,
    replicationLagSeconds: typeof lag === 'number' ? lag : undefined,
    // Runs recorded before the backlog was measured have none.
    backlog: typeof objects === 'number' && typeof bytes === 'number' ? { objects, bytes } : undefined,
    failureCount,
    failures,
    lease: lease && {
      owner: lease.owner,
      acquiredAt: lease.acquiredAt === undefined ? undefined : new Date(lease.acquiredAt).toISOString(),
      expiresAt: new Date(lease.expiresAt).toISOString(),
      fence: lease.fence,
      held: lease.expiresAt > now,
      renewalOverdue: lease.expiresAt > now && renewalOverdue(lease, now),
    },
  };
}

/** The heartbeat of functions/core/run/lease-keeper.ts: a renewal every third of the TTL, ≥ 1 s apart. */
const heartbeatMs = (ttlMs: number) => Math.max(1000, ttlMs / 3);

/**
 * Whether the holder of `lease` has missed renewals: a live holder renews every heartbeat, each renewal
 * setting expiresAt to its time plus the TTL, so its last renewal was at expiresAt − TTL. Two heartbeats
 * without one (a missed renewal, and a whole interval of slack for a slow or retried one and for clock
 * skew) means it most likely died. Runs use LEASE_TTL_MS unless a test sets another.
 */
export function renewalOverdue(lease: Lease, now: number, ttlMs = LEASE_TTL_MS): boolean {
  const lastRenewal = lease.expiresAt - ttlMs;
  return now - lastRenewal > 2 * heartbeatMs(ttlMs);
}

/** How many items `status` scans at most to list the known job ids for a mistyped one. */
const MAX_SCANNED_ITEMS = 1000;

/**
 * Throws UnknownJobError when the table has nothing of one of `jobs`, listing the job ids it knows.
 * A job that never ran but holds anything (a lease, a checkpoint, ledger items) is known.
 */
export async function requireKnownJobs(deps: JobStatusDependencies, jobs: JobStatus[]): Promise<void> {
  const candidates = jobs.filter((job) => job.lastRun === undefined && job.lease === undefined);
  const unknown: string[] = [];
  for (const job of candidates) {
    if (!(await deps.state.hasJobRecords(job.jobId))) unknown.push(job.jobId);
  }
  if (unknown.length === 0) return;
  await throwUnknownJobs(deps, unknown);
}

/** Throws UnknownJobError for `unknown`, listing the job ids the table knows. */
export async function throwUnknownJobs(deps: JobStatusDependencies, unknown: string[]): Promise<never> {
  // Listing the known ids is a bounded Scan (see StateStore.sampleJobIds): paid only on this error path.
  const { jobIds, complete } = await deps.state.sampleJobIds(MAX_SCANNED_ITEMS);
  const known =
    jobIds.length === 0
      ? 'the table holds no job at all: check STATE_TABLE_NAME and AWS_REGION'
      : `known job ids${complete ? '' : ` (among the first ${MAX_SCANNED_ITEMS} items)`}: ${jobIds.join(', ')}`;
  throw new UnknownJobError(
    `no job ${unknown.map((id) => `"${id}"`).join(', ')} in the state table (no lease, checkpoint, run record ` +
      `or ledger item): check --job-id; ${known}`,
  );
}
