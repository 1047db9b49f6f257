import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Job } from '../job.js';
import type { MultipartUploadRecord, StateStore } from '../state/state-store.js';

/** What a run found of the multipart uploads earlier runs of its job started. */
export interface OrphanUploadCleanup {
  /** Uploads aborted: started by runs that died or failed, no longer owned by any run. */
  aborted: number;
  /** Uploads cut by a deadline, by source key, left for this run's copy of the key to continue. */
  continuable: Map<string, MultipartUploadRecord>;
}

/**
 * Aborts the incomplete multipart uploads that earlier runs of this job started and no longer own, so a
 * run killed mid-upload (SIGKILL, a crashed container) leaves no parts behind once the next run has run.
 * Runs before the run copies anything, holding the job's lease: no other run of the job is uploading.
 *
 * An upload is this job's only if the job's state recorded it (each run records an upload before its first
 * part): the uploads S3 lists under the job's destination prefix are matched with those records by upload
 * id, and nothing else is touched, so uploads of other writers under the same prefix survive. Uploads that
 * a deadline cut (`resume` recorded) are kept for the copy of their key to continue; records whose upload
 * S3 no longer lists (completed, or aborted by a lifecycle rule) are forgotten.
 *
 * With no record on file it makes no request to S3 at all.
 */
export async function cleanOrphanUploads(
  s3: S3Client,
  state: StateStore,
  job: Job,
  options: { keepContinuable: boolean; records?: MultipartUploadRecord[] },
): Promise<OrphanUploadCleanup> {
  const records = options.records ?? (await state.readMultipartUploads(job.jobId));
  const result: OrphanUploadCleanup = { aborted: 0, continuable: new Map() };
  if (records.length === 0) return result;
  const listed = await listUploads(s3, job.destination.bucket, job.destination.prefix);
  // Each fan-out delivery keeps its own record of the same key: forget that one.
  const forget = ({ key, delivery }: MultipartUploadRecord) =>
    state.deleteMultipartUpload(job.jobId, key, delivery);
  const known = new Set(records.map((record) => record.uploadId));
  for (const record of records) {
    if (record.uploadId === '') {
      // A run died while creating this upload: its id never reached the record, but the upload, if S3
      // made it, is at this key and no older than the record.
      for (const uploadId of createdSince(listed, record, known)) {
        await abortUpload(s3, job.destination.bucket, record.destinationKey, uploadId);
        result.aborted += 1;
      }
      await forget(record);
      continue;
    }
    // Not listed (completed, or aborted by the lifecycle rule), or not at its key: nothing of ours to abort.
    const key = listed.get(record.uploadId)?.key;
    if (key !== record.destinationKey) {
      await forget(record);
    } else if (options.keepContinuable && record.resume) {
      result.continuable.set(record.key, record);
    } else {
      await abortUpload(s3, job.destination.bucket, key, record.uploadId);
      await forget(record);
      result.aborted += 1;
    }
  }
  return result;
}

/**
 * Allowance between this machine's clock and S3's when matching an upload's Initiated time. S3 keeps
 * Initiated to the millisecond and AWS hosts keep time well within this; an upload another writer starts
 * at the same key within this window before the record cannot be told apart from the job's own.
 */
const CLOCK_SKEW_MS = 1_000;

/**
 * The upload a record without an id stands for: the first at its destination key initiated no earlier
 * than the record (less clock skew) and not on any other record. One record, one CreateMultipartUpload.
 */
function createdSince(
  listed: Map<string, ListedUpload>,
  record: MultipartUploadRecord,
  known: Set<string>,
): string[] {
  const since = Date.parse(record.startedAt) - CLOCK_SKEW_MS;
  const [first] = [...listed]
    .filter(
      ([id, upload]) => !known.has(id) && upload.key === record.destinationKey && upload.initiated >= since,
    )
    .sort(([, a], [, b]) => a.initiated - b.initiated);
  return first ? [first[0]] : [];
}

async function abortUpload(s3: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
}

interface ListedUpload {
  key: string;
  /** Epoch milliseconds. */
  initiated: number;
}

/** Incomplete multipart uploads under `prefix`, by upload id. */
async function listUploads(s3: S3Client, bucket: string, prefix: string): Promise<Map<string, ListedUpload>> {
  const uploads = new Map<string, ListedUpload>();
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  do {
    const page = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix || undefined,
        KeyMarker,
        UploadIdMarker,
      }),
    );
    for (const upload of page.Uploads ?? []) {
      if (upload.UploadId && upload.Key !== undefined) {
        uploads.set(upload.UploadId, { key: upload.Key, initiated: upload.Initiated?.getTime() ?? 0 });
      }
    }
    KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (KeyMarker);
  return uploads;
}
