/**
 * Completing a giant object's upload (fanout/part-task.ts), by the one delivery that holds its completion
 * claim: every part S3 lists is checked against the parts recorded, the upload is completed under the
 * copy's write condition (If-None-Match: *, or If-Match on this sync's last copy), the ledger entry is
 * recorded under the pass's fence as an inline copy's is, and only then is the task settled, so the pass
 * cannot end before the object is there.
 */
import { CompleteMultipartUploadCommand, ListPartsCommand, type Part } from '@aws-sdk/client-s3';
import {
  compositeOf,
  inspectDestination,
  isPreconditionFailure,
  type WriteCondition,
  writeCondition,
} from '../copy/copy-object.js';
import { stripQuotes } from '../copy/integrity.js';
import { type PartTask, versionId } from '../dispatch/part-tasks.js';
import { awsErrorCode, IntegrityError, LeaseLostError, ObjectCopyError } from '../errors.js';
import { copiedLedgerEntry, keptSequencer } from '../run/copy-records.js';
import type { PartUpload, RecordedPart } from '../state/part-upload-item.js';
import type { PartUploads } from '../state/part-uploads.js';
import type { LedgerEntry } from '../state/state-store.js';
import type { OpenPass } from './open-pass.js';
import {
  abortUpload,
  fail,
  finish,
  leaveToEvent,
  type PartControl,
  type PartTaskOutcome,
  recordedByEvent,
} from './part-settle.js';

/** Holding the claim: check the parts, complete the upload, record the copy, settle. */
export async function complete(
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
    if ('recordedByEvent' in completed) {
      // Nothing was written: the upload is aborted, and with it what the intent announced.
      const outcome = await leaveToEvent(pass, uploads, upload, task, completed.recordedByEvent, control);
      await deps.state.deleteUploadIntents(job.jobId, [intent]);
      return outcome;
    }
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
  let recorded: LedgerEntry | undefined;
  try {
    // Planned from `upload.previous`: an event's change recorded since (its copy replaced these parts
    // after the completion, as a mirror job's event does) keeps its entry. A deleter that marked the key
    // after the completion deletes another copy (If-Match), which this one replaced: the record goes over
    // its mark, so its delete, refused, is tried again on this copy; refused only by a mark on this very
    // copy, or widened to any (state/deletion-marks.ts).
    recorded = await deps.state.putPlannedEntry(
      job.jobId,
      {
        ...copiedLedgerEntry(object, upload.destinationKey, { destinationEtag, verifiedBy }, runId),
        ...keptSequencer(upload.previous),
      },
      pass.fence,
      destinationEtag,
    );
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    control.log.warn('part task overtaken by a newer pass; dropped', {
      taskId: task.taskId,
      fence: task.fence,
    });
    return 'stale';
  }
  if (recorded) return leaveToEvent(pass, uploads, upload, task, recorded, control);
  await uploads.completed(version, control.worker, destinationEtag);
  await deps.state.deleteMultipartUpload(job.jobId, upload.recordKey);
  return finish(pass, task, upload, control);
}
/**
 * How the completed object was checked (LedgerEntry.verifiedBy). Its ETag is the source's when the parts
 * followed the source's own: then every byte is checked against the source. Otherwise a streamed part was
 * checked by its Content-MD5 and length, and a part S3 copied itself (a server-side job) by the ETag pin
 * and its range's length, as server-side-request.ts judges its copies.
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
 * CompleteMultipartUpload under the copy's write condition. Refused by the condition, or our last copy gone
 * (If-Match, NoSuchKey), because an event recorded a newer change of the key since the plan: the event's
 * copy stays (`recordedByEvent`), never replaced by these older parts, mirror or not. Otherwise refused:
 * the destination holding exactly these parts is adopted; a mirror job replaces exactly the object it
 * found; otherwise the object there is not this sync's and stays (`refused`). Our last copy gone: written
 * where nothing is.
 */
async function completeUpload(
  pass: OpenPass,
  upload: PartUpload,
  records: RecordedPart[],
  expected: string | undefined,
): Promise<{ etag: string } | { refused: Error } | { recordedByEvent: LedgerEntry }> {
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
      const code = awsErrorCode(error).name;
      if (isPreconditionFailure(error) || (condition.IfMatch && code === 'NoSuchKey')) {
        const recorded = await recordedByEvent(pass, upload);
        if (recorded) return { recordedByEvent: recorded };
      }
      if (condition.IfMatch && code === 'NoSuchKey') {
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
