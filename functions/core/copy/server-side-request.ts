/**
 * What every server-side request names and what its answer proves: the x-amz-copy-source, the listed ETag
 * it is pinned to, and the evidence a copy's own ETag gives.
 */
import type { CopyRequest, CopyResult } from './copy-object.js';
import { isPlainMd5Etag, stripQuotes } from './integrity.js';

/** `copy-etag` when the copy's ETag is the source's (an unencrypted single-part copy, or same parts). */
export function verifiedBy(
  request: CopyRequest,
  destinationEtag: string,
  encryption: string | undefined,
): CopyResult['verifiedBy'] {
  const same = destinationEtag === stripQuotes(request.etag);
  return same && (destinationEtag.includes('-') || isPlainMd5Etag(destinationEtag, encryption))
    ? 'copy-etag'
    : 'copy-pinned';
}

/** x-amz-copy-source: bucket and key, the key URL-encoded segment by segment. */
export function copySource(request: Pick<CopyRequest, 'sourceBucket' | 'key'>): string {
  return `${request.sourceBucket}/${request.key.split('/').map(encodeURIComponent).join('/')}`;
}

/** An ETag as the copy conditions carry it: quoted, whether or not it was listed quoted. */
export function quoted(etag: string): string {
  return `"${stripQuotes(etag)}"`;
}
