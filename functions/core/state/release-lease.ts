import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.js';
import type { Lease, StateStore } from './state-store.js';

/**
 * How long a run keeps trying to give its lease back when the state table stops answering. A blip
 * (a throttled burst, a connection reset, a table briefly unreachable) passes within seconds; past
 * this the lease's own TTL (2 minutes) frees the job anyway, and the invocation should end.
 */
export const RELEASE_RETRY_WINDOW_MS = 30_000;
/** First pause between release attempts, doubled up to RELEASE_MAX_BACKOFF_MS. */
const RELEASE_FIRST_BACKOFF_MS = 500;
const RELEASE_MAX_BACKOFF_MS = 5_000;
/** Leave this much of the invocation for returning the run's result. */
const RELEASE_DEADLINE_RESERVE_MS = 1_000;

/**
 * Gives the job's lease back, retrying with backoff while the state table fails, for at most
 * RELEASE_RETRY_WINDOW_MS and never past the invocation's deadline. A lease that cannot be released
 * expires by itself; that is logged, not thrown, since the run's outcome is already decided.
 *
 * @returns whether the lease was released.
 */
export async function releaseLeaseWithRetry(
  state: Pick<StateStore, 'releaseLease'>,
  jobId: string,
  lease: Lease,
  log: { warn(message: string, ...extra: Record<string, unknown>[]): void },
  options: { remainingTimeMs?: () => number; windowMs?: number } = {},
): Promise<boolean> {
  const window = Math.min(
    options.windowMs ?? RELEASE_RETRY_WINDOW_MS,
    (options.remainingTimeMs?.() ?? Number.POSITIVE_INFINITY) - RELEASE_DEADLINE_RESERVE_MS,
  );
  const giveUpAt = Date.now() + window;
  for (let backoff = RELEASE_FIRST_BACKOFF_MS; ; backoff = Math.min(backoff * 2, RELEASE_MAX_BACKOFF_MS)) {
    try {
      await state.releaseLease(jobId, lease);
      return true;
    } catch (error) {
      if (Date.now() + backoff > giveUpAt) {
        log.warn('lease not released; it expires by itself', {
          jobId,
          expiresAt: new Date(lease.expiresAt).toISOString(),
          error: describeError(error),
        });
        return false;
      }
      log.warn('lease not released; retrying', { jobId, retryInMs: backoff, error: describeError(error) });
      await sleep(backoff);
    }
  }
}
