/**
 * Reading the source object: what its ETag lets a read be checked against, and the GET pinned to it.
 */
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { awsErrorCode, ObjectCopyError, SourceArchivedError, SourceVanishedError } from '../errors.js';
import type { CopyRequest } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import type { SourceCheck } from './verify-stream.js';

/**
 * What the source's ETag lets the stream check. A multipart ETag (`…-N`) is rebuilt from the MD5s of
 * the source's own parts, so their layout is learned first: HeadObject with PartNumber 1 gives the part
 * count and the first part's size. Uploaders cut equal parts (all but the last); when the count fits
 * equal parts they are assumed (`assumed: true`: a read that does not rebuild the ETag under them is read
 * again with `exactLayout`), else, or with `exactLayout`, each part's size is asked for.
 */
export async function learnSourceCheck(
  s3: S3Client,
  request: CopyRequest,
  signal?: AbortSignal,
  { exactLayout = false }: { exactLayout?: boolean } = {},
): Promise<SourceCheck> {
  const etag = stripQuotes(request.etag);
  if (/^[0-9a-f]{32}$/.test(etag)) return { kind: 'md5', md5: etag };
  const multipart = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
  if (!multipart) return { kind: 'size-only' };
  const count = Number(multipart[1]);
  const first = await headSourcePart(s3, request, 1, signal);
  if (first.ServerSideEncryption?.startsWith('aws:kms') || first.SSECustomerAlgorithm) {
    return { kind: 'size-only' };
  }
  const firstSize = first.ContentLength ?? 0;
  const equal =
    firstSize > 0 && Math.ceil(request.size / firstSize) === count && (first.PartsCount ?? count) === count;
  if (equal && !exactLayout) {
    const partSizes = Array.from({ length: count }, (_, i) =>
      i < count - 1 ? firstSize : request.size - firstSize * (count - 1),
    );
    return { kind: 'composite', etag, partSizes, assumed: true };
  }
  const partSizes: number[] = [firstSize];
  for (let part = 2; part <= count; part += 1) {
    partSizes.push((await headSourcePart(s3, request, part, signal)).ContentLength ?? 0);
  }
  return { kind: 'composite', etag, partSizes };
}

/**
 * The check a read is held to once the GET has answered. S3 gives an SSE-KMS or SSE-C object an ETag that
 * is not the MD5 of its bytes, however much it looks like one, and the listing does not say how an object
 * is encrypted: the GET does. Such a read is checked by its byte count, and against the source's own
 * full-object checksum (x-amz-checksum-*, asked for with ChecksumMode), which the SDK verifies before the
 * body ends, so a wrong body still never ends and is never written.
 */
export function checkForRead(check: SourceCheck, source: GetObjectCommandOutput): SourceCheck {
  if (check.kind !== 'md5') return check;
  const encrypted = source.ServerSideEncryption?.startsWith('aws:kms') || source.SSECustomerAlgorithm;
  return encrypted ? { kind: 'size-only' } : check;
}

async function headSourcePart(s3: S3Client, request: CopyRequest, part: number, signal?: AbortSignal) {
  try {
    return await s3.send(
      // Not pinned with If-Match (moto answers it with the part's own ETag): a layout of another version
      // cannot pass, because the pinned GET then fails or its bytes do not rebuild the listed ETag.
      new HeadObjectCommand({ Bucket: request.sourceBucket, Key: request.key, PartNumber: part }),
      { abortSignal: signal },
    );
  } catch (error) {
    throw explainSourceFailure(error, request, 'HEAD');
  }
}

export async function getSource(
  s3: S3Client,
  request: CopyRequest,
  readStart: number,
  signal?: AbortSignal,
): Promise<GetObjectCommandOutput> {
  try {
    return await s3.send(
      new GetObjectCommand({
        Bucket: request.sourceBucket,
        Key: request.key,
        IfMatch: request.etag,
        // The source's own checksums come back and the SDK checks the body against them as it ends.
        ChecksumMode: 'ENABLED',
        ...(readStart > 0 && { Range: `bytes=${readStart}-` }),
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    throw explainSourceFailure(error, request, 'GET');
  }
}

/**
 * The source object's tags as a write's Tagging header (URL-encoded key=value pairs joined by &), read with
 * the source role; undefined when it has none. Tags are not part of the version the GET pins: a change of
 * tags between this read and the GET is picked up when the object is next copied.
 *
 * @throws ObjectCopyError naming s3:GetObjectTagging and the producer template's parameter when refused.
 */
export async function readSourceTags(
  s3: S3Client,
  request: CopyRequest,
  signal?: AbortSignal,
): Promise<string | undefined> {
  let tags: { Key?: string; Value?: string }[];
  try {
    const output = await s3.send(
      new GetObjectTaggingCommand({ Bucket: request.sourceBucket, Key: request.key }),
      {
        abortSignal: signal,
      },
    );
    tags = output.TagSet ?? [];
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    if (name === 'AccessDenied' || status === 403) {
      throw new ObjectCopyError(
        `reading the tags of s3://${request.sourceBucket}/${request.key} was denied: options.copyTags needs ` +
          `s3:GetObjectTagging on arn:aws:s3:::${request.sourceBucket}/* for the source role (AccountA: deploy ` +
          'source-account/template.yaml with AllowGetObjectTagging=true), or set options.copyTags to false',
        { cause: error, retryable: false },
      );
    }
    throw explainSourceFailure(error, request, 'GetObjectTagging');
  }
  if (tags.length === 0) return undefined;
  return tags
    .map(({ Key = '', Value = '' }) => `${encodeURIComponent(Key)}=${encodeURIComponent(Value)}`)
    .join('&');
}

/**
 * A refusal that says the source is no longer the version listed: changed (412 to a request pinned to the
 * listed ETag) or deleted (404). Undefined for any other answer. Shared by every reader of the source:
 * streamed GETs, part GETs and server-side copies.
 */
export function sourceNotAsListed(
  error: unknown,
  request: Pick<CopyRequest, 'sourceBucket' | 'key'>,
): ObjectCopyError | undefined {
  const where = `s3://${request.sourceBucket}/${request.key}`;
  const { name, status } = awsErrorCode(error);
  if (name === 'PreconditionFailed' || status === 412) {
    // Retrying now would fetch the same stale ETag; the next run lists the new one.
    return new ObjectCopyError(`${where} changed after it was listed; the next run copies the new version`, {
      cause: error,
      retryable: false,
    });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return new SourceVanishedError(`${where} was deleted after it was listed`, {
      cause: error,
      retryable: false,
    });
  }
  return undefined;
}

export function explainSourceFailure(
  error: unknown,
  request: Pick<CopyRequest, 'sourceBucket' | 'key'>,
  verb: string,
): ObjectCopyError {
  const notAsListed = sourceNotAsListed(error, request);
  if (notAsListed) return notAsListed;
  const where = `s3://${request.sourceBucket}/${request.key}`;
  const { name, status } = awsErrorCode(error);
  if (name === 'InvalidObjectState') {
    return new SourceArchivedError(
      `${where} is archived (${storageClassOf(error)}): restore it in AccountA to have it copied`,
      { cause: error, retryable: false },
    );
  }
  if (name === 'AccessDenied' || status === 403) {
    return new ObjectCopyError(
      `${verb} ${where} was denied: the source role needs s3:GetObject on arn:aws:s3:::${request.sourceBucket}/*` +
        ' (and kms:Decrypt if the object is SSE-KMS encrypted)',
      { cause: error, retryable: false },
    );
  }
  return new ObjectCopyError(`${verb} ${where} failed: ${(error as Error).message}`, { cause: error });
}

/** S3's InvalidObjectState names the storage class, and the Intelligent-Tiering access tier, it refused. */
function storageClassOf(error: unknown): string {
  const { StorageClass, AccessTier } = error as { StorageClass?: string; AccessTier?: string };
  return [StorageClass, AccessTier].filter(Boolean).join(' ') || 'storage class not readable';
}
