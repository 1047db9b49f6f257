/**
 * Deletions: a key gone from the source, or one a run that died may have written and no pass found. A
 * mirror job removes the destination copy (up to maxDeletesPerRun a run); any other job keeps what may be
 * there on record, so the key can be reclaimed if it comes back.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { isPreconditionFailure } from '../copy/copy-object.js';
import { stripQuotes } from '../copy/integrity.js';
import { awsErrorCode } from '../errors.js';
import { destinationKeyFor } from '../plan/keys.js';
import { mergeUnrecorded } from '../state/interrupted-writes.js';
import type { LedgerEntry } from '../state/state-store.js';
import { changedByEvent } from './copy-records.js';
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
  /**
   * Removes `entry`'s ledger item once its destination copy is deleted, and counts the deletion, once;
   * unless an event recorded a change of the key since `entry` was read: returns that entry, kept and
   * not counted. `token`: the deletion mark this run set on the item (state/deletion-marks.ts), which
   * the removal requires instead of the absence of any mark.
   */
  record(entry: LedgerEntry, token?: string): Promise<LedgerEntry | undefined>;
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
      record: (entry, token) => this.#recordHere(entry, token),
    };
  }

  #reserveHere(): boolean {
    if (this.#started >= this.run.job.options.maxDeletesPerRun) return false;
    this.#started += 1;
    return true;
  }

  async #recordHere(entry: LedgerEntry, token?: string): Promise<LedgerEntry | undefined> {
    const { deps, job, lease, tally } = this.run;
    const kept = await deps.state.deleteLedgerEntry(
      job.jobId,
      entry.key,
      lease.fence,
      entry.sequencer,
      token,
    );
    if (!kept) tally.countDeleted();
    return kept;
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
    if (isEventDeletionRecord(entry)) {
      await this.#forgetEventDeletion(entry);
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
    // Marked first: the copy's If-Match cannot tell it from an event's copy of the same bytes, so a writer
    // of the key is ordered through its ledger item (state/deletion-marks.ts).
    // Owned by this pass: another delivery of the same shard planner shares the mark.
    const mark = await deps.state.markDeletion(jobId, entry, lease.fence, `pass#${this.run.control.runId}`);
    if (!mark.marked) {
      // Removed since the plan: a twin delivery deleted the key and recorded it; only the count is left.
      if (mark.now === undefined) {
        await this.#account.record(entry);
      } else if (changedByEvent(entry, mark.now)) {
        this.#leaveToEvent(entry.key, mark.now);
      } else {
        log.info('key being deleted by another worker; left to it', { key: entry.key });
      }
      return;
    }
    let recreated: LedgerEntry | undefined;
    try {
      // A key with no recorded copy may still hold what a run that died wrote there.
      recreated = await this.#deleteCopy(entry.key, entry.destinationKey, entry, mark.token);
    } catch (error) {
      await deps.state.clearDeletionMark(jobId, entry.key, mark.token);
      throw error;
    }
    if (recreated) await deps.state.clearDeletionMark(jobId, entry.key, mark.token);
    // Counted with the ledger change, not here: a twin delivery may delete the same key (docs/fan-out.md).
    const kept = recreated ?? (await this.#account.record(entry, mark.token));
    if (kept) this.#leaveToEvent(entry.key, kept);
  }

  /**
   * The record an event's deletion left (its sequencer only): that event deleted this sync's copy, so only
   * the record is left to remove, which is neither a deletion of this pass nor one of its cap. Removed only
   * while the sequencer is still the one the plan read: an event that re-created the key since keeps its
   * entry. A twin delivery that removed it first leaves nothing to do.
   */
  async #forgetEventDeletion(entry: LedgerEntry): Promise<void> {
    const { deps, job, lease } = this.run;
    const kept = await deps.state.deleteLedgerEntry(job.jobId, entry.key, lease.fence, entry.sequencer);
    if (kept) this.#leaveToEvent(entry.key, kept);
  }

  /**
   * An event re-created the key (or marked it deleted) after this pass listed it gone: the event's copy
   * and record stand, neither deleted nor failed here.
   */
  #leaveToEvent(key: string, recorded: LedgerEntry): void {
    this.run.tally.countSkipped();
    this.run.log.info('key changed by an event meanwhile; its copy and record kept', {
      key,
      sequencer: recorded.sequencer,
    });
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

  /**
   * Deletes the destination copy of a source key (mirror jobs only): the copy `recorded` names, if it
   * names one. Refused (another object is there): returns the key's entry as it is now if an event
   * recorded a change since `recorded` (its copy stays), or replaced this run's mark `token`; else
   * deletes what is there, as a mirror does with an object that is not its own.
   */
  async #deleteCopy(
    key: string,
    destinationKey?: string,
    recorded?: LedgerEntry,
    token?: string,
  ): Promise<LedgerEntry | undefined> {
    const { deps, job, log } = this.run;
    const { source, destination } = job;
    const target = {
      Bucket: destination.bucket,
      Key: destinationKey ?? destinationKeyFor(key, source.prefix, destination.prefix),
    };
    const etag = recorded?.destinationEtag;
    try {
      // Only the copy this sync recorded: an event's newer copy of a re-created key stays.
      await deps.destinationS3.send(
        new DeleteObjectCommand({
          ...target,
          ...(etag !== undefined && { IfMatch: `"${stripQuotes(etag)}"` }),
        }),
      );
    } catch (error) {
      // Already gone (a twin delivery deleted it, or a consumer did): as the unconditional delete found it.
      const { name, status } = awsErrorCode(error);
      if (name === 'NoSuchKey' || status === 404) return undefined;
      if (!isPreconditionFailure(error)) throw error;
      // Whatever is there goes: from now on a writer of another copy that has not recorded it yet is
      // refused too, and copies again after this deletion (state/deletion-marks.ts).
      const widened = token === undefined || (await deps.state.widenDeletionMark(job.jobId, key, token));
      const now = await deps.state.ledgerEntry(job.jobId, key);
      if (now && (changedByEvent(recorded, now) || !widened)) return now;
      await deps.destinationS3.send(new DeleteObjectCommand(target));
    }
    log.debug('object deleted', { key });
    return undefined;
  }
}

/**
 * Whether `entry` is the record an event's deletion left (events/apply-deletion.ts): a sequencer and
 * nothing of a copy, neither recorded, nor pending from a run that died, nor failed.
 */
function isEventDeletionRecord(entry: LedgerEntry): boolean {
  return (
    entry.sequencer !== undefined &&
    entry.etag === undefined &&
    entry.destinationEtag === undefined &&
    entry.pending === undefined &&
    entry.failure === undefined
  );
}
