/**
 * Continuing a multipart copy the deadline cut: what is recorded when it stops, and whether the next run
 * may continue it (same source version, parts still held by S3, bytes read again matching them).
 */
import { AbortMultipartUploadCommand, type CompletedPart, type S3Client } from '@aws-sdk/client-s3';
import type { MultipartUploadRecord } from '../state/state-store.js';
import type { CopyOptions, CopyRequest, UploadRecords } from './copy-object.js';
import type { PartPlan } from './part-plan.js';
import { listUploadedParts, type UploadProgress } from './upload-parts.js';
import type { VerifyStream } from './verify-stream.js';

/** A cut upload of this very source version, with the parts S3 holds for it. */
export interface ContinuableUpload {
  record: MultipartUploadRecord;
  parts: CompletedPart[];
}

/**
 * The earlier run's cut upload, if it can be continued: same source ETag, same part size, and S3 still
 * holds parts 1..n as recorded. Otherwise it is aborted (a changed source makes its parts stale).
 */
export async function continuableUpload(
  s3: S3Client,
  request: CopyRequest,
  plan: PartPlan,
  options: CopyOptions,
): Promise<ContinuableUpload | undefined> {
  const record = request.cutUpload;
  if (!record) return undefined;
  const same =
    record.resume &&
    options.uploads &&
    record.sourceEtag === request.etag &&
    record.size === request.size &&
    record.partSize === plan.partSize &&
    record.destinationKey === request.destinationKey;
  const where = { Bucket: request.destinationBucket, Key: record.destinationKey, UploadId: record.uploadId };
  const parts =
    same && record.resume
      ? await listUploadedParts(s3, where, record.partSize, record.resume.completedParts).catch(
          () => undefined,
        )
      : undefined;
  // Bytes read again are compared with the parts' ETags, which are their MD5s unless SSE-KMS encrypted.
  if (parts?.every((part) => /^"?[0-9a-f]{32}"?$/.test(part.ETag ?? ''))) return { record, parts };
  await s3.send(new AbortMultipartUploadCommand(where)).catch(() => {});
  await options.uploads?.forget(request.key);
  return undefined;
}

/**
 * Records where a cut upload stands: parts 1..n, and where the next read starts to re-check the source.
 * Returns false when it cannot be continued safely (the caller aborts it).
 */
export async function keepForNextRun(
  record: Omit<MultipartUploadRecord, 'runId'>,
  progress: UploadProgress,
  verified: VerifyStream,
  plan: PartPlan,
  uploads: UploadRecords,
): Promise<boolean> {
  const uploadedBytes = progress.contiguousParts * plan.partSize;
  // A multipart source is re-checked part by part: continue from the last source part boundary not past
  // the uploaded bytes, carrying the MD5s of the parts before it. A plain-MD5 source is read again from
  // its first byte (at most 5 GiB: S3's single-PUT limit), as its MD5 cannot be carried over.
  let readStart = 0;
  let sourcePartMd5s: Uint8Array | undefined;
  const check = verified.check;
  if (check.kind === 'composite') {
    let parts = 0;
    let boundary = 0;
    while (
      parts < verified.closedPartMd5s.length &&
      boundary + (check.partSizes[parts] ?? Number.POSITIVE_INFINITY) <= uploadedBytes
    ) {
      boundary += check.partSizes[parts] ?? 0;
      parts += 1;
    }
    readStart = boundary;
    sourcePartMd5s = Buffer.concat(verified.closedPartMd5s.slice(0, parts));
  } else if (check.kind === 'size-only') {
    readStart = uploadedBytes;
  }
  // The next read starts inside a part: the MD5 of that part's bytes from there on links the two reads.
  const inside = readStart % plan.partSize !== 0 && readStart < uploadedBytes;
  const tailMd5 = inside ? progress.tailMd5s.get(Math.floor(readStart / plan.partSize) + 1) : undefined;
  if (inside && !tailMd5) return false;
  await uploads.save({
    ...record,
    uploadId: progress.uploadId ?? record.uploadId,
    resume: {
      completedParts: progress.contiguousParts,
      readStart,
      sourcePartMd5s,
      tailMd5,
      cutAt: new Date().toISOString(),
    },
  });
  return true;
}

/** For a source cut in parts of these sizes: the last part boundary strictly inside [start, end). */
export function boundaryFinder(partSizes: number[]): (start: number, end: number) => number | undefined {
  const ends: number[] = [];
  let total = 0;
  for (const size of partSizes) {
    total += size;
    ends.push(total);
  }
  return (start, end) => {
    // Binary search for the last boundary below `end`.
    let low = 0;
    let high = ends.length - 1;
    let found: number | undefined;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const boundary = ends[middle] ?? 0;
      if (boundary < end) {
        found = boundary;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found !== undefined && found > start ? found : undefined;
  };
}

export function splitDigests(packed: Uint8Array | undefined): Buffer[] | undefined {
  if (!packed) return undefined;
  const bytes = Buffer.from(packed);
  return Array.from({ length: bytes.length / 16 }, (_, i) => bytes.subarray(i * 16, i * 16 + 16));
}
