/**
 * The copy room: one source object into the destination, verified before it becomes visible.
 *
 * - copy-object.ts (this file): one copy from read to conditional write, and the room's entry: callers
 *   outside copy/ import from here;
 * - write-condition.ts: the condition a write carries, and whether a refused write may try once more;
 * - occupied-destination.ts: what is at the destination when a write is refused, adopted or left alone;
 * - put-single.ts: the single PutObject of a whole body;
 * - put-in-parts.ts: the multipart write, new or continued, and what it checks once completed;
 * - upload-errors.ts: what a refused or failed write becomes (ObjectCopyError, IntegrityError);
 * - read-source.ts: the GET pinned to the listed ETag, and what that ETag lets the read be checked against;
 * - verify-stream.ts: the check on the stream, before the last byte is handed to the write;
 * - part-plan.ts: part sizes for objects up to 5 TiB;
 * - upload-parts.ts: the resumable multipart upload;
 * - resume-multipart.ts: keeping a cut upload on record, and continuing it (list-uploaded-parts.ts: its
 *   parts as S3 still holds them; reread-check.ts: the bytes read again matching them);
 * - clean-orphan-uploads.ts: aborting multipart uploads that runs of the job left behind;
 * - retry.ts: retrying one object's copy with backoff, and which failures are worth another try;
 * - integrity.ts: reading ETags as checksums.
 */
import { finished, type Readable } from 'node:stream';
import type { GetObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import type { LedgerEntry, MultipartUploadRecord, UnrecordedWrite } from '../state/state-store.js';
import { DEFAULT_PART_SIZE, followSourceParts, type PartPlan, planParts, QUEUE_SIZE } from './part-plan.js';
import { putInParts } from './put-in-parts.js';
import { putSingle } from './put-single.js';
import { checkForRead, getSource, learnSourceCheck, readSourceTags } from './read-source.js';
import { type ContinuableUpload, continuableUpload, splitDigests } from './resume-multipart.js';
import { AssumedLayoutError, type SourceCheck, VerifyStream } from './verify-stream.js';
import { conditionForSecondAttempt, type WriteCondition, writeCondition } from './write-condition.js';

export {
  compositeOf,
  DestinationOccupiedError,
  inspectDestination,
} from './occupied-destination.js';
export { isPreconditionFailure } from './upload-errors.js';
export { type WriteCondition, writeCondition };

/** The default part size; objects over DEFAULT_PART_SIZE × 10,000 get larger parts (see part-plan.ts). */
export const PART_SIZE = DEFAULT_PART_SIZE;
export { QUEUE_SIZE };

/** Where one object goes, and what the ledger knows about its earlier copy. */
export interface CopyRequest {
  sourceBucket: string;
  key: string;
  /** The ETag the listing showed; the GET is pinned to it. */
  etag: string;
  size: number;
  destinationBucket: string;
  destinationKey: string;
  /** The destination ETag this sync last wrote for the key, if it wrote one. */
  previousDestinationEtag?: string;
  /** Overwrite whatever is at the destination (mirror jobs). */
  overwrite: boolean;
  /** A write of this key that a run started and never recorded (the ledger's intent). */
  interruptedWrite?: UnrecordedWrite;
  /** A multipart upload of this key that an earlier run's deadline cut, to continue if still valid. */
  cutUpload?: MultipartUploadRecord;
  /** Carry the source object's tags over (the job's options.copyTags). */
  copyTags?: boolean;
}

/** Where a copy keeps its multipart uploads on record (the job's state), so none is left behind. */
export interface UploadRecords {
  /** Records an upload (before its first part) or, with `resume`, where a cut one stands. */
  save(record: Omit<MultipartUploadRecord, 'runId'>): Promise<void>;
  /** Forgets the key's upload once it is completed or aborted. */
  forget(key: string): Promise<void>;
}

/** How a copy runs. */
export interface CopyOptions {
  signal?: AbortSignal;
  /** What must be on record before the destination changes (the ledger intent). */
  beforeWrite?: Promise<unknown>;
  /** Without it a multipart copy cut by the deadline is aborted rather than kept for the next run. */
  uploads?: UploadRecords;
  /** The smallest part size (default 8 MiB, at least 5 MiB); larger objects get larger parts. */
  partSize?: number;
}

/** What was verified and written. */
export interface CopyResult {
  bytes: number;
  /** SHA-256 (base64) of the bytes; absent when a continued copy did not read them all in this run. */
  sha256?: string;
  destinationEtag: string;
  destinationVersionId?: string;
  /** How the destination's bytes were checked against the source's (see LedgerEntry.verifiedBy). */
  verifiedBy: NonNullable<LedgerEntry['verifiedBy']>;
  /** The destination already held exactly these bytes (an earlier run stored them); nothing was written. */
  adopted?: boolean;
}

/**
 * Streams one object from the source into the destination: GET pinned to the listed ETag, checked on the
 * way through against what the source's ETag says its bytes are (size, MD5 or rebuilt multipart ETag),
 * into one PutObject (with the source's Content-MD5 or checksum, so S3 itself refuses different bytes) or
 * a multipart upload (each part with its Content-MD5, completed only after the whole read checked out),
 * with its content headers and user metadata preserved. Memory per object is bounded by the part plan:
 * (queueSize + 1) parts, 40 MiB at the default 8 MiB parts.
 *
 * The write never replaces an object this sync did not write: a new key is written only if absent
 * (If-None-Match), a changed key only if the destination still holds this sync's last copy (If-Match),
 * unless `overwrite` is set.
 *
 * A multipart copy cut by the deadline keeps its upload on record (options.uploads) and the next run
 * continues it from the next part, so an object of any size completes after enough runs.
 *
 * @throws ObjectCopyError (retryable or not) naming the object and the reason.
 */
export async function copyObject(
  clients: { sourceS3: S3Client; destinationS3: S3Client },
  request: CopyRequest,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const check = await learnSourceCheck(clients.sourceS3, request, options.signal);
  try {
    return await copyChecked(clients, request, check, options);
  } catch (error) {
    if (!(error instanceof AssumedLayoutError)) throw error;
    // The source's parts are not the equal parts its first part suggested (or the bytes are wrong): ask
    // each part's size and read again. An upload the failed read started was aborted, not completed.
    const exact = await learnSourceCheck(clients.sourceS3, request, options.signal, { exactLayout: true });
    return copyChecked(clients, request, exact, options);
  }
}

/** copyObject, once the source's check is known: plan the parts, then write (a second time if safe). */
async function copyChecked(
  clients: { sourceS3: S3Client; destinationS3: S3Client },
  request: CopyRequest,
  check: SourceCheck,
  options: CopyOptions,
): Promise<CopyResult> {
  // A part size the job (or a test) chose wins; by default a multipart source is copied in its own parts.
  const plan =
    (options.partSize === undefined &&
      request.size > DEFAULT_PART_SIZE &&
      check.kind === 'composite' &&
      followSourceParts(request.size, check.partSizes)) ||
    planParts(request.size, options.partSize);
  let cut = await continuableUpload(clients.destinationS3, request, plan, options);
  let condition = writeCondition(request);
  // Stryker disable next-line AssignmentOperator: attempt is only compared with 1, its starting value; counting down leaves it unequal to 1 after the first try exactly as counting up does
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await copyOnce(clients, request, { plan, check, cut, condition }, options);
    } catch (error) {
      const retry = attempt === 1 ? conditionForSecondAttempt(error, condition, request) : undefined;
      if (!retry) throw error;
      condition = retry;
      cut = undefined;
    }
  }
}

interface CopyPlan {
  plan: PartPlan;
  check: SourceCheck;
  cut: ContinuableUpload | undefined;
  condition: WriteCondition;
}

async function copyOnce(
  clients: { sourceS3: S3Client; destinationS3: S3Client },
  request: CopyRequest,
  { plan, check: listedCheck, cut, condition }: CopyPlan,
  options: CopyOptions,
): Promise<CopyResult> {
  const readStart = cut?.record.resume?.readStart ?? 0;
  const single = !cut && request.size < plan.partSize;
  const tagging = request.copyTags
    ? await readSourceTags(clients.sourceS3, request, options.signal)
    : undefined;
  const source = await getSource(clients.sourceS3, request, readStart, options.signal);
  const check = checkForRead(listedCheck, source);
  const headers = { ...contentHeaders(source), ...(tagging && { Tagging: tagging }) };
  const verified = new VerifyStream({
    where: `s3://${request.sourceBucket}/${request.key}`,
    size: request.size,
    start: readStart,
    check,
    priorPartMd5s: splitDigests(cut?.record.resume?.sourcePartMd5s),
    wholeMd5: single,
  });
  // The verifying stream is destroyed when the source body fails or closes early, so the writer sees the
  // error. Not pipeline(): it also builds an AbortController per call and aborts it at the end, creating a
  // DOMException with a stack trace for every object copied.
  const body = source.Body as Readable;
  finished(body, (error) => {
    if (error) verified.destroy(error);
  });
  body.pipe(verified);
  try {
    await options.beforeWrite;
    return single
      ? await putSingle(
          clients.destinationS3,
          request,
          { source, headers },
          verified,
          check,
          condition,
          options.signal,
        )
      : await putInParts(
          clients.destinationS3,
          request,
          headers,
          verified,
          plan,
          { cut, condition },
          options,
        );
  } finally {
    // Stryker disable next-line all: pipeline() destroys the source body as well once the verifying stream is destroyed on the next line; this only does it first
    (source.Body as Readable | undefined)?.destroy?.();
    verified.destroy();
  }
}

/** The source's headers a copy carries over. */
type SourceHeaders = Pick<
  GetObjectCommandOutput,
  | 'ContentType'
  | 'ContentEncoding'
  | 'ContentDisposition'
  | 'ContentLanguage'
  | 'CacheControl'
  | 'Expires'
  | 'Metadata'
>;

/** What the destination object carries over from the source: content headers, metadata, tags. */
export type WrittenHeaders = ReturnType<typeof contentHeaders> & { Tagging?: string };

/** Content headers and user metadata the destination object carries over from the source (GET or HEAD). */
export function contentHeaders(source: Pick<GetObjectCommandOutput, keyof SourceHeaders>) {
  return {
    ContentType: source.ContentType,
    ContentEncoding: source.ContentEncoding,
    ContentDisposition: source.ContentDisposition,
    ContentLanguage: source.ContentLanguage,
    CacheControl: source.CacheControl,
    Expires: source.Expires,
    Metadata: source.Metadata,
  };
}
