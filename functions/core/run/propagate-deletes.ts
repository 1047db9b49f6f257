/**
 * Deletions: a key gone from the source, or one a run that died may have written and no pass found. A
 * mirror job removes the destination copy (up to maxDeletesPerRun a run); any other job keeps what may be
 * there on record, so the key can be reclaimed if it comes back.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { destinationKeyFor } from '../plan/keys.js';
import { mergeUnrecorded } from '../state/interrupted-writes.js';
import type { LedgerEntry } from '../state/state-store.js';
import type { RunContext } from './run-context.js';

/** Carries one run's deletions to the destination and the ledger. */
export class DeletePropagator {
  #started = 0;
  /** Takes one deletion off the run's allowance; false once `maxDeletesPerRun` have started. */
  readonly #reserve: (key: string) => Promise<boolean>;

  /**
   * `reserve` replaces this run's own count of deletions started: a fan-out pass counts its shards'
   * deletions together, so the cap holds for the pass however many planners delete at once.
   */
  constructor(
    readonly run: RunContext,
    reserve?: (key: string) => Promise<boolean>,
  ) {
    this.#reserve = reserve ?? (async () => this.#reserveHere());
  }

  #reserveHere(): boolean {
    if (this.#started >= this.run.job.options.maxDeletesPerRun) return false;
    this.#started += 1;
    return true;
  }

  /** Handles a ledger entry whose key the source no longer lists. */
  async propagate(entry: LedgerEntry): Promise<void> {
    const { deps, job, log, lease, interrupted } = this.run;
    const { jobId, options } = job;
    if (!options.mirror) {
      // Gone at the source, but a run that died may have written it: keep that on record for the day
      // the key comes back, since this run will delete the intent that said so. A key gone is no longer
      // behind either: its first sighting uncopied is dropped, or a key that comes back months later
      // would count its lag from then.
      const write = interrupted.get(entry.key);
      if (write || entry.firstSeenAt !== undefined) {
        const { firstSeenAt: _gone, ...kept } = entry;
        const pending = write ? mergeUnrecorded(entry.pending, write) : entry.pending;
        await deps.state.putLedgerEntry(jobId, { ...kept, pending }, lease.fence);
      }
      return;
    }
    // Counted when started, not when done: deletions run concurrently and the cap is a safety limit.
    if (!(await this.#reserve(entry.key))) {
      log.warn('delete limit reached; the rest waits for the next run', {
        key: entry.key,
        maxDeletesPerRun: options.maxDeletesPerRun,
      });
      return;
    }
    // A key with no recorded copy may still hold what a run that died wrote there.
    await this.#deleteCopy(entry.key, entry.destinationKey);
    await deps.state.deleteLedgerEntry(jobId, entry.key, lease.fence);
  }

  /**
   * Keys a run that died was uploading, now in neither the source nor the ledger (deleted at the source
   * before they were recorded). A mirror job removes what that run may have left at the destination; any
   * other job keeps it, on record, so the key can be reclaimed if it comes back.
   */
  async resolveUnseen(): Promise<void> {
    const { deps, job, lease, interrupted } = this.run;
    for (const key of interrupted.unresolvedKeys()) {
      if (job.options.mirror) {
        await this.#deleteCopy(key);
        continue;
      }
      const write = interrupted.get(key);
      // Stryker disable next-line ConditionalExpression: every unresolved key came from an intent, so it has a write
      if (write) await deps.state.putLedgerEntry(job.jobId, { key, pending: write }, lease.fence);
    }
  }

  /** Deletes the destination copy of a source key (mirror jobs only). */
  async #deleteCopy(key: string, destinationKey?: string): Promise<void> {
    const { deps, job, log, tally } = this.run;
    const { source, destination } = job;
    await deps.destinationS3.send(
      new DeleteObjectCommand({
        Bucket: destination.bucket,
        Key: destinationKey ?? destinationKeyFor(key, source.prefix, destination.prefix),
      }),
    );
    tally.countDeleted();
    log.debug('object deleted', { key });
  }
}
