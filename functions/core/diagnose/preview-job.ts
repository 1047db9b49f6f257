import type { S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { openSource } from '../access/preflight.js';
import type { Job } from '../job.js';
import { destinationKeyFor } from '../plan/keys.js';
import { type ListCounter, listSource } from '../plan/list-source.js';
import { planSteps } from '../plan/plan.js';
import type { StateStore } from '../state/state-store.js';

/** The preview lists at most this many objects by default; the totals count them all. */
export const DEFAULT_PREVIEW_LIMIT = 1000;

/** What a dry run needs: the sync's own clients, used for reads only. */
export interface PreviewDependencies {
  sts: STSClient;
  destinationS3: S3Client;
  state: StateStore;
  sourceS3: (credentials: AwsCredentialIdentityProvider, region?: string) => S3Client;
}

/** One key a run would act on. Unchanged keys are only counted. */
export interface PreviewItem {
  key: string;
  /** copy: new, changed (ETag or size differs) or retry (last attempt failed); archived: needs a restore;
   * deletedAtSource: in the ledger, gone from the source (a mirror job deletes its copy). */
  action: 'copy' | 'archived' | 'deletedAtSource';
  reason?: 'new' | 'changed' | 'retry';
  destinationKey?: string;
  size?: number;
  etag?: string;
  /** The ETag last copied, for changed keys. */
  previousEtag?: string;
  storageClass?: string;
}

/** What a run of the job would do now. */
export interface JobPreview {
  jobId: string;
  totals: {
    listed: number;
    copy: number;
    new: number;
    changed: number;
    retry: number;
    unchanged: number;
    archived: number;
    deletedAtSource: number;
    /** Bytes the copies would move. */
    bytes: number;
  };
  /** Whether deletions at the source would be propagated (job.options.mirror). */
  mirror: boolean;
  items: PreviewItem[];
  /** More items than `limit`: `items` holds the first ones in key order. */
  truncated: boolean;
  listRequests: number;
}

/**
 * Dry run of `job`: the same credentials, checks, listing and plan as a run, over the whole key space,
 * but no lease, no copy and no state written.
 *
 * @throws AssumeRoleError, BucketAccessError (as syncJob)
 */
export async function previewJob(
  deps: PreviewDependencies,
  job: Job,
  options: { limit?: number; runId?: string } = {},
): Promise<JobPreview> {
  const limit = options.limit ?? DEFAULT_PREVIEW_LIMIT;
  const sourceS3 = await openSource(deps, job, options.runId ?? 'plan');

  const counter: ListCounter = { listRequests: 0 };
  const totals: JobPreview['totals'] = {
    listed: 0,
    copy: 0,
    new: 0,
    changed: 0,
    retry: 0,
    unchanged: 0,
    archived: 0,
    deletedAtSource: 0,
    bytes: 0,
  };
  const items: PreviewItem[] = [];
  let truncated = false;
  const keep = (item: PreviewItem) => {
    if (items.length < limit) items.push(item);
    else truncated = true;
  };

  const { source, destination } = job;
  const listing = listSource(sourceS3, source.bucket, source.prefix, {}, counter);
  for await (const step of planSteps(listing, deps.state.ledger(job.jobId))) {
    if (step.action !== 'deleted') totals.listed += 1;
    switch (step.action) {
      case 'unchanged':
        totals.unchanged += 1;
        break;
      case 'archived':
        totals.archived += 1;
        keep({
          key: step.object.key,
          action: 'archived',
          size: step.object.size,
          storageClass: step.object.storageClass,
        });
        break;
      case 'deleted':
        totals.deletedAtSource += 1;
        keep({ key: step.entry.key, action: 'deletedAtSource', destinationKey: step.entry.destinationKey });
        break;
      case 'copy':
        totals.copy += 1;
        totals[step.reason] += 1;
        totals.bytes += step.object.size;
        keep({
          key: step.object.key,
          action: 'copy',
          reason: step.reason,
          destinationKey: destinationKeyFor(step.object.key, source.prefix, destination.prefix),
          size: step.object.size,
          etag: step.object.etag,
          previousEtag: step.previous?.etag,
        });
        break;
    }
  }
  return {
    jobId: job.jobId,
    totals,
    mirror: job.options.mirror,
    items,
    truncated,
    listRequests: counter.listRequests,
  };
}
