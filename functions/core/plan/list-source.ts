import { ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
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
  /** A restored copy of an archived object can be read now (S3's RestoreStatus, IsRestoreInProgress false). */
  restored?: boolean;
}

/** Counts the listing's requests, for the run summary and the cost figures in the README. */
export interface ListCounter {
  listRequests: number;
}

/**
 * Lists `bucket/prefix` within `range`, in S3's order (UTF-8 bytes), one page (up to 1,000 keys) per
 * request. Memory holds at most two pages: the one being read and the one fetched ahead.
 */
export async function* listSource(
  s3: S3Client,
  bucket: string,
  prefix: string,
  range: KeyRange = {},
  counter: ListCounter = { listRequests: 0 },
  signal?: AbortSignal,
): AsyncGenerator<SourceObject> {
  const fetchPage = (continuationToken?: string): Promise<ListObjectsV2CommandOutput> => {
    counter.listRequests += 1;
    return s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix || undefined,
        // StartAfter applies to the first request only; the continuation token carries the position after
        // it. A position before the prefix is harmless: S3 lists the prefix from its start.
        StartAfter: continuationToken ? undefined : range.after,
        ContinuationToken: continuationToken,
        // Whether an archived object has a restored copy, in the listing rather than a HEAD per object.
        OptionalObjectAttributes: ['RestoreStatus'],
      }),
      { abortSignal: signal },
    );
  };
  // One page is fetched ahead while the current one is consumed, so the merge rarely waits on S3.
  let next: ReturnType<typeof fetchPage> | undefined = fetchPage();
  try {
    while (next) {
      const page: ListObjectsV2CommandOutput = await next;
      next =
        page.IsTruncated && page.NextContinuationToken ? fetchPage(page.NextContinuationToken) : undefined;
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        if (range.through !== undefined && compareKeys(object.Key, range.through) > 0) return;
        yield {
          key: object.Key,
          etag: object.ETag ?? '',
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
          storageClass: object.StorageClass ?? 'STANDARD',
          ...(object.RestoreStatus?.IsRestoreInProgress === false && { restored: true }),
        };
      }
    }
  } finally {
    // A consumer that stops early leaves the prefetched page unread; its failure must not go unhandled.
    next?.catch(() => {});
  }
}
