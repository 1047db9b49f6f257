/**
 * Why S3 refused a server-side copy, and what follows: an identical copy already there is adopted, and
 * anything else becomes the error to throw, a denial naming the grants server-side copy needs.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorCode, ObjectCopyError, SourceArchivedError } from '../errors.js';
import type { CopyRequest, CopyResult } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import { inspectDestination, occupied } from './occupied-destination.js';
import { sourceNotAsListed } from './read-source.js';
import { quoted } from './server-side-request.js';
import { isPreconditionFailure } from './upload-errors.js';

/** A refused copy: the destination already held an identical copy (adopted), or the error to throw. */
type Refusal = { adopted: CopyResult } | { error: unknown };

export function adoptOrThrow(refusal: Refusal): CopyResult {
  if ('adopted' in refusal) return refusal.adopted;
  throw refusal.error;
}

/**
 * What a refused copy means. A 412 or 404 is the source's (changed or deleted since the listing: one
 * HeadObject pinned to the ETag tells) or the destination's condition: then, as for a streamed copy, an
 * identical object already there (same size, an ETag in `identicalEtags`) is adopted, and anything else is
 * an occupied key (or, for a 404 on If-Match, the error itself, so the caller writes where nothing is).
 */
export async function explainCopyFailure(
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

export function copyFailure(error: unknown, request: CopyRequest): ObjectCopyError {
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
