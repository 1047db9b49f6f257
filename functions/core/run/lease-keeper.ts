/**
 * The lease keeper: holds the job's lease for the run, renews it on a heartbeat, and reports a lost
 * lease (another run took the job) so that this one stops.
 */
import { describeError, LeaseLostError } from '../errors.js';
import type { Lease, StateStore } from '../state/state-store.js';
import type { SyncLogger } from './sync-types.js';

/** A crashed run's lease frees the job this long after its last heartbeat. */
export const LEASE_TTL_MS = 120_000;

/** Keeps one job's lease alive from construction until `stop()`. */
export class LeaseKeeper {
  #lease: Lease;
  readonly #heartbeat: NodeJS.Timeout;

  /** Starts the heartbeat: a renewal every third of the TTL (at least a second apart). */
  constructor(
    readonly state: StateStore,
    readonly jobId: string,
    lease: Lease,
    readonly ttlMs: number,
    readonly onLost: (error: LeaseLostError) => void,
    readonly log: SyncLogger,
  ) {
    this.#lease = lease;
    this.#heartbeat = setInterval(() => void this.#renew(), Math.max(1000, ttlMs / 3));
    this.#heartbeat.unref();
  }

  /** The lease as last renewed. */
  get lease(): Lease {
    return this.#lease;
  }

  /** The fence every conditional write of this run carries. */
  get fence(): number {
    return this.#lease.fence;
  }

  /** Stops renewing; the lease is then released (or left to expire). */
  stop(): void {
    clearInterval(this.#heartbeat);
  }

  async #renew(): Promise<void> {
    try {
      this.#lease = await this.state.renewLease(this.jobId, this.#lease, this.ttlMs);
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.onLost(error);
        this.log.error('lease lost; stopping', { jobId: this.jobId });
      } else {
        this.log.warn('lease renewal failed; retrying', { error: describeError(error) });
      }
    }
  }
}
