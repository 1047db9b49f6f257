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
import { CopyObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { CopyOptions, CopyRequest, CopyResult } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import { MAX_PART_SIZE } from './part-plan.js';
import { abortUpload, copyInParts } from './server-side-parts.js';
import { adoptOrThrow, explainCopyFailure } from './server-side-refusal.js';
import { copySource, quoted, verifiedBy } from './server-side-request.js';
import { conditionForSecondAttempt, type WriteCondition, writeCondition } from './write-condition.js';

/** S3: one CopyObject copies at most 5 GiB; larger objects are copied in parts (UploadPartCopy). */
export const SINGLE_COPY_LIMIT = MAX_PART_SIZE;

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
