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

/**
 * How a run takes a deletion off its allowance and records one done. An inline run counts both itself; a
 * fan-out pass keeps both on its pass item (state/pass-deletions.ts), so the cap holds for the pass however
 * many planners delete at once, and each deletion is counted once however many deliveries of one planner
 * make it.
 */
export interface DeletionAccount {
  /** Takes the deletion of `key` off the run's allowance; false once `maxDeletesPerRun` have started. */
  reserve(key: string): Promise<boolean>;
  /** Removes `key`'s ledger entry once its destination copy is deleted, and counts the deletion, once. */
  record(key: string): Promise<void>;
}

/** Carries one run's deletions to the destination and the ledger. */
export class DeletePropagator {
  #started = 0;
  readonly #account: DeletionAccount;

  /** `account` replaces this run's own: a fan-out pass's (see DeletionAccount). */
  constructor(
    readonly run: RunContext,
    account?: DeletionAccount,
  ) {
    this.#account = account ?? {
      reserve: async () => this.#reserveHere(),
      record: (key) => this.#recordHere(key),
    };
  }

  #reserveHere(): boolean {
    if (this.#started >= this.run.job.options.maxDeletesPerRun) return false;
    this.#started += 1;
    return true;
  }

  async #recordHere(key: string): Promise<void> {
    const { deps, job, lease, tally } = this.run;
    await deps.state.deleteLedgerEntry(job.jobId, key, lease.fence);
    tally.countDeleted();
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
    if (!(await this.#account.reserve(entry.key))) {
      log.warn('delete limit reached; the rest waits for the next run', {
        key: entry.key,
        maxDeletesPerRun: options.maxDeletesPerRun,
      });
      return;
    }
    // A key with no recorded copy may still hold what a run that died wrote there.
    await this.#deleteCopy(entry.key, entry.destinationKey);
    // Counted with the ledger change, not here: a twin delivery may delete the same key (docs/fan-out.md).
    await this.#account.record(entry.key);
  }

  /**
   * Keys a run that died was uploading, now in neither the source nor the ledger (deleted at the source
   * before they were recorded). A mirror job removes what that run may have left at the destination; any
   * other job keeps it, on record, so the key can be reclaimed if it comes back.
   */
  async resolveUnseen(): Promise<void> {
    const { deps, job, lease, interrupted, tally } = this.run;
    for (const key of interrupted.unresolvedKeys()) {
      if (job.options.mirror) {
        // No ledger entry to remove: both deliveries of a planner read the same intents (removed only once
        // the pass ends), so they count these the same.
        await this.#deleteCopy(key);
        tally.countDeleted();
        continue;
      }
      const write = interrupted.get(key);
      // Stryker disable next-line ConditionalExpression: every unresolved key came from an intent, so it has a write
      if (write) await deps.state.putLedgerEntry(job.jobId, { key, pending: write }, lease.fence);
    }
  }

  /** Deletes the destination copy of a source key (mirror jobs only). */
  async #deleteCopy(key: string, destinationKey?: string): Promise<void> {
    const { deps, job, log } = this.run;
    const { source, destination } = job;
    await deps.destinationS3.send(
      new DeleteObjectCommand({
        Bucket: destination.bucket,
        Key: destinationKey ?? destinationKeyFor(key, source.prefix, destination.prefix),
      }),
    );
    log.debug('object deleted', { key });
  }
}
