import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { describeError } from '../errors.js';

/** One LIST page as the first-pass search reads it: keys, common prefixes, and whether more follow. */
export interface SourcePage {
  keys: string[];
  prefixes: string[];
  truncated: boolean;
  nextToken?: string;
}

/** What a page is asked for: after a point, under a prefix, grouped by `/`, or continued. */
export interface PageRequest {
  prefix: string;
  startAfter?: string;
  delimiter?: boolean;
  continuationToken?: string;
}

/**
 * LIST pages of one source bucket within a fixed number of requests. A request past the budget, or one S3
 * refuses, gives no page instead of an error: the search that asks only decides how even the shards are,
 * so it stops with the cuts it has rather than failing the pass.
 */
export class SourcePages {
  /** Requests made so far. */
  requests = 0;
  /** The first failure met, for the log. */
  failure?: string;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    readonly pageSize: number,
    readonly maxRequests: number,
    private readonly signal?: AbortSignal,
  ) {}

  /** Requests still allowed. */
  get left(): number {
    return this.maxRequests - this.requests;
  }

  /** One page, or undefined when the budget is spent or S3 failed. */
  async page(request: PageRequest): Promise<SourcePage | undefined> {
    if (this.left <= 0 || this.failure !== undefined) return undefined;
    this.requests += 1;
    try {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: request.prefix || undefined,
          StartAfter: request.continuationToken ? undefined : request.startAfter,
          ContinuationToken: request.continuationToken,
          Delimiter: request.delimiter ? '/' : undefined,
          MaxKeys: this.pageSize,
        }),
        { abortSignal: this.signal },
      );
      return {
        keys: (page.Contents ?? []).flatMap((object) => (object.Key === undefined ? [] : [object.Key])),
        prefixes: (page.CommonPrefixes ?? []).flatMap((common) =>
          common.Prefix === undefined ? [] : [common.Prefix],
        ),
        truncated: page.IsTruncated === true,
        ...(page.NextContinuationToken && { nextToken: page.NextContinuationToken }),
      };
    } catch (error) {
      if (this.signal?.aborted) throw error;
      this.failure = describeError(error);
      return undefined;
    }
  }
}
