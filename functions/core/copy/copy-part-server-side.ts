/**
 * One part of a giant object copied by S3 itself (a part task of a job with options.copyMethod
 * "server-side", docs/fan-out.md): UploadPartCopy of the part's range into the version's one multipart
 * upload, so no byte passes through the worker and a part may be as large as S3 allows (5 GiB).
 *
 * As in server-side-copy.ts, the request runs with the destination's credentials (the worker's own role),
 * which reads the source itself: AccountA's bucket policy must grant that role s3:GetObject. The source is
 * pinned to the listed ETag (x-amz-copy-source-if-match), so a source changed since the listing fails the
 * part with 412, exactly as a streamed part's pinned GET does, and the part task aborts the upload. The
 * part is recorded with the ETag S3 gives it and the range's length; the completer checks both against
 * ListParts before it completes (fanout/part-task.ts).
 */
import { type S3Client, UploadPartCopyCommand } from '@aws-sdk/client-s3';
import { awsErrorCode, ObjectCopyError, SourceArchivedError } from '../errors.js';
import { type CopiedPart, type PartCopyRequest, UploadGoneError } from './copy-part.js';
import { sourceNotAsListed } from './read-source.js';
import { grantFix } from './server-side-refusal.js';
import { copySource, quoted } from './server-side-request.js';

/**
 * Copies part `partNumber` of `request.key` with UploadPartCopy.
 *
 * @throws ObjectCopyError: changed after it was listed (412) or deleted (SourceVanishedError), archived,
 *   denied (naming the bucket-policy statement AccountA must add), all not retryable; UploadGoneError when
 *   the upload was completed or aborted by another delivery; any other failure retryable
 */
export async function copyPartServerSide(
  clients: { destinationS3: S3Client },
  request: PartCopyRequest,
  signal?: AbortSignal,
): Promise<CopiedPart> {
  const { start, end } = request.range;
  let etag: string | undefined;
  try {
    const { CopyPartResult } = await clients.destinationS3.send(
      new UploadPartCopyCommand({
        Bucket: request.destinationBucket,
        Key: request.destinationKey,
        UploadId: request.uploadId,
        PartNumber: request.partNumber,
        CopySource: copySource(request),
        CopySourceIfMatch: quoted(request.etag),
        CopySourceRange: `bytes=${start}-${end}`,
      }),
      { abortSignal: signal },
    );
    etag = CopyPartResult?.ETag;
  } catch (error) {
    throw explainPartCopyFailure(error, request);
  }
  if (!etag) {
    throw new ObjectCopyError(`${describePart(request)}: UploadPartCopy returned no ETag`);
  }
  // S3 copied exactly the range: its length is what ListParts must show for this part at completion.
  return { partNumber: request.partNumber, etag, size: end - start + 1 };
}

/** What a refused UploadPartCopy means, told apart by S3's error code (a 404 is the upload's or the key's). */
function explainPartCopyFailure(error: unknown, request: PartCopyRequest): ObjectCopyError {
  const where = describePart(request);
  const { name, status } = awsErrorCode(error);
  if (name === 'NoSuchUpload') {
    return new UploadGoneError(`${where}: the multipart upload is gone (completed or aborted)`, {
      cause: error,
      retryable: false,
    });
  }
  const notAsListed = sourceNotAsListed(error, request);
  if (notAsListed) return notAsListed;
  if (name === 'InvalidObjectState') {
    return new SourceArchivedError(
      `s3://${request.sourceBucket}/${request.key} is archived: restore it in AccountA to have it copied`,
      { cause: error, retryable: false },
    );
  }
  if (name === 'AccessDenied' || status === 403) {
    return new ObjectCopyError(`${where} was denied: ${grantFix(request)}`, {
      cause: error,
      retryable: false,
    });
  }
  return new ObjectCopyError(`${where} failed: ${(error as Error).message ?? String(error)}`, {
    cause: error,
  });
}

function describePart(request: PartCopyRequest): string {
  const { start, end } = request.range;
  return (
    `UploadPartCopy of s3://${request.sourceBucket}/${request.key} bytes ${start}-${end} into ` +
    `s3://${request.destinationBucket}/${request.destinationKey} part ${request.partNumber}`
  );
}
