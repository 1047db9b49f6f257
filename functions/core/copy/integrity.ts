/** ETag helpers shared by the copy room (copy/) and its tests. */

/** S3 returns ETags in double quotes. */
export function stripQuotes(etag: string): string {
  return etag.replace(/^"|"$/g, '');
}

/** True when an ETag is the MD5 of the body: single-part and not SSE-KMS / SSE-C encrypted. */
export function isPlainMd5Etag(etag: string, serverSideEncryption: string | undefined): boolean {
  return /^[0-9a-f]{32}$/.test(stripQuotes(etag)) && !serverSideEncryption?.startsWith('aws:kms');
}
