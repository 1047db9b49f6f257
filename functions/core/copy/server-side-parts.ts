/**
 * A server-side copy in parts: one multipart upload of UploadPartCopy ranges, each pinned to the listed
 * ETag, completed under the write condition, kept on record while open and aborted when it fails.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { awsErrorCode, ObjectCopyError } from '../errors.js';
import { type CopyOptions, type CopyRequest, type CopyResult, contentHeaders } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import { compositeOf } from './occupied-destination.js';
import { type PartPlan, planParts } from './part-plan.js';
import { readSourceTags, sourceNotAsListed } from './read-source.js';
import { adoptOrThrow, copyFailure, explainCopyFailure, grantFix } from './server-side-refusal.js';
import { copySource, quoted, verifiedBy } from './server-side-request.js';
import type { WriteCondition } from './write-condition.js';

/**
 * Parts of a server-side multipart copy: no byte is buffered here, so parts are large to keep requests
 * few (a 5 TiB object still fits in 10,000 parts, see planParts).
 */
export const COPY_PART_SIZE = 512 * 1024 * 1024;
/** UploadPartCopy requests of one object in flight at once. */
export const PART_COPIES_IN_FLIGHT = 4;

/** Create, UploadPartCopy each range (pinned), complete under the write condition; abort on failure. */
export async function copyInParts(
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
export async function abortUpload(
  s3: S3Client,
  request: CopyRequest,
  uploadId: string,
  options: CopyOptions,
) {
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
