/**
 * The multipart write of one copy, new or continued: kept on record while the upload exists, kept for the
 * next run when the deadline cuts it, aborted otherwise, and its stored ETag checked once completed.
 */
import { AbortMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { IntegrityError, ObjectCopyError } from '../errors.js';
import type { MultipartUploadRecord } from '../state/state-store.js';
import type { CopyOptions, CopyRequest, CopyResult, UploadRecords, WrittenHeaders } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import { adoptIdenticalCopy, compositeOf, inspectDestination, occupied } from './occupied-destination.js';
import type { PartPlan } from './part-plan.js';
import { boundaryFinder, type ContinuableUpload, keepForNextRun } from './resume-multipart.js';
import { deadlineError, explainUploadFailure, isPreconditionFailure } from './upload-errors.js';
import { type UploadProgress, uploadParts } from './upload-parts.js';
import type { VerifyStream } from './verify-stream.js';
import type { WriteCondition } from './write-condition.js';

/** A multipart upload, new or continued; kept on record while it exists, aborted unless cut by the deadline. */
export async function putInParts(
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
