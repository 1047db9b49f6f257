/**
 * One part of a giant object (a fan-out part task, docs/fan-out.md): a ranged GET pinned to the listed
 * ETag, checked, then UploadPart into the version's one multipart upload.
 *
 * The part is held in memory (at most the part size: 64 MiB by default, more only for objects so large
 * that 10,000 parts need it), so it is checked whole before any byte is sent: the GET's Content-Range must
 * name this range of an object of the listed size, the body must be exactly the range's length, and the
 * part goes with its Content-MD5, so S3 refuses bytes changed on the way. The object as a whole is checked
 * at completion, against the source's ETag when the parts follow the source's own (fanout/part-task.ts).
 */
import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  type S3Client,
  UploadPartCommand,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import type { PartRange } from '../dispatch/part-tasks.js';
import { awsErrorCode, IntegrityError, ObjectCopyError } from '../errors.js';
import { isPlainMd5Etag, stripQuotes } from './integrity.js';
import { explainSourceFailure } from './read-source.js';

/** Where one part comes from and goes to. */
export interface PartCopyRequest {
  sourceBucket: string;
  key: string;
  /** The listed ETag: the GET is pinned to it. */
  etag: string;
  size: number;
  destinationBucket: string;
  destinationKey: string;
  uploadId: string;
  partNumber: number;
  range: PartRange;
}

/** A part as uploaded, for the upload's record (state/part-uploads.ts). */
export interface CopiedPart {
  partNumber: number;
  /** As S3 returned it for the part. */
  etag: string;
  size: number;
  /** MD5 (base64) of the bytes sent; absent for a part S3 copied itself (copy-part-server-side.ts). */
  md5?: string;
}

/** The multipart upload is gone: completed by another worker, or aborted. The part is not needed. */
export class UploadGoneError extends ObjectCopyError {}

/**
 * Copies part `partNumber` of `request.key`.
 *
 * @throws ObjectCopyError (from read-source.ts's explanations: changed after it was listed (412, not
 *   retryable), deleted, archived, denied), IntegrityError for a body that is not the range, UploadGoneError
 */
export async function copyPart(
  clients: { sourceS3: S3Client; destinationS3: S3Client },
  request: PartCopyRequest,
  signal?: AbortSignal,
): Promise<CopiedPart> {
  const bytes = await readRange(clients.sourceS3, request, signal);
  const md5 = createHash('md5').update(bytes).digest();
  const where = `s3://${request.destinationBucket}/${request.destinationKey} part ${request.partNumber}`;
  let result: UploadPartCommandOutput;
  try {
    result = await clients.destinationS3.send(
      new UploadPartCommand({
        Bucket: request.destinationBucket,
        Key: request.destinationKey,
        UploadId: request.uploadId,
        PartNumber: request.partNumber,
        Body: bytes,
        ContentLength: bytes.length,
        ContentMD5: md5.toString('base64'),
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    throw explainPartFailure(error, where);
  }
  const etag = result.ETag ?? '';
  if (isPlainMd5Etag(etag, result.ServerSideEncryption) && stripQuotes(etag) !== md5.toString('hex')) {
    throw new IntegrityError(
      `${where}: stored ETag ${etag} does not match the bytes sent (${md5.toString('hex')})`,
    );
  }
  return { partNumber: request.partNumber, etag, size: bytes.length, md5: md5.toString('base64') };
}

/** The range's bytes, pinned to the listed ETag, checked to be exactly that range of that object. */
async function readRange(s3: S3Client, request: PartCopyRequest, signal?: AbortSignal): Promise<Buffer> {
  const { start, end } = request.range;
  const where = `s3://${request.sourceBucket}/${request.key} bytes ${start}-${end}`;
  const length = end - start + 1;
  let source: GetObjectCommandOutput;
  try {
    source = await s3.send(
      new GetObjectCommand({
        Bucket: request.sourceBucket,
        Key: request.key,
        IfMatch: request.etag,
        Range: `bytes=${start}-${end}`,
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    throw explainSourceFailure(error, request, 'GET');
  }
  const expectedRange = `bytes ${start}-${end}/${request.size}`;
  if (source.ContentRange !== undefined && source.ContentRange !== expectedRange) {
    (source.Body as { destroy?: () => void } | undefined)?.destroy?.();
    throw new IntegrityError(`${where}: the source answered ${source.ContentRange}, not ${expectedRange}`);
  }
  const chunks: Buffer[] = [];
  let received = 0;
  try {
    for await (const chunk of (source.Body ?? []) as AsyncIterable<Uint8Array>) {
      received += chunk.length;
      if (received > length)
        throw new IntegrityError(`${where}: the read carried more than the ${length} bytes asked for`);
      chunks.push(Buffer.from(chunk));
    }
  } catch (error) {
    if (error instanceof IntegrityError) throw error;
    throw explainSourceFailure(error, request, 'GET');
  }
  if (received !== length) {
    throw new IntegrityError(
      `${where}: the read ended after ${received} of ${length} bytes; nothing was uploaded`,
    );
  }
  return Buffer.concat(chunks, length);
}

function explainPartFailure(error: unknown, where: string): Error {
  const { name, status } = awsErrorCode(error);
  if (name === 'NoSuchUpload') {
    return new UploadGoneError(`${where}: the multipart upload is gone (completed or aborted)`, {
      cause: error,
      retryable: false,
    });
  }
  if (name === 'BadDigest' || name === 'InvalidDigest') {
    return new IntegrityError(`${where}: S3 refused the bytes as not matching their digest`, {
      cause: error,
    });
  }
  if (name === 'AccessDenied' || status === 403) {
    return new ObjectCopyError(
      `UploadPart ${where} was denied: this identity needs s3:PutObject on the destination`,
      {
        cause: error,
        retryable: false,
      },
    );
  }
  return new ObjectCopyError(`UploadPart ${where} failed: ${(error as Error).message ?? String(error)}`, {
    cause: error,
  });
}
