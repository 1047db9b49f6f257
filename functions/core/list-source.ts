import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { compareKeys } from './keys.js';

/** A slice of the key space: keys strictly after `after` and up to and including `through`. */
export interface KeyRange {
  after?: string;
  through?: string;
}

/** One object as the source listing shows it. */
export interface SourceObject {
  key: string;
  etag: string;
  size: number;
  lastModified: Date;
  storageClass: string;
}

/** Counts the listing's requests, for the run summary and the cost figures in the README. */
export interface ListCounter {
  listRequests: number;
}

/**
 * Lists `bucket/prefix` within `range`, in S3's order (UTF-8 bytes), one page (up to 1,000 keys) per
 * request. Pages are fetched as they are consumed, so memory holds one page.
 */
export async function* listSource(
  s3: S3Client,
  bucket: string,
  prefix: string,
  range: KeyRange = {},
  counter: ListCounter = { listRequests: 0 },
  signal?: AbortSignal,
): AsyncGenerator<SourceObject> {
  let continuationToken: string | undefined;
  // StartAfter applies to the first request only; the continuation token carries the position after it.
  const startAfter =
    range.after !== undefined && compareKeys(range.after, prefix) > 0 ? range.after : undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix || undefined,
        StartAfter: continuationToken ? undefined : startAfter,
        ContinuationToken: continuationToken,
      }),
      { abortSignal: signal },
    );
    counter.listRequests += 1;
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      if (range.through !== undefined && compareKeys(object.Key, range.through) > 0) return;
      yield {
        key: object.Key,
        etag: object.ETag ?? '',
        size: object.Size ?? 0,
        lastModified: object.LastModified ?? new Date(0),
        storageClass: object.StorageClass ?? 'STANDARD',
      };
    }
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken);
}
