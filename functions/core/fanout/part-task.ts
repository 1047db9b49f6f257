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
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  DeleteObjectCommand,
  ListPartsCommand,
  type Part,
} from '@aws-sdk/client-s3';
import { partCopierFor } from '../copy/copy-method.js';
import {
  compositeOf,
  inspectDestination,
  isPreconditionFailure,
  type WriteCondition,
  writeCondition,
} from '../copy/copy-object.js';
import { UploadGoneError } from '../copy/copy-part.js';
import { stripQuotes } from '../copy/integrity.js';
import { type PartTask, parsePartTask, versionId } from '../dispatch/part-tasks.js';
import {
  awsErrorCode,
  describeError,
  IntegrityError,
  LeaseLostError,
  ObjectCopyError,
  SourceVanishedError,
} from '../errors.js';
import { ManifestPart } from '../report/manifest-parts.js';
import { runFolder } from '../report/run-manifest.js';
import { copiedLedgerEntry, keptSequencer } from '../run/copy-and-record.js';
import type { PartUpload, PartUploads, RecordedPart } from '../state/part-uploads.js';
import { type PassCounts, SettlementRefusedError } from '../state/pass-tally.js';
import { settleTask, type TaskNote } from './end-pass.js';
import { partUploadsOf } from './open-part-upload.js';
import type { OpenPass, PassOpener, TaskControl } from './open-pass.js';

/** How long a completion claim may be quiet before the claimer's task, delivered again, takes it over. */
export const CLAIM_QUIET_MS = 15 * 60 * 1000;
/** How long a delivery waits for its task's other delivery to finish a completion, and how often it looks. */
const BUSY_WAIT_MS = 30_000;
const BUSY_POLL_MS = 500;

export type PartTaskOutcome = 'settled' | 'duplicate' | 'stale';

/** The completion is claimed by a delivery of this very task that may still be at work: come back later. */
export class CompletionBusyError extends Error {
  override readonly name = 'CompletionBusyError';
}

type PartControl = TaskControl & { claimQuietMs?: number };

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

/**
 * Settles `task` with what it counts, which its upload's record decides, so that whichever delivery
 * settles it counts the same: the claimer's task counts a completed object copied (with its manifest
 * line), the aborter's task counts an aborted one failed (or vanished), every other part nothing.
 *
 * Nothing is settled only in one transaction with the upload's record still counting nothing for the task
 * (`upload` may be a stale read: another delivery of the task may have claimed the completion since, and
 * would then find the task settled and its object lost from the pass's totals). `refused`: the record
 * changed; read it again.
 */
async function settleAs(
  pass: OpenPass,
  task: Pick<PartTask, 'taskId'>,
  upload: PartUpload,
  control: PartControl,
): Promise<PartTaskOutcome | 'refused'> {
  if (upload.state === 'completed' && upload.claimedFor === task.taskId)
    return finish(pass, task, upload, control);
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
 * The object's upload is aborted (by this worker, if it is the first to): the object counts as failed (or
 * vanished) once, with its ledger entry saying why, and the task settles.
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
    await deps.state
      .putLedgerEntry(job.jobId, { ...previous, key: upload.key, failure }, pass.fence)
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

async function abortUpload(pass: OpenPass, upload: PartUpload): Promise<void> {
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

/** Holding the claim: check the parts, complete the upload, record the copy, settle. */
async function complete(
  pass: OpenPass,
  uploads: PartUploads,
  task: PartTask,
  upload: PartUpload,
  control: PartControl,
): Promise<PartTaskOutcome> {
  const { deps, job, runId } = pass;
  const version = versionId(upload.key, upload.etag);
  const where = `s3://${job.destination.bucket}/${upload.destinationKey}`;
  const records = await uploads.parts(version);
  const expected = compositeOf(records.map((part) => part.etag));
  const listed = await listParts(pass, upload);
  let destinationEtag: string;
  if (listed === undefined) {
    // The upload is gone: a completer before this one completed it and died before recording it.
    const found = await inspectDestination(deps.destinationS3, {
      destinationBucket: job.destination.bucket,
      destinationKey: upload.destinationKey,
    });
    if (!found || found.size !== upload.size || stripQuotes(found.etag) !== expected) {
      return fail(
        pass,
        uploads,
        upload,
        task,
        new ObjectCopyError(
          `${where}: the multipart upload is gone, and the destination does not hold its parts`,
        ),
        control,
      );
    }
    destinationEtag = stripQuotes(found.etag);
  } else {
    const problem = checkParts(records, listed, upload.partCount);
    if (problem)
      return fail(
        pass,
        uploads,
        upload,
        task,
        new IntegrityError(`${where}: ${problem}; not completed`),
        control,
      );
    const since = new Date().toISOString();
    const intent = await deps.state.putUploadIntent(job.jobId, runId, task.taskId, {
      since,
      objects: [{ key: upload.key, size: upload.size }],
    });
    const completed = await completeUpload(pass, upload, records, expected);
    if ('refused' in completed) {
      await abortUpload(pass, upload);
      return fail(pass, uploads, upload, task, completed.refused, control);
    }
    destinationEtag = completed.etag;
    await deps.state.deleteUploadIntents(job.jobId, [intent]);
  }
  const verifiedBy = verifiedByOf(job, upload, destinationEtag);
  const object = {
    key: upload.key,
    etag: upload.etag,
    size: upload.size,
    lastModified: new Date(upload.lastModified),
    storageClass: upload.storageClass,
  };
  try {
    await deps.state.putLedgerEntry(
      job.jobId,
      {
        ...copiedLedgerEntry(object, upload.destinationKey, { destinationEtag, verifiedBy }, runId),
        ...keptSequencer(upload.previous),
      },
      pass.fence,
    );
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    control.log.warn('part task overtaken by a newer pass; dropped', {
      taskId: task.taskId,
      fence: task.fence,
    });
    return 'stale';
  }
  await uploads.completed(version, control.worker, destinationEtag);
  await deps.state.deleteMultipartUpload(job.jobId, upload.recordKey);
  return finish(pass, task, upload, control);
}

/**
 * How the completed object was checked (LedgerEntry.verifiedBy). Its ETag is the source's when the parts
 * followed the source's own: then every byte is checked against the source. Otherwise a streamed part was
 * checked by its Content-MD5 and length, and a part S3 copied itself (a server-side job) by the ETag pin
 * and its range's length, as server-side-copy.ts records its copies.
 */
function verifiedByOf(
  job: OpenPass['job'],
  upload: PartUpload,
  destinationEtag: string,
): 'etag-md5' | 'sdk-checksum' | 'copy-etag' | 'copy-pinned' {
  const sameEtag = destinationEtag === stripQuotes(upload.etag);
  if (job.options.copyMethod === 'server-side') return sameEtag ? 'copy-etag' : 'copy-pinned';
  return sameEtag ? 'etag-md5' : 'sdk-checksum';
}

/** The completer's settlement: the object counted copied once, with its manifest line. */
async function finish(
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
  const counts = { copied: 1, bytes: upload.size };
  const settledNow = await settleTask(pass, task.taskId, counts, { ...(part && { part }) }, control);
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

/** Every part S3 lists for the upload, or undefined when S3 no longer knows the upload. */
async function listParts(pass: OpenPass, upload: PartUpload): Promise<Part[] | undefined> {
  const parts: Part[] = [];
  let marker: string | undefined;
  try {
    do {
      const page = await pass.deps.destinationS3.send(
        new ListPartsCommand({
          Bucket: pass.job.destination.bucket,
          Key: upload.destinationKey,
          UploadId: upload.uploadId,
          PartNumberMarker: marker,
        }),
      );
      parts.push(...(page.Parts ?? []));
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker);
  } catch (error) {
    if (awsErrorCode(error).name === 'NoSuchUpload') return undefined;
    throw error;
  }
  return parts;
}

/** Why the parts S3 lists are not exactly the parts recorded, or undefined when they are. */
function checkParts(records: RecordedPart[], listed: Part[], count: number): string | undefined {
  if (records.length !== count) return `${records.length} of ${count} parts are recorded`;
  const byNumber = new Map(listed.map((part) => [part.PartNumber, part]));
  for (const record of records) {
    const part = byNumber.get(record.partNumber);
    if (!part) return `part ${record.partNumber} is recorded but S3 does not list it`;
    if (stripQuotes(part.ETag ?? '') !== stripQuotes(record.etag) || part.Size !== record.size) {
      return `part ${record.partNumber} as S3 lists it (${part.ETag}, ${part.Size} bytes) is not the part recorded (${record.etag}, ${record.size} bytes)`;
    }
  }
  return undefined;
}

/**
 * CompleteMultipartUpload under the copy's write condition. Refused by the condition: the destination
 * holding exactly these parts is adopted; a mirror job replaces exactly the object it found; otherwise the
 * object there is not this sync's and stays (`refused`). Our last copy gone (If-Match, NoSuchKey): written
 * where nothing is.
 */
async function completeUpload(
  pass: OpenPass,
  upload: PartUpload,
  records: RecordedPart[],
  expected: string | undefined,
): Promise<{ etag: string } | { refused: Error }> {
  const { deps, job } = pass;
  const where = { destinationBucket: job.destination.bucket, destinationKey: upload.destinationKey };
  let condition: WriteCondition = writeCondition({
    previousDestinationEtag: upload.previous?.destinationEtag,
  });
  for (let attempt = 1; ; attempt += 1) {
    try {
      const result = await deps.destinationS3.send(
        new CompleteMultipartUploadCommand({
          Bucket: job.destination.bucket,
          Key: upload.destinationKey,
          UploadId: upload.uploadId,
          MultipartUpload: {
            Parts: records.map(({ partNumber, etag }) => ({ PartNumber: partNumber, ETag: etag })),
          },
          ...condition,
        }),
      );
      return { etag: stripQuotes(result.ETag ?? '') };
    } catch (error) {
      if (awsErrorCode(error).name === 'NoSuchUpload') {
        // A completion S3 took long over can answer its own retry so: the first attempt completed it. The
        // destination holding exactly these parts is that object (its ETag is made from the parts' ETags).
        const found = await inspectDestination(deps.destinationS3, where);
        if (found && found.size === upload.size && stripQuotes(found.etag) === expected) {
          return { etag: stripQuotes(found.etag) };
        }
        throw error;
      }
      if (attempt > 1) throw error;
      if (condition.IfMatch && awsErrorCode(error).name === 'NoSuchKey') {
        condition = { IfNoneMatch: '*' };
        continue;
      }
      if (!isPreconditionFailure(error)) throw error;
      const found = await inspectDestination(deps.destinationS3, where);
      if (found && found.size === upload.size && stripQuotes(found.etag) === expected) {
        // These very parts are there already (a completer before this one): this upload is not needed.
        await abortUpload(pass, upload);
        return { etag: stripQuotes(found.etag) };
      }
      if (job.options.mirror && found) {
        condition = { IfMatch: found.etag };
        continue;
      }
      return {
        refused: new ObjectCopyError(
          `s3://${where.destinationBucket}/${where.destinationKey} holds an object this sync did not write, so it was left untouched. ` +
            'Delete or move it, or set options.mirror to let the sync overwrite it',
          { cause: error, retryable: false },
        ),
      };
    }
  }
}

function settled(settledNow: boolean): PartTaskOutcome {
  return settledNow ? 'settled' : 'duplicate';
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
