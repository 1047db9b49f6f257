/**
 * The copy room: one source object into the destination, verified before it becomes visible.
 *
 * - copy-object.ts (this file): one copy from read to conditional write, and what happens when the write
 *   is refused;
 * - read-source.ts: the GET pinned to the listed ETag, and what that ETag lets the read be checked against;
 * - verify-stream.ts: the check on the stream, before the last byte is handed to the write;
 * - part-plan.ts: part sizes for objects up to 5 TiB;
 * - upload-parts.ts: the resumable multipart upload;
 * - resume-multipart.ts: keeping a cut upload on record, and continuing it;
 * - clean-orphan-uploads.ts: aborting multipart uploads that runs of the job left behind;
 * - retry.ts: retrying one object's copy with backoff, and which failures are worth another try;
 * - integrity.ts: reading ETags as checksums.
 */
import { finished, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type PutObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { awsErrorCode, IntegrityError, ObjectCopyError } from '../errors.js';
import type { LedgerEntry, MultipartUploadRecord, UnrecordedWrite } from '../state/state-store.js';
import { isPlainMd5Etag, stripQuotes } from './integrity.js';
import { DEFAULT_PART_SIZE, followSourceParts, type PartPlan, planParts, QUEUE_SIZE } from './part-plan.js';
import { checkForRead, getSource, learnSourceCheck, readSourceTags } from './read-source.js';
import {
  boundaryFinder,
  type ContinuableUpload,
  continuableUpload,
  keepForNextRun,
  splitDigests,
} from './resume-multipart.js';
import { type UploadProgress, uploadParts } from './upload-parts.js';
import { AssumedLayoutError, compositeEtag, type SourceCheck, VerifyStream } from './verify-stream.js';
import { readWhole, untilAborted } from './whole-body.js';

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

/**
 * When a conditional write was refused, whether one more attempt under another condition is safe:
 * - the copy this sync wrote earlier is gone (a consumer moved it): write where nothing is;
 * - the job mirrors, so it may replace what is there: replace exactly the object it saw;
 * - the destination holds what an interrupted run of this job wrote (its intent is in the ledger, and
 *   the object is the size it was writing and no older than the intent): replace exactly that object.
 */
export function conditionForSecondAttempt(
  error: unknown,
  condition: WriteCondition,
  request: CopyRequest,
): WriteCondition | undefined {
  if (condition.IfMatch && awsErrorCode(error).name === 'NoSuchKey') return { IfNoneMatch: '*' };
  if (!(error instanceof DestinationOccupiedError)) return undefined;
  if (request.overwrite) return error.found ? { IfMatch: error.found.etag } : {};
  const interrupted = request.interruptedWrite;
  if (!interrupted || !error.found) return undefined;
  const { etag, size, lastModified } = error.found;
  const writtenAfterIntent = lastModified.getTime() >= Date.parse(interrupted.since) - CLOCK_SKEW_MS;
  return interrupted.sizes.includes(size) && writtenAfterIntent ? { IfMatch: etag } : undefined;
}

/** Allowance between this machine's clock and S3's (which also truncates LastModified to seconds). */
const CLOCK_SKEW_MS = 5_000;

export type WriteCondition = Pick<PutObjectCommandInput, 'IfMatch' | 'IfNoneMatch'>;

/**
 * Writes are conditional even for mirror jobs: a refused write then shows whether the destination
 * already holds these very bytes (adopted, not uploaded twice) before anything is replaced.
 */
export function writeCondition(request: Pick<CopyRequest, 'previousDestinationEtag'>): WriteCondition {
  if (request.previousDestinationEtag)
    return { IfMatch: `"${stripQuotes(request.previousDestinationEtag)}"` };
  return { IfNoneMatch: '*' };
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
type WrittenHeaders = ReturnType<typeof contentHeaders> & { Tagging?: string };

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

/**
 * The digests S3 checks on a single PutObject: Content-MD5 from a plain-MD5 source ETag, and the source's
 * own full-object checksum when it has one. S3 refuses the write if the bytes differ.
 */
function statedDigests(source: GetObjectCommandOutput, check: SourceCheck): Partial<PutObjectCommandInput> {
  const digests: Partial<PutObjectCommandInput> = {};
  if (check.kind === 'md5') digests.ContentMD5 = Buffer.from(check.md5, 'hex').toString('base64');
  const fullObject = (value: string | undefined) =>
    value && !value.includes('-') && source.ChecksumType !== 'COMPOSITE' ? value : undefined;
  const crc32 = fullObject(source.ChecksumCRC32);
  const crc32c = fullObject(source.ChecksumCRC32C);
  const sha1 = fullObject(source.ChecksumSHA1);
  const sha256 = fullObject(source.ChecksumSHA256);
  if (crc32) digests.ChecksumCRC32 = crc32;
  else if (crc32c) digests.ChecksumCRC32C = crc32c;
  else if (sha256) digests.ChecksumSHA256 = sha256;
  // Stryker disable next-line ConditionalExpression: `true` only sets ChecksumSHA1 to undefined when no checksum applies, which the SDK sends as no header
  else if (sha1) digests.ChecksumSHA1 = sha1;
  return digests;
}

/**
 * One PutObject of the whole body, sent only once the verified body has ended (so a read that fails its
 * check is never written). The body is gathered here rather than through lib-storage, whose chunking,
 * progress events and endpoint lookup per object bought nothing for a body already held whole.
 */
async function putSingle(
  s3: S3Client,
  request: CopyRequest,
  { source, headers }: { source: GetObjectCommandOutput; headers: WrittenHeaders },
  verified: VerifyStream,
  check: SourceCheck,
  condition: WriteCondition,
  signal?: AbortSignal,
): Promise<CopyResult> {
  const where = `s3://${request.destinationBucket}/${request.destinationKey}`;
  let result: PutObjectCommandOutput;
  try {
    const body = await untilAborted(readWhole(verified), signal);
    result = await untilAborted(
      s3.send(
        new PutObjectCommand({
          Bucket: request.destinationBucket,
          Key: request.destinationKey,
          Body: body,
          // Stated, not left to the SDK: a body it does not measure (an empty string, a stream) leaves
          // without Content-Length, and the SDK then prints a lib-storage hint on console.warn.
          ContentLength: body.length,
          ...headers,
          ...statedDigests(source, check),
          ...condition,
        }),
        { abortSignal: signal },
      ),
      signal,
    );
  } catch (error) {
    if (signal?.aborted) throw explainUploadFailure(deadlineError(error), where);
    if (!isPreconditionFailure(error)) throw explainUploadFailure(error, where);
    const found = await inspectDestination(s3, request);
    const adopted = found && adoptIdenticalCopy(request, verified, found, [verified.digests().md5]);
    if (adopted) return adopted;
    throw occupied(where, error, found);
  }
  const digests = verified.digests();
  const destinationEtag = stripQuotes(result.ETag ?? '');
  const checkable = isPlainMd5Etag(destinationEtag, result.ServerSideEncryption);
  if (checkable && destinationEtag !== digests.md5) {
    throw new IntegrityError(
      `${where}: stored ETag ${destinationEtag} does not match the bytes sent (${digests.md5})`,
    );
  }
  return {
    bytes: verified.bytes,
    sha256: digests.sha256,
    destinationEtag,
    destinationVersionId: result.VersionId,
    verifiedBy: checkable ? 'etag-md5' : 'sdk-checksum',
  };
}

/** A multipart upload, new or continued; kept on record while it exists, aborted unless cut by the deadline. */
async function putInParts(
  s3: S3Client,
  request: CopyRequest,
  headers: WrittenHeaders,
  verified: VerifyStream,
  plan: PartPlan,
  { cut, condition }: { cut: ContinuableUpload | undefined; condition: WriteCondition },
  options: CopyOptions,
): Promise<CopyResult> {
  const where = `s3://${request.destinationBucket}/${request.destinationKey}`;
  const record: Omit<MultipartUploadRecord, 'runId'> = {
    key: request.key,
    destinationKey: request.destinationKey,
    uploadId: cut?.record.uploadId ?? '',
    startedAt: cut?.record.startedAt ?? new Date().toISOString(),
    sourceEtag: request.etag,
    size: request.size,
    partSize: plan.partSize,
  };
  const progress: UploadProgress = { contiguousParts: 0, tailMd5s: new Map(), partDigests: new Map() };
  let result: Awaited<ReturnType<typeof uploadParts>>;
  try {
    result = await uploadParts({
      s3,
      create: { Bucket: request.destinationBucket, Key: request.destinationKey, ...headers },
      condition,
      plan,
      body: verified,
      bodyStart: cut?.record.resume?.readStart ?? 0,
      resume: cut && {
        uploadId: cut.record.uploadId,
        parts: cut.parts,
        tailMd5: cut.record.resume?.tailMd5 && Buffer.from(cut.record.resume.tailMd5),
        partDigests: cut.partDigests,
      },
      boundaryInside:
        verified.check.kind === 'composite' ? boundaryFinder(verified.check.partSizes) : undefined,
      knownPartMd5: knownPartMd5(verified, plan),
      signal: options.signal,
      beforeCreate: async () => {
        // On record before the upload exists (no id yet): see cleanOrphanUploads.
        record.startedAt = new Date().toISOString();
        await options.uploads?.save(record);
      },
      onCreated: async (uploadId) => {
        record.uploadId = uploadId;
        await options.uploads?.save(record);
      },
      progress,
    });
  } catch (error) {
    const kept =
      options.signal?.aborted &&
      progress.uploadId &&
      progress.contiguousParts > 0 &&
      options.uploads &&
      (await keepForNextRun(record, progress, verified, plan, options.uploads));
    if (kept) {
      throw new ObjectCopyError(
        `${where}: cut at the deadline after ${progress.contiguousParts} of ${plan.partCount} parts; ` +
          'the next run continues the upload',
        { cause: error, retryable: false },
      );
    }
    if (!isPreconditionFailure(error)) {
      await abandon(s3, request, progress, options.uploads);
      throw explainUploadFailure(options.signal?.aborted ? deadlineError(error) : error, where);
    }
    // Every part is uploaded and checked; the destination key holds something else.
    const found = await inspectDestination(s3, request);
    await abandon(s3, request, progress, options.uploads);
    const adopted = found && adoptIdenticalCopy(request, verified, found, undefined, progress.partEtags);
    if (adopted) return adopted;
    throw occupied(where, error, found);
  }
  await options.uploads?.forget(request.key);
  const destinationEtag = stripQuotes(result.ETag ?? '');
  // An SSE-KMS destination's part ETags, and so its object's ETag, are not built from MD5s; each part
  // carried its Content-MD5, which S3 checked.
  const expected =
    !result.ServerSideEncryption?.startsWith('aws:kms') &&
    /^[0-9a-f]{32}-\d+$/.test(destinationEtag) &&
    progress.partEtags &&
    compositeOf(progress.partEtags);
  if (expected && expected !== destinationEtag) {
    throw new IntegrityError(
      `${where}: stored ETag ${destinationEtag} does not match the bytes sent (${expected})`,
    );
  }
  return {
    bytes: request.size,
    sha256: verified.digests().sha256,
    destinationEtag,
    destinationVersionId: result.VersionId,
    verifiedBy: expected ? 'etag-md5' : 'sdk-checksum',
  };
}

/** Aborts a multipart upload that will not be completed, and forgets it. */
async function abandon(
  s3: S3Client,
  request: CopyRequest,
  progress: UploadProgress,
  uploads: UploadRecords | undefined,
): Promise<void> {
  if (!progress.uploadId) return;
  await s3
    .send(
      new AbortMultipartUploadCommand({
        Bucket: request.destinationBucket,
        Key: request.destinationKey,
        UploadId: progress.uploadId,
      }),
    )
    .catch(() => {});
  await uploads?.forget(request.key).catch(() => {});
}

/**
 * When the source's parts are the upload's parts (same size, same count: the usual 8 MiB layout), the
 * verify stream's MD5 of each source part is the part's Content-MD5, so no byte is MD5-hashed twice. The
 * verify stream hashes a part's last byte before it releases it, so the digest is there by the time the
 * uploader holds the whole part; the length check keeps a mismatch from ever sending a wrong digest (S3
 * would refuse the part, and the copy would fail, not corrupt).
 */
function knownPartMd5(
  verified: VerifyStream,
  plan: PartPlan,
): ((partNumber: number, length: number) => Buffer | undefined) | undefined {
  const { check } = verified;
  // Stryker disable next-line ConditionalExpression: with every part but the last at plan.partSize (next line), the parts of another count line up as far as the source's go, and the length check below sends a known digest only for a part holding exactly its source part's bytes; dropping the count check only hashes less
  if (check.kind !== 'composite' || check.partSizes.length !== plan.partCount) return undefined;
  // Stryker disable next-line UnaryOperator: slice(0, +1) differs only for a first part of plan.partSize followed by one of another size at the same part count, a layout learnSourceCheck (read-source.ts) takes for equal parts, so it never reaches here
  if (!check.partSizes.slice(0, -1).every((size) => size === plan.partSize)) return undefined;
  return (partNumber, length) => {
    const md5 = verified.closedPartMd5s[partNumber - 1];
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: past the guards above every part but the last has its source part's size and offset; a last part of another length is never sent (the read fails first), and a missing digest falls back to hashing the part, the same MD5
    return md5 && length === check.partSizes[partNumber - 1] ? md5 : undefined;
  };
}

/** The multipart ETag of parts with these ETags, when each is a plain MD5 (not SSE-KMS). */
export function compositeOf(partEtags: string[]): string | undefined {
  const digests = partEtags.map(stripQuotes);
  if (!digests.every((etag) => /^[0-9a-f]{32}$/.test(etag))) return undefined;
  return compositeEtag(digests.map((etag) => Buffer.from(etag, 'hex')));
}

/** What is at the destination key now, or undefined if it cannot be read. */
export async function inspectDestination(
  s3: S3Client,
  request: Pick<CopyRequest, 'destinationBucket' | 'destinationKey'>,
): Promise<DestinationObject | undefined> {
  const head = await s3
    .send(new HeadObjectCommand({ Bucket: request.destinationBucket, Key: request.destinationKey }))
    .catch(() => undefined);
  if (!head?.ETag || head.ContentLength === undefined) return undefined;
  return {
    etag: head.ETag,
    size: head.ContentLength,
    lastModified: head.LastModified ?? new Date(0),
    versionId: head.VersionId,
    kms: head.ServerSideEncryption?.startsWith('aws:kms') ?? false,
  };
}

/**
 * A conditional write was refused because the destination already holds something. If that something is
 * byte for byte this source version (a run that stored it and was killed before recording it in the
 * ledger), record it as copied instead: nothing is overwritten and nothing is uploaded twice. The stored
 * ETag is compared with the whole-body MD5 (one PutObject) or with the ETag of the parts just uploaded.
 */
function adoptIdenticalCopy(
  request: CopyRequest,
  verified: VerifyStream,
  found: DestinationObject,
  wholeMd5: (string | undefined)[] | undefined,
  partEtags?: string[],
): CopyResult | undefined {
  if (found.size !== request.size || found.kms) return undefined;
  const etag = stripQuotes(found.etag);
  const matches = wholeMd5?.[0] ? etag === wholeMd5[0] : partEtags ? etag === compositeOf(partEtags) : false;
  if (!matches) return undefined;
  return {
    bytes: request.size,
    sha256: verified.digests().sha256,
    destinationEtag: etag,
    destinationVersionId: found.versionId,
    verifiedBy: 'etag-md5',
    adopted: true,
  };
}

export interface DestinationObject {
  etag: string;
  size: number;
  lastModified: Date;
  versionId?: string;
  kms: boolean;
}

/** The destination key is taken by an object this write may not replace (as far as this attempt knows). */
export class DestinationOccupiedError extends ObjectCopyError {
  readonly found: DestinationObject | undefined;
  constructor(message: string, options: ErrorOptions & { found: DestinationObject | undefined }) {
    super(message, { ...options, retryable: false });
    this.found = options.found;
  }
}

export function occupied(
  where: string,
  error: unknown,
  found: DestinationObject | undefined,
): DestinationOccupiedError {
  return new DestinationOccupiedError(
    `${where} holds an object this sync did not write, so it was left untouched. ` +
      'Delete or move it, or set options.mirror to let the sync overwrite it',
    { cause: error, found },
  );
}

/** Whatever a request cut by the deadline threw (the SDK's, the signal's reason), as an AbortError. */
function deadlineError(error: unknown): Error {
  return Object.assign(new Error('aborted at the deadline', { cause: error }), { name: 'AbortError' });
}

export function isPreconditionFailure(error: unknown): boolean {
  const { name, status } = awsErrorCode(error);
  return name === 'PreconditionFailed' || status === 412;
}

function explainUploadFailure(error: unknown, where: string): Error {
  if (error instanceof ObjectCopyError) return error;
  const { name, status } = awsErrorCode(error);
  if (name === 'AbortError') {
    return new ObjectCopyError(`${where}: upload aborted at the deadline; the next run copies it`, {
      cause: error,
      retryable: false,
    });
  }
  if (name === 'ConditionalRequestConflict' || status === 409) {
    return new ObjectCopyError(`${where} was written by someone else during the copy; retrying next run`, {
      cause: error,
    });
  }
  if (name === 'BadDigest' || name === 'InvalidDigest') {
    return new IntegrityError(`${where}: S3 refused the bytes as not matching their digest`, {
      cause: error,
    });
  }
  if (name === 'NoSuchKey') return error as Error;
  if (name === 'AccessDenied' || status === 403) {
    return new ObjectCopyError(
      `PUT ${where} was denied: this identity needs s3:PutObject on the destination`,
      {
        cause: error,
        retryable: false,
      },
    );
  }
  return new ObjectCopyError(`PUT ${where} failed: ${(error as Error).message ?? String(error)}`, {
    cause: error,
  });
}
