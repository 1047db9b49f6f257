/**
 * Continuing a multipart copy the deadline cut: what is recorded when it stops, and whether the next run
 * may continue it (same source version, parts still held by S3, bytes read again matching them).
 */
import { AbortMultipartUploadCommand, type CompletedPart, type S3Client } from '@aws-sdk/client-s3';
import type { MultipartUploadRecord } from '../state/state-store.js';
import type { CopyOptions, CopyRequest, UploadRecords } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import { listUploadedParts } from './list-uploaded-parts.js';
import { MAX_PART_SIZE, MIN_PART_SIZE, type PartPlan } from './part-plan.js';
import type { PartDigest, UploadProgress } from './upload-parts.js';
import type { VerifyStream } from './verify-stream.js';

/** A cut upload of this very source version, with the parts S3 holds for it. */
export interface ContinuableUpload {
  record: MultipartUploadRecord;
  parts: CompletedPart[];
  /** The recorded MD5s of the parts the next read covers again whole, by part number. */
  partDigests: Map<number, PartDigest>;
}

/**
 * The parts a continued read covers again whole are those after `readStart`, which is less than 5 GiB
 * before the uploaded end (a source part, or a single-part source, is at most 5 GiB): at most 1,025 parts
 * of at least 5 MiB, whose MD5s and ETags take about 50 KB of the record, beside `sourcePartMd5s` (at most
 * 160 KB), within DynamoDB's 400 KB item limit. More than that is not recorded (the upload is not continued).
 */
const MAX_RECORDED_PARTS = Math.ceil(MAX_PART_SIZE / MIN_PART_SIZE) + 1;

/** The first part a read from `readStart` covers whole. */
const firstWholePart = (readStart: number, partSize: number) => Math.ceil(readStart / partSize) + 1;

/**
 * The earlier run's cut upload, if it can be continued: same source ETag, same part size, S3 still holds
 * parts 1..n as recorded, and each part the next read covers again whole can be checked: against the MD5
 * the earlier run recorded (S3 still listing the part with the ETag it gave then), or, on a record without
 * them, against the part's ETag as an MD5. Otherwise it is aborted (a changed source makes its parts stale).
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
  const partDigests = parts && record.resume && checkableParts(record.resume, record.partSize, parts);
  if (parts && partDigests) return { record, parts, partDigests };
  await s3.send(new AbortMultipartUploadCommand(where)).catch(() => {});
  await options.uploads?.forget(request.key);
  return undefined;
}

/**
 * The recorded digests of the parts a continued read covers again whole, if S3 lists each of them with the
 * ETag recorded beside its MD5; undefined when they do not match (a part was replaced since) or were not
 * all recorded. A record without them (written before they were kept) falls back to the parts' ETags,
 * which must then look like MD5s (an SSE-KMS destination's do, but are not: the read again fails on them).
 */
function checkableParts(
  resume: NonNullable<MultipartUploadRecord['resume']>,
  partSize: number,
  parts: CompletedPart[],
): Map<number, PartDigest> | undefined {
  const digests = new Map<number, PartDigest>();
  const first = firstWholePart(resume.readStart, partSize);
  if (!resume.partMd5s) {
    const covered = parts.filter((part) => (part.PartNumber ?? 0) >= first);
    // Stryker disable next-line StringLiteral: a part without an ETag fails the MD5 test whether it reads as '' or as any other text that is not 32 hex digits
    return covered.every((part) => /^"?[0-9a-f]{32}"?$/.test(part.ETag ?? '')) ? digests : undefined;
  }
  const md5s = splitDigests(resume.partMd5s) ?? [];
  const etags = resume.partEtags ?? [];
  if (md5s.length !== etags.length || md5s.length !== Math.max(0, resume.completedParts - first + 1)) {
    return undefined;
  }
  const listed = new Map(parts.map((part) => [part.PartNumber ?? 0, stripQuotes(part.ETag ?? '')]));
  for (const [index, md5] of md5s.entries()) {
    // Stryker disable next-line StringLiteral: the length check above makes `etags` as long as `md5s`, so `etags[index]` is always there
    const etag = etags[index] ?? '';
    if (listed.get(first + index) !== stripQuotes(etag)) return undefined;
    digests.set(first + index, { md5, etag });
  }
  return digests;
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
  // The next read starts inside a part (it never starts past the uploaded bytes, which end on a part
  // boundary): the MD5 of that part's bytes from there on links the two reads.
  const inside = readStart % plan.partSize !== 0;
  const tailMd5 = inside ? progress.tailMd5s.get(Math.floor(readStart / plan.partSize) + 1) : undefined;
  if (inside && !tailMd5) return false;
  // The parts the next read covers again whole, with the MD5 each was sent with and the ETag S3 gave it.
  const first = firstWholePart(readStart, plan.partSize);
  const covered = Array.from({ length: Math.max(0, progress.contiguousParts - first + 1) }, (_, i) =>
    progress.partDigests.get(first + i),
  );
  if (covered.length > MAX_RECORDED_PARTS) return false;
  const known = covered.filter((digest): digest is PartDigest => digest !== undefined);
  const partDigests = known.length === covered.length && known.length > 0 ? known : undefined;
  await uploads.save({
    ...record,
    uploadId: progress.uploadId ?? record.uploadId,
    resume: {
      completedParts: progress.contiguousParts,
      readStart,
      sourcePartMd5s,
      tailMd5,
      partMd5s: partDigests && Buffer.concat(partDigests.map((digest) => digest.md5)),
      partEtags: partDigests?.map((digest) => digest.etag),
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
