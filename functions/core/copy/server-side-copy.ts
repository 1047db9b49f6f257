/**
 * Server-side copy (options.copyMethod "server-side"): S3 moves the bytes, none pass through the function.
 *
 * The requests run with the destination's credentials (this function's own role), which then reads the
 * source itself: AccountA's bucket policy must grant that role s3:GetObject (and s3:GetObjectTagging when
 * tags are copied), and its own policy must allow the same. The assumed read-only role is not involved.
 *
 * What the streamed copy guarantees stays: the source is pinned to the listed ETag
 * (x-amz-copy-source-if-match, so a source changed since the listing fails with 412 and nothing is
 * written), and the destination write is conditional by the same rules (copy-object.ts: If-None-Match for
 * a new key, If-Match on this sync's last copy, a foreign object never replaced unless the job mirrors, an
 * identical copy adopted).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { awsErrorCode, ObjectCopyError, SourceArchivedError } from '../errors.js';
import { type CopyOptions, type CopyRequest, type CopyResult, contentHeaders } from './copy-object.js';
import { isPlainMd5Etag, stripQuotes } from './integrity.js';
import { compositeOf, inspectDestination, occupied } from './occupied-destination.js';
import { MAX_PART_SIZE, type PartPlan, planParts } from './part-plan.js';
import { readSourceTags, sourceNotAsListed } from './read-source.js';
import { isPreconditionFailure } from './upload-errors.js';
import { conditionForSecondAttempt, type WriteCondition, writeCondition } from './write-condition.js';

/** S3: one CopyObject copies at most 5 GiB; larger objects are copied in parts (UploadPartCopy). */
export const SINGLE_COPY_LIMIT = MAX_PART_SIZE;
/**
 * Parts of a server-side multipart copy: no byte is buffered here, so parts are large to keep requests
 * few (a 5 TiB object still fits in 10,000 parts, see planParts).
 */
export const COPY_PART_SIZE = 512 * 1024 * 1024;
/** UploadPartCopy requests of one object in flight at once. */
export const PART_COPIES_IN_FLIGHT = 4;

/**
 * Copies one object with CopyObject (up to 5 GiB, or below options.partSize when one is set) or with a
 * multipart upload of UploadPartCopy ranges (up to 5 TiB), each pinned to the listed ETag, the write
 * conditional as the streamed copy's. A multipart upload that fails is aborted; a deadline cut is not
 * continued (the next run copies the object again).
 *
 * @throws ObjectCopyError (retryable or not) naming the object and the reason; an AccessDenied names the
 *   bucket-policy statement AccountA must add.
 */
export async function serverSideCopy(
  clients: { destinationS3: S3Client },
  request: CopyRequest,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const s3 = clients.destinationS3;
  // A multipart upload a streamed copy's deadline cut: server-side copies never continue one.
  if (request.cutUpload) await abortUpload(s3, request, request.cutUpload.uploadId, options);
  const multipart =
    request.size > SINGLE_COPY_LIMIT || (options.partSize !== undefined && request.size >= options.partSize);
  let condition = writeCondition(request);
  // Stryker disable next-line AssignmentOperator: attempt is only compared with 1
  for (let attempt = 1; ; attempt += 1) {
    try {
      return multipart
        ? await copyInParts(s3, request, condition, options)
        : await copyWhole(s3, request, condition, options);
    } catch (error) {
      const retry = attempt === 1 ? conditionForSecondAttempt(error, condition, request) : undefined;
      if (!retry) throw error;
      condition = retry;
    }
  }
}

/** One CopyObject: metadata and content headers copied by S3, tags copied or dropped as the job says. */
async function copyWhole(
  s3: S3Client,
  request: CopyRequest,
  condition: WriteCondition,
  options: CopyOptions,
): Promise<CopyResult> {
  await options.beforeWrite;
  let output: Awaited<ReturnType<typeof sendCopy>>;
  try {
    output = await sendCopy(s3, request, condition, options.signal);
  } catch (error) {
    return adoptOrThrow(await explainCopyFailure(s3, request, error, [request.etag], options.signal));
  }
  const destinationEtag = stripQuotes(output.CopyObjectResult?.ETag ?? '');
  return {
    bytes: request.size,
    destinationEtag,
    destinationVersionId: output.VersionId,
    verifiedBy: verifiedBy(request, destinationEtag, output.ServerSideEncryption),
  };
}

function sendCopy(s3: S3Client, request: CopyRequest, condition: WriteCondition, signal?: AbortSignal) {
  return s3.send(
    new CopyObjectCommand({
      Bucket: request.destinationBucket,
      Key: request.destinationKey,
      CopySource: copySource(request),
      CopySourceIfMatch: quoted(request.etag),
      MetadataDirective: 'COPY',
      // COPY needs s3:GetObjectTagging on the source; REPLACE without tags leaves the copy untagged, as a
      // streamed copy of a job that does not copy tags is.
      TaggingDirective: request.copyTags ? 'COPY' : 'REPLACE',
      ...condition,
    }),
    { abortSignal: signal },
  );
}

/** Create, UploadPartCopy each range (pinned), complete under the write condition; abort on failure. */
async function copyInParts(
  s3: S3Client,
  request: CopyRequest,
  condition: WriteCondition,
  options: CopyOptions,
): Promise<CopyResult> {
  const { signal } = options;
  const plan = planParts(request.size, options.partSize ?? COPY_PART_SIZE);
  const source = await headPinnedSource(s3, request, signal);
  const tagging = request.copyTags ? await readTags(s3, request, signal) : undefined;
  await options.beforeWrite;
  const record = {
    key: request.key,
    destinationKey: request.destinationKey,
    uploadId: '',
    startedAt: new Date().toISOString(),
    sourceEtag: request.etag,
    size: request.size,
    partSize: plan.partSize,
  };
  // On record before the upload exists, so a run that dies here leaves nothing cleanOrphanUploads misses.
  await options.uploads?.save(record);
  let open: string | undefined;
  let partEtags: string[] | undefined;
  try {
    const created = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: request.destinationBucket,
        Key: request.destinationKey,
        ...contentHeaders(source),
        ...(tagging && { Tagging: tagging }),
      }),
      { abortSignal: signal },
    );
    open = created.UploadId;
    if (!open) throw new ObjectCopyError('CreateMultipartUpload returned no UploadId');
    record.uploadId = open;
    await options.uploads?.save(record);
    partEtags = await copyParts(s3, request, open, plan, signal);
    const completed = await complete(s3, request, open, partEtags, condition, signal);
    open = undefined;
    await options.uploads?.forget(request.key);
    const destinationEtag = stripQuotes(completed.ETag ?? '');
    return {
      bytes: request.size,
      destinationEtag,
      destinationVersionId: completed.VersionId,
      verifiedBy: verifiedBy(request, destinationEtag, completed.ServerSideEncryption),
    };
  } catch (error) {
    if (open) await abortUpload(s3, request, open, options);
    else await options.uploads?.forget(request.key).catch(() => {});
    const identical = [request.etag, ...(partEtags ? [compositeOf(partEtags)] : [])];
    return adoptOrThrow(await explainCopyFailure(s3, request, error, identical, signal));
  }
}

/** Every part's range copied, PART_COPIES_IN_FLIGHT at once; the parts' ETags in part order. */
async function copyParts(
  s3: S3Client,
  request: CopyRequest,
  uploadId: string,
  plan: PartPlan,
  signal?: AbortSignal,
): Promise<string[]> {
  const etags: string[] = new Array(plan.partCount);
  let next = 0;
  const worker = async () => {
    while (next < plan.partCount) {
      const index = next;
      next += 1;
      const start = index * plan.partSize;
      const end = Math.min(request.size, start + plan.partSize) - 1;
      const { CopyPartResult } = await s3.send(
        new UploadPartCopyCommand({
          Bucket: request.destinationBucket,
          Key: request.destinationKey,
          UploadId: uploadId,
          PartNumber: index + 1,
          CopySource: copySource(request),
          CopySourceIfMatch: quoted(request.etag),
          CopySourceRange: `bytes=${start}-${end}`,
        }),
        { abortSignal: signal },
      );
      if (!CopyPartResult?.ETag)
        throw new ObjectCopyError(`UploadPartCopy of part ${index + 1} returned no ETag`);
      etags[index] = CopyPartResult.ETag;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PART_COPIES_IN_FLIGHT, plan.partCount) }, worker));
  return etags;
}

function complete(
  s3: S3Client,
  request: CopyRequest,
  uploadId: string,
  partEtags: string[],
  condition: WriteCondition,
  signal?: AbortSignal,
) {
  return s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: request.destinationBucket,
      Key: request.destinationKey,
      UploadId: uploadId,
      MultipartUpload: { Parts: partEtags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
      ...condition,
    }),
    { abortSignal: signal },
  );
}

/** The source's content headers and metadata (UploadPartCopy carries none), from the pinned version. */
async function headPinnedSource(s3: S3Client, request: CopyRequest, signal?: AbortSignal) {
  try {
    return await s3.send(
      new HeadObjectCommand({
        Bucket: request.sourceBucket,
        Key: request.key,
        IfMatch: quoted(request.etag),
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    throw sourceNotAsListed(error, request) ?? copyFailure(error, request);
  }
}

/** The source's tags with this function's role, denied with the fix server-side copy needs. */
async function readTags(s3: S3Client, request: CopyRequest, signal?: AbortSignal) {
  try {
    return await readSourceTags(s3, request, signal);
  } catch (error) {
    const { status } = awsErrorCode((error as Error).cause);
    if (status !== 403) throw error;
    throw new ObjectCopyError(
      `reading the tags of s3://${request.sourceBucket}/${request.key} was denied: ${grantFix(request)}`,
      { cause: error, retryable: false },
    );
  }
}

/** A refused copy: the destination already held an identical copy (adopted), or the error to throw. */
type Refusal = { adopted: CopyResult } | { error: unknown };

function adoptOrThrow(refusal: Refusal): CopyResult {
  if ('adopted' in refusal) return refusal.adopted;
  throw refusal.error;
}

/**
 * What a refused copy means. A 412 or 404 is the source's (changed or deleted since the listing: one
 * HeadObject pinned to the ETag tells) or the destination's condition: then, as for a streamed copy, an
 * identical object already there (same size, an ETag in `identicalEtags`) is adopted, and anything else is
 * an occupied key (or, for a 404 on If-Match, the error itself, so the caller writes where nothing is).
 */
async function explainCopyFailure(
  s3: S3Client,
  request: CopyRequest,
  error: unknown,
  identicalEtags: (string | undefined)[],
  signal?: AbortSignal,
): Promise<Refusal> {
  if (error instanceof ObjectCopyError) return { error };
  const { name, status } = awsErrorCode(error);
  const refusedCondition = isPreconditionFailure(error) || name === 'NoSuchKey' || status === 404;
  if (!refusedCondition) return { error: copyFailure(error, request) };
  const sourceNow = await s3
    .send(
      new HeadObjectCommand({
        Bucket: request.sourceBucket,
        Key: request.key,
        IfMatch: quoted(request.etag),
      }),
      { abortSignal: signal },
    )
    .then(() => undefined)
    .catch((headError: unknown) => sourceNotAsListed(headError, request) ?? copyFailure(headError, request));
  if (sourceNow) return { error: sourceNow };
  if (!isPreconditionFailure(error)) return { error };
  const found = await inspectDestination(s3, request);
  const etag = found && stripQuotes(found.etag);
  const identical = identicalEtags.flatMap((candidate) => (candidate ? [stripQuotes(candidate)] : []));
  if (found && etag && found.size === request.size && !found.kms && identical.includes(etag)) {
    const adopted: CopyResult = {
      bytes: request.size,
      destinationEtag: etag,
      destinationVersionId: found.versionId,
      verifiedBy: etag === stripQuotes(request.etag) ? 'copy-etag' : 'copy-pinned',
      adopted: true,
    };
    return { adopted };
  }
  const where = `s3://${request.destinationBucket}/${request.destinationKey}`;
  return { error: occupied(where, error, found) };
}

function copyFailure(error: unknown, request: CopyRequest): ObjectCopyError {
  const from = `s3://${request.sourceBucket}/${request.key}`;
  const into = `s3://${request.destinationBucket}/${request.destinationKey}`;
  const { name, status } = awsErrorCode(error);
  if (name === 'AbortError') {
    return new ObjectCopyError(`copy into ${into} aborted at the deadline; the next run copies it`, {
      cause: error,
      retryable: false,
    });
  }
  if (name === 'InvalidObjectState') {
    return new SourceArchivedError(`${from} is archived: restore it in AccountA to have it copied`, {
      cause: error,
      retryable: false,
    });
  }
  if (name === 'AccessDenied' || status === 403) {
    return new ObjectCopyError(`server-side copy of ${from} into ${into} was denied: ${grantFix(request)}`, {
      cause: error,
      retryable: false,
    });
  }
  return new ObjectCopyError(`server-side copy of ${from} into ${into} failed: ${(error as Error).message}`, {
    cause: error,
  });
}

/** What a refused server-side copy needs, on both sides; the same words as the preflight's. */
export function grantFix(request: Pick<CopyRequest, 'sourceBucket' | 'copyTags'>): string {
  const actions = request.copyTags ? 's3:GetObject and s3:GetObjectTagging' : 's3:GetObject';
  return (
    `server-side copy reads the source with this function's own role, so AccountA's bucket policy must ` +
    `grant that role ${actions} on arn:aws:s3:::${request.sourceBucket}/* (AccountA: deploy ` +
    'source-account/template.yaml with ServerSideCopyPrincipalArn=<the sync role ARN>), and the role ' +
    'needs them in its own policy too (template.yaml with CopyMethod=server-side grants them), with ' +
    's3:PutObject on the destination; or set options.copyMethod to "stream"'
  );
}

/** `copy-etag` when the copy's ETag is the source's (an unencrypted single-part copy, or same parts). */
function verifiedBy(
  request: CopyRequest,
  destinationEtag: string,
  encryption: string | undefined,
): CopyResult['verifiedBy'] {
  const same = destinationEtag === stripQuotes(request.etag);
  return same && (destinationEtag.includes('-') || isPlainMd5Etag(destinationEtag, encryption))
    ? 'copy-etag'
    : 'copy-pinned';
}

async function abortUpload(s3: S3Client, request: CopyRequest, uploadId: string, options: CopyOptions) {
  try {
    await s3.send(
      new AbortMultipartUploadCommand({
        Bucket: request.destinationBucket,
        Key: request.destinationKey,
        UploadId: uploadId,
      }),
    );
  } catch {
    // Left to the destination's lifecycle rule (and cleanOrphanUploads, which still has it on record).
    return;
  }
  await options.uploads?.forget(request.key).catch(() => {});
}

/** x-amz-copy-source: bucket and key, the key URL-encoded segment by segment. */
export function copySource(request: Pick<CopyRequest, 'sourceBucket' | 'key'>): string {
  return `${request.sourceBucket}/${request.key.split('/').map(encodeURIComponent).join('/')}`;
}

/** An ETag as the copy conditions carry it: quoted, whether or not it was listed quoted. */
export function quoted(etag: string): string {
  return `"${stripQuotes(etag)}"`;
}
