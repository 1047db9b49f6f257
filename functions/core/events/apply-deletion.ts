/**
 * A change that found its key gone from the source: a mirror job deletes the copy this sync wrote, the
 * delete ordered against writers of the key through its ledger item (state/deletion-marks.ts), since the
 * destination's If-Match cannot tell that copy from a newer one of the same bytes.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { isPreconditionFailure } from '../copy/copy-object.js';
import { stripQuotes } from '../copy/integrity.js';
import { awsErrorCode, describeError, ObjectCopyError } from '../errors.js';
import type { LedgerEntry } from '../state/state-store.js';
import type { ChangeOutcome } from './apply-change.js';
import { type ApplyContext, itemMoved, laterOrSame, skipped, stale } from './change-context.js';

/**
 * Deletes the destination copy `previous` records (mirror jobs; any other keeps it): marks the key's item
 * "deleting" while it is still `previous`, deletes the copy (If-Match its ETag), then replaces the mark by
 * the event's deletion mark. A writer that read the item before the mark and wrote a copy of the same
 * bytes finds its ledger write refused and applies its change again after this one.
 *
 * @throws ObjectCopyError, retryable when the item changed since it was read or another deleter holds it,
 *   or the destination is not the copy on record
 */
export async function applyDeletion(
  context: ApplyContext,
  previous: LedgerEntry | undefined,
  fence: number,
): Promise<ChangeOutcome> {
  const { deps, job, change, sequencer, control, now } = context;
  const { key } = change;
  if (!job.options.mirror)
    return skipped(key, 'not mirrored: the job keeps destination copies of deleted keys');
  if (previous?.sequencer !== undefined && previous.sequencer === sequencer) {
    return { outcome: 'up-to-date', key, reason: 'this change was already applied' };
  }
  if (laterOrSame(previous, sequencer)) return stale(key);
  if (previous?.destinationEtag === undefined) {
    return skipped(key, 'the ledger records no copy of it by this sync');
  }
  const verdict = await control.mayDelete?.();
  if (verdict && !verdict.granted) return skipped(key, verdict.reason);
  // Owned by this change: a twin delivery of it shares the mark.
  const mark = await deps.state.markDeletion(job.jobId, previous, fence, `event#${sequencer}`);
  if (!mark.marked) {
    if (laterOrSame(mark.now, sequencer)) return stale(key);
    throw itemMoved(context, 'its ledger entry changed since it was read, or another deletion holds it');
  }
  const destinationKey = previous.destinationKey ?? context.destinationKey;
  try {
    await deps.destinationS3.send(
      new DeleteObjectCommand({
        Bucket: job.destination.bucket,
        Key: destinationKey,
        // Only the copy this sync wrote: someone else's object stays.
        IfMatch: `"${stripQuotes(previous.destinationEtag)}"`,
      }),
      { abortSignal: control.signal },
    );
  } catch (error) {
    const where = `s3://${job.destination.bucket}/${destinationKey}`;
    const { name, status } = awsErrorCode(error);
    // Already gone (a consumer removed it, or an earlier delivery did before its mark): nothing to delete.
    if (name !== 'NoSuchKey' && status !== 404) {
      await deps.state.clearDeletionMark(job.jobId, key, mark.token);
      if (isPreconditionFailure(error)) {
        if (laterOrSame(await deps.state.ledgerEntry(job.jobId, key), sequencer)) return stale(key);
        throw new ObjectCopyError(
          `${where} is not the copy the ledger records; applying the change again reads the ledger anew`,
          { cause: error, retryable: true },
        );
      }
      throw new ObjectCopyError(`DELETE ${where} failed: ${describeError(error)}`, { cause: error });
    }
  }
  // Marked, not removed: the sequencer stays, so a late worker of an earlier change cannot record it. A
  // mirror pass that finds the mark of a key gone from the source removes it as any ledger entry.
  const deletedAt = now();
  const marked = await deps.state.putLedgerEntryInOrder(job.jobId, { key, sequencer }, fence, {
    token: mark.token,
  });
  if (marked !== 'recorded') return stale(key);
  return { outcome: 'deleted', key, lagMs: deletedAt.getTime() - change.eventTime.getTime() };
}
