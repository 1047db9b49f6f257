/**
 * What the ledger records of a copy, shared by every writer of one (a pass's copy, an event's, a giant
 * object's completer): the entry a verified copy leaves, the sequencer a pass's write carries, and whether
 * an event recorded a change since the plan read the key.
 */
import type { CopyResult } from '../copy/copy-object.js';
import type { SourceObject } from '../plan/list-source.js';
import type { LedgerEntry } from '../state/state-store.js';

/**
 * The sequencer of the last change an event recorded for the key, for a pass's whole-item ledger write to
 * carry: a pass knows no sequencer of its own, and without it a late event older than that change would
 * no longer be refused (docs/event-driven.md). The value is the one the plan read, and the write
 * (StateStore.putPlannedEntry) is refused when the ledger holds another: an event recorded while the pass
 * copied keeps its entry.
 */
export function keptSequencer(
  previous: Pick<LedgerEntry, 'sequencer'> | undefined,
): Pick<LedgerEntry, 'sequencer'> {
  return previous?.sequencer === undefined ? {} : { sequencer: previous.sequencer };
}

/**
 * What the ledger records for an object once its copy is verified: the source version (ETag, size,
 * LastModified, which the next run's plan compares) and what was written. Exported so that the benchmark
 * can build workload 4's starting state with exactly the records a copy leaves.
 */
export function copiedLedgerEntry(
  object: SourceObject,
  destinationKey: string,
  result: Pick<CopyResult, 'sha256' | 'destinationEtag' | 'verifiedBy'>,
  runId: string,
  copiedAt = new Date(),
): LedgerEntry {
  return {
    key: object.key,
    etag: object.etag,
    size: object.size,
    lastModified: object.lastModified.toISOString(),
    sha256: result.sha256,
    destinationKey,
    destinationEtag: result.destinationEtag,
    verifiedBy: result.verifiedBy,
    copiedAt: copiedAt.toISOString(),
    runId,
  };
}

/** Whether an event recorded a change of the key after the plan read `previous` (its sequencer moved). */
export function changedByEvent(
  previous: Pick<LedgerEntry, 'sequencer'> | undefined,
  now: Pick<LedgerEntry, 'sequencer'>,
): boolean {
  return now.sequencer !== undefined && now.sequencer !== previous?.sequencer;
}
