import { pipeline, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { awsErrorCode, IntegrityError, ObjectCopyError, SourceVanishedError } from './errors.js';
import { expectedEtag, HashingStream, isPlainMd5Etag, stripQuotes } from './integrity.js';
import type { UnrecordedWrite } from './state-store.js';

const MiB = 1024 * 1024;

/** S3's minimum part is 5 MiB; 8 MiB × 10,000 parts carries objects up to ~78 GiB. */
export const PART_SIZE = 8 * MiB;
/** Parts of one object in flight. Memory per large object is at most QUEUE_SIZE × PART_SIZE = 32 MiB. */
export const QUEUE_SIZE = 4;

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
}

/** What was verified and written. */
export interface CopyResult {
  bytes: number;
  sha256: string;
  destinationEtag: string;
  destinationVersionId?: string;
  /** How the destination's bytes were checked against the source's. */
  verifiedBy: 'etag-md5' | 'sdk-checksum';
  /** The destination already held exactly these bytes (an earlier run stored them); nothing was written. */
  adopted?: boolean;
}

/**
 * Streams one object from the source into the destination: GET pinned to the listed ETag, hashed on the
 * way through, into a lib-storage Upload (one PutObject for small objects, multipart otherwise), with
 * its content headers and user metadata preserved. Memory is bounded by QUEUE_SIZE × PART_SIZE.
 *
 * The write never replaces an object this sync did not write: a new key is written only if absent
 * (If-None-Match), a changed key only if the destination still holds this sync's last copy (If-Match),
 * unless `overwrite` is set.
 *
 * @throws ObjectCopyError (retryable or not) naming the object and the reason.
 */
export async function copyObject(
  clients: { sourceS3: S3Client; destinationS3: S3Client },
  request: CopyRequest,
  options: { signal?: AbortSignal; beforeWrite?: Promise<unknown> } = {},
): Promise<CopyResult> {
  const { signal } = options;
  let condition = writeCondition(request);
  for (let attempt = 1; ; attempt += 1) {
    const source = await getSource(clients.sourceS3, request, signal);
    try {
      // What must be on record before the destination changes (the ledger intent) lands first.
      await options.beforeWrite;
      return await upload(clients.destinationS3, request, source, condition, signal);
    } catch (error) {
      (source.Body as Readable | undefined)?.destroy?.();
      const retry = attempt === 1 ? conditionForSecondAttempt(error, condition, request) : undefined;
      if (!retry) throw error;
      condition = retry;
    }
  }
}

/**
 * When a conditional write was refused, whether one more attempt under another condition is safe:
 * - the copy this sync wrote earlier is gone (a consumer moved it): write where nothing is;
 * - the job mirrors, so it may replace what is there: replace exactly the object it saw;
 * - the destination holds what an interrupted run of this job wrote (its intent is in the ledger, and
 *   the object is the size it was writing and no older than the intent): replace exactly that object.
 */
function conditionForSecondAttempt(
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

type WriteCondition = Pick<PutObjectCommandInput, 'IfMatch' | 'IfNoneMatch'>;

/**
 * Writes are conditional even for mirror jobs: a refused write then shows whether the destination
 * already holds these very bytes (adopted, not uploaded twice) before anything is replaced.
 */
function writeCondition(request: CopyRequest): WriteCondition {
  if (request.previousDestinationEtag)
    return { IfMatch: `"${stripQuotes(request.previousDestinationEtag)}"` };
  return { IfNoneMatch: '*' };
}

async function getSource(
  s3: S3Client,
  request: CopyRequest,
  signal?: AbortSignal,
): Promise<GetObjectCommandOutput> {
  const where = `s3://${request.sourceBucket}/${request.key}`;
  try {
    return await s3.send(
      new GetObjectCommand({ Bucket: request.sourceBucket, Key: request.key, IfMatch: request.etag }),
      { abortSignal: signal },
    );
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    if (name === 'PreconditionFailed' || status === 412) {
      // Retrying now would fetch the same stale ETag; the next run lists the new one.
      throw new ObjectCopyError(`${where} changed after it was listed; the next run copies the new version`, {
        cause: error,
        retryable: false,
      });
    }
    if (name === 'NoSuchKey' || status === 404) {
      throw new SourceVanishedError(`${where} was deleted after it was listed`, {
        cause: error,
        retryable: false,
      });
    }
    if (name === 'AccessDenied' || status === 403) {
      throw new ObjectCopyError(
        `GET ${where} was denied: the source role needs s3:GetObject on arn:aws:s3:::${request.sourceBucket}/*` +
          ' (and kms:Decrypt if the object is SSE-KMS encrypted)',
        { cause: error, retryable: false },
      );
    }
    throw new ObjectCopyError(`GET ${where} failed: ${(error as Error).message}`, { cause: error });
  }
}

async function upload(
  s3: S3Client,
  request: CopyRequest,
  source: GetObjectCommandOutput,
  condition: WriteCondition,
  signal?: AbortSignal,
): Promise<CopyResult> {
  const where = `s3://${request.destinationBucket}/${request.destinationKey}`;
  // A plain-MD5 source ETag on an object of several parts is the only reason to hash the whole body twice.
  const hashing = new HashingStream(PART_SIZE, {
    wholeMd5: request.size > PART_SIZE && isPlainMd5Etag(request.etag, source.ServerSideEncryption),
  });
  // pipeline() destroys the hashing stream when the source body fails, so the Upload sees the error.
  pipeline(source.Body as Readable, hashing, () => {});
  const transfer = new Upload({
    client: s3,
    partSize: PART_SIZE,
    queueSize: QUEUE_SIZE,
    leavePartsOnError: false,
    params: {
      Bucket: request.destinationBucket,
      Key: request.destinationKey,
      Body: hashing,
      ContentLength: request.size,
      ContentType: source.ContentType,
      ContentEncoding: source.ContentEncoding,
      ContentDisposition: source.ContentDisposition,
      ContentLanguage: source.ContentLanguage,
      CacheControl: source.CacheControl,
      Expires: source.Expires,
      Metadata: source.Metadata,
      ...condition,
    },
  });
  const abort = () => void transfer.abort();
  signal?.addEventListener('abort', abort, { once: true });
  let result: Awaited<ReturnType<Upload['done']>>;
  try {
    result = await transfer.done();
  } catch (error) {
    if (signal?.aborted) await abortMultipartUpload(s3, request, transfer);
    if (!isPreconditionFailure(error)) {
      hashing.destroy();
      throw explainUploadFailure(error, where);
    }
    const found = await inspectDestination(s3, request);
    const adopted = found && adoptIdenticalCopy(request, hashing, found);
    hashing.destroy();
    if (adopted) return adopted;
    throw new DestinationOccupiedError(
      `${where} holds an object this sync did not write, so it was left untouched. ` +
        'Delete or move it, or set options.mirror to let the sync overwrite it',
      { cause: error, found },
    );
  } finally {
    signal?.removeEventListener('abort', abort);
  }

  const digests = verifySourceBytes(request, source, hashing);
  const destinationEtag = result.ETag ?? '';
  const expected = result.ServerSideEncryption?.startsWith('aws:kms')
    ? undefined
    : expectedEtag(destinationEtag, digests);
  if (expected !== undefined && expected !== stripQuotes(destinationEtag)) {
    throw new IntegrityError(
      `${where}: stored ETag ${destinationEtag} does not match the bytes sent (${expected})`,
    );
  }
  return {
    bytes: hashing.bytes,
    sha256: digests.sha256,
    destinationEtag: stripQuotes(destinationEtag),
    destinationVersionId: result.VersionId,
    verifiedBy: expected === undefined ? 'sdk-checksum' : 'etag-md5',
  };
}

/** Checks that all bytes arrived, and that they hash to the source ETag where it is a plain MD5. */
function verifySourceBytes(request: CopyRequest, source: GetObjectCommandOutput, hashing: HashingStream) {
  if (hashing.bytes !== request.size) {
    throw new IntegrityError(
      `s3://${request.sourceBucket}/${request.key}: read ${hashing.bytes} bytes, expected ${request.size}`,
    );
  }
  const digests = hashing.digests();
  if (
    isPlainMd5Etag(request.etag, source.ServerSideEncryption) &&
    stripQuotes(request.etag) !== digests.md5
  ) {
    throw new IntegrityError(`s3://${request.sourceBucket}/${request.key}: bytes read do not match its ETag`);
  }
  return digests;
}

/** What is at the destination key now, or undefined if it cannot be read. */
async function inspectDestination(
  s3: S3Client,
  request: CopyRequest,
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
 * ETag is compared with the MD5s computed while streaming.
 */
function adoptIdenticalCopy(
  request: CopyRequest,
  hashing: HashingStream,
  found: DestinationObject,
): CopyResult | undefined {
  if (!hashing.writableFinished || hashing.bytes !== request.size) return undefined;
  if (found.size !== request.size || found.kms) return undefined;
  const digests = hashing.digests();
  if (expectedEtag(found.etag, digests) !== stripQuotes(found.etag)) return undefined;
  return {
    bytes: hashing.bytes,
    sha256: digests.sha256,
    destinationEtag: stripQuotes(found.etag),
    destinationVersionId: found.versionId,
    verifiedBy: 'etag-md5',
    adopted: true,
  };
}

interface DestinationObject {
  etag: string;
  size: number;
  lastModified: Date;
  versionId?: string;
  kms: boolean;
}

/** The destination key is taken by an object this write may not replace (as far as this attempt knows). */
class DestinationOccupiedError extends ObjectCopyError {
  readonly found: DestinationObject | undefined;
  constructor(message: string, options: ErrorOptions & { found: DestinationObject | undefined }) {
    super(message, { ...options, retryable: false });
    this.found = options.found;
  }
}

/**
 * lib-storage sends its own AbortMultipartUpload only after in-flight parts settle, possibly after the
 * Lambda has frozen; aborting here, before returning, leaves no parts behind at the deadline. The
 * bucket's lifecycle rule covers a process killed outright.
 */
async function abortMultipartUpload(s3: S3Client, request: CopyRequest, transfer: Upload): Promise<void> {
  // lib-storage keeps the upload id on the instance without exposing it in its types.
  const uploadId = (transfer as unknown as { uploadId?: string }).uploadId;
  if (!uploadId) return;
  await s3
    .send(
      new AbortMultipartUploadCommand({
        Bucket: request.destinationBucket,
        Key: request.destinationKey,
        UploadId: uploadId,
      }),
    )
    .catch(() => {});
}

function isPreconditionFailure(error: unknown): boolean {
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
