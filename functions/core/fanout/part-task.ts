/**
 * A part worker's task (docs/fan-out.md): copy one part of a giant object into the version's multipart
 * upload, record it once, and settle. The worker whose record completes the set claims the completion
 * (state/part-uploads.ts), checks every part S3 lists against the records, completes the upload under the
 * copy's write condition (If-None-Match: *, or If-Match on this sync's last copy), records the ledger entry
 * under the pass's fence as an inline copy does, writes its manifest line, and only then settles its task,
 * so the pass cannot end before the object is there.
 *
 * - A part delivered twice is uploaded at most twice (the same bytes, pinned to the ETag) and recorded once.
 * - A completer that dies leaves its claim and its task unsettled: the task's next delivery takes the claim
 *   over once it has been quiet for `claimQuietMs`, and finds the upload still open (it completes it) or
 *   completed (it adopts the object if it is exactly these parts).
 * - A source changed mid-parts fails the ranged GET (or, for a server-side job, the UploadPartCopy), pinned
 *   to the listed ETag (412): the upload is aborted once, the object counted failed once, and the next pass
 *   copies the new version; nothing with mixed bytes is ever completed.
 *
 * This file runs one delivery: copy and record the part, then claim the completion or settle. How a task
 * settles (and how an aborted object counts failed) is part-settle.ts; completing the upload once claimed
 * is part-complete.ts.
 */
import { partCopierFor } from '../copy/copy-method.js';
import { UploadGoneError } from '../copy/copy-part.js';
import { type PartTask, parsePartTask, versionId } from '../dispatch/part-tasks.js';
import { describeError, ObjectCopyError } from '../errors.js';
import type { PartUpload, RecordedPart } from '../state/part-upload-item.js';
import { settleTask } from './end-pass.js';
import { partUploadsOf } from './open-part-upload.js';
import type { OpenPass, PassOpener } from './open-pass.js';
import { complete } from './part-complete.js';
import {
  CompletionBusyError,
  fail,
  type PartControl,
  type PartTaskOutcome,
  settleAs,
  settled,
} from './part-settle.js';

export { CompletionBusyError, type PartTaskOutcome } from './part-settle.js';

/** How long a completion claim may be quiet before the claimer's task, delivered again, takes it over. */
export const CLAIM_QUIET_MS = 15 * 60 * 1000;
/** How long a delivery waits for its task's other delivery to finish a completion, and how often it looks. */
const BUSY_WAIT_MS = 30_000;
const BUSY_POLL_MS = 500;

/**
 * Runs one delivery of part task `task`.
 *
 * @throws PassOverError for a pass that is over; CompletionBusyError; what failed on the way (the
 *   message comes back)
 */
export async function runPartTask(
  passes: PassOpener,
  task: PartTask,
  control: PartControl,
): Promise<PartTaskOutcome> {
  const pass = await passes.open(task.jobId, task.fence);
  if (await pass.tally.isSettled(task.taskId)) return 'duplicate';
  const uploads = partUploadsOf(pass);
  const version = versionId(task.key, task.etag);
  let upload = await uploads.find(version);
  if (!upload) {
    // Part tasks are sent only once their upload is on record: this one belongs to no upload of the pass.
    control.log.warn('part task without its upload; settled with nothing', { taskId: task.taskId });
    return settled(await settleTask(pass, task.taskId, {}, {}, control));
  }
  if (upload.state === 'open') {
    const recorded = (await uploads.parts(version)).some((part) => part.partNumber === task.partNumber);
    if (!recorded) {
      const copied = await copyThisPart(pass, task, upload);
      if ('failed' in copied) return fail(pass, uploads, upload, task, copied.failed, control);
      if (copied.part) upload = (await uploads.recordPart(version, copied.part)).upload;
      else upload = (await uploads.find(version)) ?? upload;
    } else {
      upload = (await uploads.find(version)) ?? upload;
    }
  }
  // Wait here a little for a completion this task's other delivery holds, rather than failing at once.
  const waitUntil = Date.now() + BUSY_WAIT_MS;
  const quietMs = control.claimQuietMs ?? CLAIM_QUIET_MS;
  for (;;) {
    // Parts still missing (their deliveries complete the object), or the object settled: this part is done.
    // Settled with nothing only while the upload counts nothing for this task: refused, it looks again.
    const done =
      upload.state === 'completed' ||
      upload.state === 'aborted' ||
      (upload.state === 'open' && upload.recorded < upload.partCount);
    if (done) {
      const outcome = await settleAs(pass, task, upload, control);
      if (outcome !== 'refused') return outcome;
      upload = (await uploads.find(version)) ?? upload;
      continue;
    }
    // Claimed for this task only while it has not settled: the claim's task is the one that counts the
    // object, so a delivery whose other delivery settled the task with nothing leaves the claim to others.
    const claim = { worker: control.worker, taskId: task.taskId };
    if (
      await uploads.claimCompletion(version, claim, quietMs, Date.now(), pass.tally.unsettled(task.taskId))
    ) {
      return complete(pass, uploads, task, upload, control);
    }
    if (await pass.tally.isSettled(task.taskId)) return 'duplicate';
    upload = (await uploads.find(version)) ?? upload;
    const mine = upload.state === 'completing' && upload.claimedFor === task.taskId;
    // Another part's delivery holds the claim: it counts the object; this part is done.
    if (upload.state === 'completing' && !mine) {
      const outcome = await settleAs(pass, task, upload, control);
      if (outcome !== 'refused') return outcome;
      upload = (await uploads.find(version)) ?? upload;
      continue;
    }
    if (mine && Date.now() > waitUntil) {
      throw new CompletionBusyError(
        `part task ${task.taskId}: the completion of s3://${pass.job.destination.bucket}/${upload.destinationKey} is claimed by ${upload.claimedBy} since ${upload.claimedAt}; the task comes back, and takes the claim over once it has been quiet ${quietMs / 1000} s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, BUSY_POLL_MS));
  }
}

/** This part into the upload; `{}` when the upload is gone (completed or aborted by another delivery). */
async function copyThisPart(
  pass: OpenPass,
  task: PartTask,
  upload: PartUpload,
): Promise<{ part?: RecordedPart } | { failed: unknown }> {
  const { job, deps, source } = pass;
  try {
    const part = await partCopierFor(job)(
      { sourceS3: source.s3, destinationS3: deps.destinationS3 },
      {
        sourceBucket: job.source.bucket,
        key: task.key,
        etag: task.etag,
        size: task.size,
        destinationBucket: job.destination.bucket,
        destinationKey: upload.destinationKey,
        uploadId: upload.uploadId,
        partNumber: task.partNumber,
        range: task.range,
      },
    );
    return { part };
  } catch (error) {
    if (error instanceof UploadGoneError) return {};
    // The source changed, was deleted or archived, or is denied: no later delivery can copy this version.
    if (error instanceof ObjectCopyError && !error.retryable) return { failed: error };
    // A part that failed once the upload was completed or aborted by another delivery is not needed (moto
    // answers UploadPart to an upload it no longer has with an error page, not NoSuchUpload).
    const now = await partUploadsOf(pass).find(versionId(task.key, task.etag));
    if (now && now.state !== 'open') return {};
    throw error;
  }
}

/**
 * The last receive of a part task failed: its object's upload is aborted and counted failed once, and the
 * task settles, so the pass still ends before the message goes to the dead-letter queue.
 */
export async function settlePartAsFailed(
  passes: PassOpener,
  record: { body: string; attributes: { ApproximateReceiveCount: string } },
  error: unknown,
  control: PartControl,
): Promise<void> {
  let task: PartTask;
  try {
    task = parsePartTask(record.body);
  } catch {
    return; // not a task: no pass counts it
  }
  const pass = await passes.open(task.jobId, task.fence).catch(() => undefined);
  if (!pass) return;
  const uploads = partUploadsOf(pass);
  const upload = await uploads.find(versionId(task.key, task.etag));
  const reason = new ObjectCopyError(
    `its part ${task.partNumber} failed ${record.attributes.ApproximateReceiveCount} times and is in the dead-letter queue: ${describeError(error)}`,
  );
  if (upload) await fail(pass, uploads, upload, task, reason, control);
  else await settleTask(pass, task.taskId, {}, {}, control);
}
