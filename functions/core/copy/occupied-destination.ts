/**
 * What is at the destination key when a conditional write is refused: byte for byte this source version
 * (adopted as the copy, nothing written twice), or an object this sync may not replace (left alone, and
 * the copy fails with DestinationOccupiedError).
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ObjectCopyError } from '../errors.js';
import type { CopyRequest, CopyResult } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import { compositeEtag, type VerifyStream } from './verify-stream.js';

/** The multipart ETag of parts with these ETags, when each is a plain MD5 (not SSE-KMS). */
export function compositeOf(partEtags: string[]): string | undefined {
  const digests = partEtags.map(stripQuotes);
  if (!digests.every((etag) => /^[0-9a-f]{32}$/.test(etag))) return undefined;
  return compositeEtag(digests.map((etag) => Buffer.from(etag, 'hex')));
}

/** What is at the destination key now, or undefined if it cannot be read. */
export async function inspectDestination(
  s3: S3Client,
  request: Pick<CopyRequest, 'destinationBucket' | 'destinationKey'>,
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
 * ETag is compared with the whole-body MD5 (one PutObject) or with the ETag of the parts just uploaded.
 */
export function adoptIdenticalCopy(
  request: CopyRequest,
  verified: VerifyStream,
  found: DestinationObject,
  wholeMd5: (string | undefined)[] | undefined,
  partEtags?: string[],
): CopyResult | undefined {
  if (found.size !== request.size || found.kms) return undefined;
  const etag = stripQuotes(found.etag);
  const matches = wholeMd5?.[0] ? etag === wholeMd5[0] : partEtags ? etag === compositeOf(partEtags) : false;
  if (!matches) return undefined;
  return {
    bytes: request.size,
    sha256: verified.digests().sha256,
    destinationEtag: etag,
    destinationVersionId: found.versionId,
    verifiedBy: 'etag-md5',
    adopted: true,
  };
}

export interface DestinationObject {
  etag: string;
  size: number;
  lastModified: Date;
  versionId?: string;
  kms: boolean;
}

/** The destination key is taken by an object this write may not replace (as far as this attempt knows). */
export class DestinationOccupiedError extends ObjectCopyError {
  readonly found: DestinationObject | undefined;
  constructor(message: string, options: ErrorOptions & { found: DestinationObject | undefined }) {
    super(message, { ...options, retryable: false });
    this.found = options.found;
  }
}

/** The error for a key held by an object this sync may not replace, saying how to free it. */
export function occupied(
  where: string,
  error: unknown,
  found: DestinationObject | undefined,
): DestinationOccupiedError {
  return new DestinationOccupiedError(
    `${where} holds an object this sync did not write, so it was left untouched. ` +
      'Delete or move it, or set options.mirror to let the sync overwrite it',
    { cause: error, found },
  );
}
