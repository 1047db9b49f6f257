/**
 * What applying one change shares between its copy (apply-change.ts) and its deletion (apply-deletion.ts):
 * the change in the job's terms, and the outcomes both return.
 */
import { ObjectCopyError } from '../errors.js';
import type { Job } from '../job.js';
import type { LedgerEntry } from '../state/state-store.js';
import type { ChangeControl, ChangeDependencies, ChangeOutcome } from './apply-change.js';
import type { ObjectChange } from './object-change.js';

/** One change being applied for one job. */
export interface ApplyContext {
  deps: ChangeDependencies;
  job: Job;
  change: ObjectChange;
  control: ChangeControl;
  now: () => Date;
  /** The change's sequencer, as the ledger stores it. */
  sequencer: string;
  runId: string;
  destinationKey: string;
}

/** The ledger holds a change of the key at `sequencer` or later (both in the stored form). */
export function laterOrSame(entry: LedgerEntry | undefined, sequencer: string): boolean {
  return entry?.sequencer !== undefined && entry.sequencer >= sequencer;
}

export function stale(key: string): ChangeOutcome {
  return { outcome: 'stale', key, reason: 'a later change of the key was already applied' };
}

export function skipped(key: string, reason: string): ChangeOutcome {
  return { outcome: 'skipped', key, reason };
}

/**
 * The key's ledger item moved under this change (another worker recorded it, or a deleter holds it: its
 * deletion mark, state/deletion-marks.ts): nothing of this change is recorded, and applying it again
 * (the queue's redelivery) reads the key anew, once the deleter is done.
 */
export function itemMoved({ job, change }: ApplyContext, what: string): ObjectCopyError {
  return new ObjectCopyError(
    `s3://${job.source.bucket}/${change.key}: ${what}; applying the change again reads the ledger anew`,
    { retryable: true },
  );
}
