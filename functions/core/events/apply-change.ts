/**
 * The event worker's core: one ObjectChange applied to the destination and the ledger. The event is a hint
 * (docs/event-driven.md, "Decisions"): the key's state is read from the source now, and that is what is
 * copied, through the same copier and ledger record as a listed object. The event's sequencer only keeps
 * the ledger from moving the key backwards when two workers race on it.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { copierFor } from '../copy/copy-method.js';
import {
  type CopyResult,
  DestinationOccupiedError,
  isPreconditionFailure,
  type UploadRecords,
} from '../copy/copy-object.js';
import { stripQuotes } from '../copy/integrity.js';
import { explainSourceFailure } from '../copy/read-source.js';
import { ObjectCopyError, SourceVanishedError } from '../errors.js';
import type { Job } from '../job.js';
import { destinationKeyFor } from '../plan/keys.js';
import type { SourceObject } from '../plan/list-source.js';
import { copiedLedgerEntry } from '../run/copy-records.js';
import { isMarkedForDeletion } from '../state/deletion-marks.js';
import type { LedgerEntry, StateStore } from '../state/state-store.js';
import { applyDeletion } from './apply-deletion.js';
import { type ApplyContext, itemMoved, laterOrSame, skipped, stale } from './change-context.js';
import type { ObjectChange } from './object-change.js';
import { storedSequencer } from './sequencer.js';

/** What applying a change needs; a test swaps any of them. */
export interface ChangeDependencies {
  /** Reads the source with the job's assumed (read-only) role. */
  sourceS3: S3Client;
  destinationS3: S3Client;
  state: Pick<
    StateStore,
    | 'readLease'
    | 'ledgerEntry'
    | 'putLedgerEntryInOrder'
    | 'markDeletion'
    | 'clearDeletionMark'
    | 'putMultipartUpload'
    | 'deleteMultipartUpload'
  >;
}

/** How one change is applied. */
export interface ChangeControl {
  signal?: AbortSignal;
  /** Recorded as the ledger entry's runId; defaults to `event-<eventId>`. */
  runId?: string;
  /** The clock the recorded time (and so the lag) is read from. */
  now?: () => Date;
  /**
   * Asked once before a mirror job deletes a destination copy; refused, the copy stays (`skipped`, with
   * the refusal's reason): the job's deletion cap is spent (the event worker's DeletionBudget, one
   * allowance per time window shared by every worker). Absent: no cap.
   */
  mayDelete?: () => Promise<DeletionVerdict>;
}

/** Whether a deletion may go ahead, and if not, why (the cap, its window and the fix). */
export type DeletionVerdict = { granted: true } | { granted: false; reason: string };

/** What became of one change. */
export interface ChangeOutcome {
  outcome: 'copied' | 'deleted' | 'up-to-date' | 'stale' | 'skipped';
  key: string;
  /** Why nothing was done, for 'skipped', 'stale' and 'up-to-date'. */
  reason?: string;
  bytes?: number;
  /** The time the change was recorded minus the event's time: the object's lag. */
  lagMs?: number;
}

/**
 * Applies one change of `job`'s source bucket: copies the key's current version, deletes its destination
 * copy (mirror jobs), or finds nothing to do.
 *
 * Ledger writes carry the job's current lease fence, read when the change is applied: the counter every
 * pass draws. An event write then never beats a pass that started later (its higher fence refuses the
 * write, LeaseLostError: applying the change again reads the new fence), and such a pass may overwrite what
 * the event wrote; a stale run's older fence is refused as before.
 *
 * @throws ObjectCopyError, retryable when applying the change again may succeed (the source changed between
 *   its HEAD and its GET; the destination changed before a delete); LeaseLostError as above
 */
export async function applyChange(
  deps: ChangeDependencies,
  job: Job,
  change: ObjectChange,
  control: ChangeControl = {},
): Promise<ChangeOutcome> {
  const { key } = change;
  if (change.bucket !== job.source.bucket) {
    return skipped(
      key,
      `the event is for bucket ${change.bucket}, not the job's source ${job.source.bucket}`,
    );
  }
  if (!key.startsWith(job.source.prefix)) {
    return skipped(key, `outside the job's source prefix "${job.source.prefix}"`);
  }
  const now = control.now ?? (() => new Date());
  const context: ApplyContext = {
    deps,
    job,
    change,
    control,
    now,
    sequencer: storedSequencer(change.sequencer),
    runId: control.runId ?? `event-${change.eventId}`,
    destinationKey: destinationKeyFor(key, job.source.prefix, job.destination.prefix),
  };
  const [current, lease, previous] = await Promise.all([
    headSource(deps.sourceS3, job.source.bucket, key, control.signal),
    deps.state.readLease(job.jobId),
    deps.state.ledgerEntry(job.jobId, key),
  ]);
  // No pass has run yet: fence 0, which any pass's (1 and up) overwrites.
  const fence = lease?.fence ?? 0;
  if (!current) return applyDeletion(context, previous, fence);
  return applyCopy(context, current, previous, fence);
}

async function applyCopy(
  context: ApplyContext,
  object: SourceObject,
  previous: LedgerEntry | undefined,
  fence: number,
): Promise<ChangeOutcome> {
  const { deps, job, change, sequencer, runId, destinationKey, now } = context;
  const { key } = change;
  if (previous?.etag !== undefined && stripQuotes(previous.etag) === stripQuotes(object.etag)) {
    // A deleter holds the key (state/deletion-marks.ts): the copy it deletes is the one found current.
    if (isMarkedForDeletion(previous)) throw itemMoved(context, 'a deletion of its copy is under way');
    return recordUpToDate(context, previous, fence);
  }
  // A later change's worker read the key after this change was made, so what it copied is at least as new.
  if (laterOrSame(previous, sequencer)) return stale(key);
  let result: CopyResult;
  try {
    result = await copyCurrent(context, object, previous);
  } catch (error) {
    if (error instanceof SourceVanishedError) return applyDeletion(context, previous, fence);
    if (error instanceof DestinationOccupiedError) {
      // Another worker's copy of a later change may be what holds the key.
      if (laterOrSame(await deps.state.ledgerEntry(job.jobId, key), sequencer)) return stale(key);
      if (!job.options.mirror) throw error;
      result = await copyCurrent(context, object, previous, { overwrite: true });
    } else if (sourceChanged(error)) {
      throw new ObjectCopyError(
        `s3://${job.source.bucket}/${key} changed between its HEAD and its GET; applying the change again copies the new version`,
        { cause: error, retryable: true },
      );
    } else {
      throw error;
    }
  }
  const copiedAt = now();
  const entry = { ...copiedLedgerEntry(object, destinationKey, result, runId, copiedAt), sequencer };
  // Refused once the item moved since `previous` (a deleter's mark or record): that deleter may have
  // removed this very copy, so the change is applied again.
  const recorded = await deps.state.putLedgerEntryInOrder(job.jobId, entry, fence, {
    read: previous,
    written: stripQuotes(result.destinationEtag),
  });
  if (recorded === 'stale') return stale(key);
  if (recorded === 'changed') throw itemMoved(context, 'its ledger entry changed while its copy was written');
  return {
    outcome: 'copied',
    key,
    bytes: result.bytes,
    lagMs: copiedAt.getTime() - change.eventTime.getTime(),
  };
}

/**
 * The ledger records the source's current version as copied: the change's sequencer is recorded on that
 * entry, only while it is still the one read, so a deleter that read the same entry (a deletion of the key
 * before this re-creation of the same bytes) can no longer mark it and delete the copy this change found.
 */
async function recordUpToDate(
  context: ApplyContext,
  previous: LedgerEntry,
  fence: number,
): Promise<ChangeOutcome> {
  const { deps, job, change, sequencer } = context;
  const upToDate: ChangeOutcome = {
    outcome: 'up-to-date',
    key: change.key,
    reason: 'the ledger records this version as copied',
  };
  if (laterOrSame(previous, sequencer)) return upToDate;
  const entry = { ...previous, sequencer };
  const recorded = await deps.state.putLedgerEntryInOrder(job.jobId, entry, fence, { read: previous });
  if (recorded === 'stale') return stale(change.key);
  if (recorded === 'changed') throw itemMoved(context, 'its ledger entry changed since it was read');
  return upToDate;
}

/**
 * Copies the source's version `object` (pinned by its ETag), the write conditional on what the ledger says
 * this sync wrote last. A foreign object at the destination is replaced only when asked (`overwrite`), so a
 * mirror job first learns whether a racing worker's later change holds the key.
 */
function copyCurrent(
  { deps, job, control, destinationKey, runId, change }: ApplyContext,
  object: SourceObject,
  previous: LedgerEntry | undefined,
  { overwrite = false } = {},
): Promise<CopyResult> {
  const uploads: UploadRecords = {
    save: (record) =>
      deps.state.putMultipartUpload(job.jobId, { ...record, runId, delivery: change.eventId }),
    forget: (key) => deps.state.deleteMultipartUpload(job.jobId, key, change.eventId),
  };
  return copierFor(job)(
    { sourceS3: deps.sourceS3, destinationS3: deps.destinationS3 },
    {
      sourceBucket: job.source.bucket,
      key: object.key,
      etag: object.etag,
      size: object.size,
      destinationBucket: job.destination.bucket,
      destinationKey,
      previousDestinationEtag: previous?.destinationEtag,
      overwrite,
      copyTags: job.options.copyTags,
    },
    { signal: control.signal, uploads },
  );
}

/** The key's state in the source now, or undefined when it is gone. */
async function headSource(
  s3: S3Client,
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<SourceObject | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    return {
      key,
      etag: head.ETag ?? '',
      size: head.ContentLength ?? 0,
      lastModified: head.LastModified ?? new Date(0),
      storageClass: head.StorageClass ?? 'STANDARD',
    };
  } catch (error) {
    const explained = explainSourceFailure(error, { sourceBucket: bucket, key }, 'HEAD');
    if (explained instanceof SourceVanishedError) return undefined;
    throw explained;
  }
}

/** The source answered 412 to the pinned read: a newer version replaced the one the HEAD saw. */
function sourceChanged(error: unknown): boolean {
  return (
    error instanceof ObjectCopyError &&
    !(error instanceof DestinationOccupiedError) &&
    isPreconditionFailure(error.cause)
  );
}
