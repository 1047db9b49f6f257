/**
 * How a part task settles (fanout/part-task.ts): with what its object's upload record says it counts, so
 * that whichever delivery of the task settles it counts the same. The claimer's task counts a completed
 * object copied with its manifest line (`finish`), the aborter's task an aborted one failed or vanished
 * (`fail`), every other part nothing, and that only while the record still counts nothing for it.
 */
import { AbortMultipartUploadCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { type PartTask, versionId } from '../dispatch/part-tasks.js';
import { awsErrorCode, describeError, LeaseLostError, SourceVanishedError } from '../errors.js';
import { ManifestPart } from '../report/manifest-parts.js';
import { runFolder } from '../report/run-manifest.js';
import { changedByEvent } from '../run/copy-records.js';
import { isMarkedForDeletion } from '../state/deletion-marks.js';
import type { PartUpload } from '../state/part-upload-item.js';
import type { PartUploads } from '../state/part-uploads.js';
import { type PassCounts, SettlementRefusedError } from '../state/pass-tally.js';
import type { LedgerEntry } from '../state/state-store.js';
import { settleTask, type TaskNote } from './end-pass.js';
import { partUploadsOf } from './open-part-upload.js';
import type { OpenPass, TaskControl } from './open-pass.js';

/** How one delivery of a part task ended: `stale` when a newer pass had overtaken it. */
export type PartTaskOutcome = 'settled' | 'duplicate' | 'stale';

/** The completion is claimed by a delivery of this very task that may still be at work: come back later. */
export class CompletionBusyError extends Error {
  override readonly name = 'CompletionBusyError';
}

/** What a part task's delivery runs with: a task's control, and how long a completion claim may be quiet. */
export type PartControl = TaskControl & { claimQuietMs?: number };

/**
 * Settles `task` with what it counts, which its upload's record decides, so that whichever delivery
 * settles it counts the same: the claimer's task counts a completed object copied (with its manifest
 * line), the aborter's task counts an aborted one failed (or vanished), or skipped when it was given up
 * to an event's newer change (`leftToEvent`), every other part nothing.
 *
 * Nothing is settled only in one transaction with the upload's record still counting nothing for the task
 * (`upload` may be a stale read: another delivery of the task may have claimed the completion since, and
 * would then find the task settled and its object lost from the pass's totals). `refused`: the record
 * changed; read it again.
 */
export async function settleAs(
  pass: OpenPass,
  task: Pick<PartTask, 'taskId'>,
  upload: PartUpload,
  control: PartControl,
): Promise<PartTaskOutcome | 'refused'> {
  if (upload.state === 'completed' && upload.claimedFor === task.taskId)
    return finish(pass, task, upload, control);
  if (upload.state === 'aborted' && upload.abortedFor === task.taskId && upload.leftToEvent !== undefined) {
    // The event copied the key after the plan: already current, like a key the ledger shows copied.
    return settled(await settleTask(pass, task.taskId, { skipped: 1 }, {}, control));
  }
  if (upload.state === 'aborted' && upload.abortedFor === task.taskId) {
    const reason = upload.abortedBecause ?? 'aborted';
    const [counts, note]: [PassCounts, TaskNote] = upload.vanished
      ? [{ vanished: 1 }, { vanishedKeys: [{ key: upload.key, reason }] }]
      : [
          { failed: 1, backlogObjects: 1, backlogBytes: upload.size },
          { failures: [{ key: upload.key, reason }] },
        ];
    return settled(await settleTask(pass, task.taskId, counts, note, control));
  }
  const countsNothing = partUploadsOf(pass).countsNothingFor(versionId(upload.key, upload.etag), task.taskId);
  try {
    return settled(await settleTask(pass, task.taskId, {}, {}, control, countsNothing));
  } catch (error) {
    if (error instanceof SettlementRefusedError) return 'refused';
    throw error;
  }
}

/**
 * The object's upload is aborted (by this worker, if it is the first to): the object counts as failed (or
 * vanished) once, with its ledger entry saying why, and the task settles. An event that recorded a newer
 * change of the key since the plan (the usual cause of a source changed mid-parts) has the key instead:
 * left to it, counted skipped.
 */
export async function fail(
  pass: OpenPass,
  uploads: PartUploads,
  upload: PartUpload,
  task: Pick<PartTask, 'taskId'>,
  error: unknown,
  control: PartControl,
): Promise<PartTaskOutcome> {
  const { deps, job } = pass;
  const recorded = await recordedByEvent(pass, upload);
  if (recorded) return leaveToEvent(pass, uploads, upload, task, recorded, control);
  const reason = describeError(error);
  const version = versionId(upload.key, upload.etag);
  const vanished = error instanceof SourceVanishedError;
  if (
    await uploads.abort(version, { reason, taskId: task.taskId, vanished }, pass.tally.unsettled(task.taskId))
  ) {
    await abortUpload(pass, upload);
    const { previous } = upload;
    const attempts = previous?.failure?.etag === upload.etag ? previous.failure.attempts + 1 : 1;
    const failure = { reason, attempts, at: new Date().toISOString(), etag: upload.etag };
    // Planned from `previous`: an event's change recorded since keeps its entry (putPlannedEntry).
    await deps.state
      .putPlannedEntry(job.jobId, { ...previous, key: upload.key, failure }, pass.fence)
      .catch((refused: unknown) => {
        if (!(refused instanceof LeaseLostError)) throw refused;
      });
    control.log.warn('giant object not copied; its upload is aborted', { key: upload.key, reason });
  }
  const outcome = await settleAs(pass, task, (await uploads.find(version)) ?? upload, control);
  if (outcome === 'refused') {
    // Claimed for this task by its other delivery since: that delivery completes and counts it.
    throw new CompletionBusyError(
      `part task ${task.taskId}: the completion of ${upload.destinationKey} is claimed for it by another delivery; the task comes back`,
    );
  }
  return outcome;
}

/**
 * The key's ledger entry when an event recorded a change of it after the plan read `upload.previous` (its
 * sequencer moved): that event read the source later, so its copy is at least as new as the upload's parts.
 * Or while a deleter holds the key (state/deletion-marks.ts): its delete may have removed the copy these
 * parts would replace, and the ledger refuses the completer's record until it is done, so parts completed
 * now would stay at the destination unrecorded; the key is left to the deletion.
 */
export async function recordedByEvent(pass: OpenPass, upload: PartUpload): Promise<LedgerEntry | undefined> {
  const now = await pass.deps.state.ledgerEntry(pass.job.jobId, upload.key);
  return now && (changedByEvent(upload.previous, now) || isMarkedForDeletion(now)) ? now : undefined;
}

/**
 * An event recorded a newer change of the key (`recorded`) after the plan read `upload.previous`: its copy
 * and record stand. The upload is given up (aborted in S3 if still open, its records dropped) and the task
 * counts the object skipped, as the inline pass counts a key left to an event (run/copy-and-record.ts).
 */
export async function leaveToEvent(
  pass: OpenPass,
  uploads: PartUploads,
  upload: PartUpload,
  task: Pick<PartTask, 'taskId'>,
  recorded: LedgerEntry,
  control: PartControl,
): Promise<PartTaskOutcome> {
  const version = versionId(upload.key, upload.etag);
  const sequencer = recorded.sequencer ?? '';
  const deleting = isMarkedForDeletion(recorded);
  const reason = deleting
    ? 'a deletion of the key was under way meanwhile'
    : `an event recorded a newer change of the key (sequencer ${sequencer}) meanwhile`;
  if (
    await uploads.abort(
      version,
      { reason, taskId: task.taskId, leftToEvent: sequencer },
      pass.tally.unsettled(task.taskId),
    )
  ) {
    await abortUpload(pass, upload);
    const message = deleting
      ? 'giant object not completed while a deletion of the key was under way; left to it'
      : 'giant object copied and recorded by an event meanwhile; its record kept';
    control.log.info(message, { key: upload.key, sequencer });
  }
  const outcome = await settleAs(pass, task, (await uploads.find(version)) ?? upload, control);
  if (outcome === 'refused') {
    throw new CompletionBusyError(
      `part task ${task.taskId}: the completion of ${upload.destinationKey} is claimed for it by another delivery; the task comes back`,
    );
  }
  return outcome;
}

/** Aborts the object's multipart upload in S3 (gone already is fine) and drops its record in the job's state. */
export async function abortUpload(pass: OpenPass, upload: PartUpload): Promise<void> {
  const { deps, job } = pass;
  await deps.destinationS3
    .send(
      new AbortMultipartUploadCommand({
        Bucket: job.destination.bucket,
        Key: upload.destinationKey,
        UploadId: upload.uploadId,
      }),
    )
    .catch((error: unknown) => {
      if (awsErrorCode(error).name !== 'NoSuchUpload') throw error;
    });
  await deps.state.deleteMultipartUpload(job.jobId, upload.recordKey);
}

/** The completer's settlement: the object counted copied once, with its manifest line. */
export async function finish(
  pass: OpenPass,
  task: Pick<PartTask, 'taskId'>,
  upload: PartUpload,
  control: PartControl,
): Promise<PartTaskOutcome> {
  const { deps, job, runId } = pass;
  const manifest = new ManifestPart();
  await manifest.add({
    destinationKey: upload.destinationKey,
    sourceKey: upload.key,
    size: upload.size,
    etag: upload.etag,
    sha256: '',
    sourceLastModified: upload.lastModified,
  });
  const part = await manifest.save(
    deps.destinationS3,
    job.destination.bucket,
    runFolder(job.options.manifestPrefix, job.jobId, runId),
    `${task.taskId}.${control.worker}`,
  );
  // A change no event delivered (judged when the upload was opened) counts once, with the copy.
  const missed = upload.missedByEvents === true;
  const counts = { copied: 1, bytes: upload.size, ...(missed && { missedByEvents: 1 }) };
  const note = { ...(part && { part }), ...(missed && { missedKeys: [upload.key] }) };
  const settledNow = await settleTask(pass, task.taskId, counts, note, control);
  if (!settledNow && part) {
    // Another delivery settled the task with a part of its own: this one's would be a stray.
    await deps.destinationS3
      .send(new DeleteObjectCommand({ Bucket: job.destination.bucket, Key: part }))
      .catch((error: unknown) =>
        control.log.warn('a duplicate delivery could not remove its manifest part', {
          part,
          error: describeError(error),
        }),
      );
  }
  return settled(settledNow);
}

/** `settled` when this delivery settled the task, `duplicate` when another had. */
export function settled(settledNow: boolean): PartTaskOutcome {
  return settledNow ? 'settled' : 'duplicate';
}
