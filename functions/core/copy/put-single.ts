/** The single PutObject: a whole verified body in one conditional write, its stored ETag checked. */
import {
  type GetObjectCommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  type PutObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { IntegrityError } from '../errors.js';
import type { CopyRequest, CopyResult, WrittenHeaders } from './copy-object.js';
import { isPlainMd5Etag, stripQuotes } from './integrity.js';
import { adoptIdenticalCopy, inspectDestination, occupied } from './occupied-destination.js';
import { deadlineError, explainUploadFailure, isPreconditionFailure } from './upload-errors.js';
import type { SourceCheck, VerifyStream } from './verify-stream.js';
import { readWhole, untilAborted } from './whole-body.js';
import type { WriteCondition } from './write-condition.js';

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
export async function putSingle(
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
