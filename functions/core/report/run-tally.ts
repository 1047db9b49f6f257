/**
 * The run tally: what one run counted as it went (progress, deletions, deferrals, failures, vanished and
 * archived keys, the backlog left uncopied and since when), turned into the summary's figures at the end.
 */
import type { ListCounter } from '../plan/list-source.js';
import type { SyncProgress } from '../run/sync-types.js';
import type { LedgerEntry } from '../state/state-store.js';

/** The summary lists this many failed and archived keys; the ledger holds them all. */
export const MAX_LISTED_KEYS = 20;

/** A key and why it was not copied, as the summary lists it. */
export interface KeyReason {
  key: string;
  reason: string;
}

/** Counts one run's outcomes; `progress` is the live object handed to `onProgress`. */
export class RunTally {
  readonly progress: SyncProgress = { listed: 0, copied: 0, skipped: 0, failed: 0, bytes: 0, inFlight: 0 };
  readonly counts = { vanished: 0, archived: 0, deleted: 0, deferred: 0 };
  readonly failures: KeyReason[] = [];
  readonly vanishedKeys: KeyReason[] = [];
  readonly archivedKeys: string[] = [];
  /** Filled in by the listing as it pages. */
  readonly list: ListCounter = { listRequests: 0 };
  /** Failed objects whose last error was S3's 503 SlowDown (a fan-out worker then delays its task). */
  throttled = 0;
  /** Changes no event delivered, found by a reconciling pass (events/missed-by-events.ts). */
  missedByEvents = 0;
  /** The first of those keys, for the log line at the end of the pass. */
  readonly missedKeys: string[] = [];
  /** Objects (and their bytes) that needed copying and were left uncopied: failed or deferred. */
  readonly backlog = { objects: 0, bytes: 0 };
  /** The earliest first sighting (epoch ms) among the objects left uncopied. */
  #oldestPending: number | undefined;

  /** @param runStartedAt when this run started: the first sighting of a key it is the first to leave uncopied. */
  constructor(readonly runStartedAt = new Date().toISOString()) {}

  /**
   * Since when the destination has been behind the source for a key this run leaves uncopied, as far as
   * the sync saw: the ledger's `firstSeenAt`, kept while the key stays uncopied, else this run's start.
   */
  firstSeen(previous: LedgerEntry | undefined): string {
    return previous?.firstSeenAt ?? this.runStartedAt;
  }

  /** Counts a key the listing yielded. */
  countListed(): void {
    this.progress.listed += 1;
  }

  /** Counts a task taking (+1) or handing back (-1) a concurrency slot. */
  countInFlight(change: 1 | -1): void {
    this.progress.inFlight += change;
  }

  /** Counts an object the ledger shows already copied. */
  countSkipped(): void {
    this.progress.skipped += 1;
  }

  /** Counts a destination copy deleted (mirror jobs). */
  countDeleted(): void {
    this.counts.deleted += 1;
  }

  /** Counts a change of a job that follows events which the pass found and no event had delivered. */
  countMissedByEvents(key: string): void {
    this.missedByEvents += 1;
    if (this.missedKeys.length < MAX_LISTED_KEYS) this.missedKeys.push(key);
  }

  /** Counts an object found archived in Glacier. */
  countArchived(key: string): void {
    this.counts.archived += 1;
    if (this.archivedKeys.length < MAX_LISTED_KEYS) this.archivedKeys.push(key);
  }

  /** Counts an object copied and recorded. */
  countCopied(bytes: number): void {
    this.progress.copied += 1;
    this.progress.bytes += bytes;
  }

  /** Counts an object deleted at the source before it could be copied. */
  countVanished(key: string, reason: string): void {
    this.counts.vanished += 1;
    if (this.vanishedKeys.length < MAX_LISTED_KEYS) this.vanishedKeys.push({ key, reason });
  }

  /** Counts an object whose copy failed; it is left for the next run. `firstSeenAt`: see {@link firstSeen}. */
  countFailed(key: string, reason: string, size: number, firstSeenAt: string): void {
    this.#markNotCopied(size, firstSeenAt);
    this.progress.failed += 1;
    if (this.failures.length < MAX_LISTED_KEYS) this.failures.push({ key, reason });
  }

  /** Counts a copy this run planned and leaves to the next one (deadline or stop request). */
  countDeferred(size: number, firstSeenAt: string): void {
    this.counts.deferred += 1;
    this.#markNotCopied(size, firstSeenAt);
  }

  /** Notes an object that needed copying and is not copied, for the backlog and the replication lag. */
  #markNotCopied(size: number, firstSeenAt: string): void {
    this.backlog.objects += 1;
    this.backlog.bytes += size;
    const since = Date.parse(firstSeenAt);
    if (this.#oldestPending === undefined || since < this.#oldestPending) this.#oldestPending = since;
  }

  /**
   * Seconds since the earliest first sighting among the objects left uncopied; 0 when the run caught
   * up. Counted from when the sync first saw each key behind, not from its LastModified: copying a
   * backlog of old objects is not lag, while a key the sync keeps failing to copy is.
   */
  replicationLagSeconds(now = Date.now()): number {
    return this.#oldestPending === undefined
      ? 0
      : Math.max(0, Math.round((now - this.#oldestPending) / 1000));
  }
}
