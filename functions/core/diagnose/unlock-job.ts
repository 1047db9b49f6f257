import { LeaseHeldError } from '../errors.js';
import { LEASE_TTL_MS } from '../run/lease-keeper.js';
import { type JobStatusDependencies, renewalOverdue, throwUnknownJobs } from './read-job-status.js';

/** What `unlock` found and did. */
export interface UnlockOutcome {
  jobId: string;
  /** `ended`: this call ended a held lease; `expired`/`none`: there was nothing to end. */
  outcome: 'ended' | 'expired' | 'none';
  lease?: { owner: string; fence: number; acquiredAt?: string; expiresAt: string };
  message: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? 'unknown' : new Date(ms).toISOString());

/**
 * Ends the lease of a job whose run died, so the next run need not wait for it to expire. Refuses while
 * the holder renews it (it is alive) unless `force`, and ends it with a write conditional on the lease as
 * read (owner, fence and expiry), so a renewal or a new holder in between wins. Forcing does not stop a
 * live holder: the next run takes the lease with a higher fence, and the old run's writes are refused.
 *
 * @throws LeaseHeldError when the holder is alive and not `force`, or the lease changed meanwhile
 * @throws UnknownJobError when the table has nothing of `jobId`
 */
export async function unlockJob(
  deps: JobStatusDependencies,
  jobId: string,
  options: { force: boolean; now?: number; ttlMs?: number },
): Promise<UnlockOutcome> {
  const now = options.now ?? Date.now();
  const lease = await deps.state.readLease(jobId);
  if (lease === undefined) {
    if (!(await deps.state.hasJobRecords(jobId))) await throwUnknownJobs(deps, [jobId]);
    return { jobId, outcome: 'none', message: `job ${jobId} holds no lease: nothing to unlock` };
  }
  const shown = {
    owner: lease.owner,
    fence: lease.fence,
    acquiredAt: lease.acquiredAt === undefined ? undefined : iso(lease.acquiredAt),
    expiresAt: iso(lease.expiresAt),
  };
  if (lease.expiresAt <= now) {
    return {
      jobId,
      outcome: 'expired',
      lease: shown,
      message: `job ${jobId}'s lease (run ${lease.owner}) expired at ${shown.expiresAt}: the next run takes it; nothing to unlock`,
    };
  }
  const holder = `run ${lease.owner} (since ${iso(lease.acquiredAt)}, fence ${lease.fence}, expires ${shown.expiresAt})`;
  if (!options.force && !renewalOverdue(lease, now, options.ttlMs ?? LEASE_TTL_MS)) {
    throw new LeaseHeldError(
      `job ${jobId}'s lease is held by ${holder}, which renewed it on schedule: it looks alive. ` +
        'Wait for it to finish, or stop it; --force ends the lease anyway (its writes are then fenced off ' +
        'once another run takes the job)',
    );
  }
  if (!(await deps.state.endLease(jobId, lease))) {
    throw new LeaseHeldError(
      `job ${jobId}'s lease changed while unlocking (its holder renewed it, or another run took it): ` +
        'it is alive; `status` shows who holds it',
    );
  }
  return { jobId, outcome: 'ended', lease: shown, message: `ended job ${jobId}'s lease, held by ${holder}` };
}
