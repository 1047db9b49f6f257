/**
 * Orders keys the way S3 lists them and DynamoDB sorts string sort keys: by their UTF-8 bytes.
 *
 * JavaScript's `<` compares UTF-16 code units and disagrees for characters above U+FFFF
 * (`'a😀' < 'a！'` in JavaScript, the reverse in S3), so a merge of the two streams must not use it.
 */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** S3 and DynamoDB both cap a key (and a sort key) at 1,024 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

/** Maps a source key under `sourcePrefix` to its key under `destinationPrefix`. */
export function destinationKeyFor(
  sourceKey: string,
  sourcePrefix: string,
  destinationPrefix: string,
): string {
  return destinationPrefix + sourceKey.slice(sourcePrefix.length);
}
