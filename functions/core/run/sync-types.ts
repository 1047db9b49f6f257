/**
 * The run's public types: what a caller hands a run (dependencies, control) and what it gets back
 * (progress, copied objects, the summary). Exported again from sync-job.ts.
 */
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { TaskQueues } from '../dispatch/task-queue.js';
import type { LazyClient } from '../lazy-client.js';
import type { ManifestLocation } from '../report/run-manifest.js';
import type { StateStore } from '../state/state-store.js';

/** Logging the core needs; Powertools' Logger fits. */
export interface SyncLogger {
  debug(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** The clients and state the sync works with; tests swap any of them. */
export interface SyncDependencies {
  /** AccountB's STS client, used to assume the source role. */
  sts: STSClient;
  /** AccountB's S3 client, writing the destination. */
  destinationS3: S3Client;
  /** Builds AccountB's S3 client in another region, for a job that names its destination's region. */
  destinationS3In?: (region: string) => S3Client;
  state: StateStore;
  /** Builds the S3 client that reads the source with the assumed role's credentials. */
  sourceS3: (credentials: AwsCredentialIdentityProvider, region?: string) => S3Client;
  /** Where "Sync Run Completed" events go; without it no event is published. */
  events?: { client: LazyClient<EventBridgeClient>; busName: string };
  /** The fan-out queues, in a deployment that has them (docs/fan-out.md); without them every run is inline. */
  queues?: TaskQueues;
  metrics?: SyncMetrics;
  logger?: SyncLogger;
}

/** Metrics the core emits; Powertools' Metrics fits. */
export interface SyncMetrics {
  addMetric(name: string, unit: 'Count' | 'Bytes' | 'Milliseconds' | 'Seconds', value: number): void;
  /** Adds a dimension set (beside the default `service`) that every metric of the invocation carries. */
  addDimensions(dimensions: Record<string, string>): void;
  /**
   * A metric of its own, emitted at once with the dimensions given to it: how the event worker reports a
   * job's figures when one invocation serves several jobs (Powertools' singleMetric).
   */
  singleMetric?(): SyncMetrics;
}

/** Running totals, reported while a run goes on. */
export interface SyncProgress {
  listed: number;
  copied: number;
  skipped: number;
  failed: number;
  bytes: number;
  inFlight: number;
}

/** How the caller steers one run. */
export interface RunControl {
  /** Aborted to stop the run early (Ctrl-C): in-flight uploads are aborted, nothing new starts. */
  signal?: AbortSignal;
  /**
   * Time left before the hard deadline (Lambda's getRemainingTimeInMillis). The run stops starting copies,
   * then cuts the ones in flight, early enough to end normally (run-deadline.ts).
   */
  remainingTimeMs?: () => number;
  /** The function's whole timeout, which the deadline margins scale with; Lambda's 900 s when absent. */
  timeoutMs?: number;
  runId?: string;
  leaseTtlMs?: number;
  onProgress?: (progress: SyncProgress) => void;
  /** Tries and backoff per object (defaults in retry.ts). */
  objectRetry?: { attempts?: number; baseBackoffMs?: number };
  /** Called once per object copied, in completion order. */
  onObjectCopied?: (copied: CopiedObject) => void;
  /** The smallest multipart part size (default 8 MiB, at least 5 MiB); tests and benchmarks set it. */
  minPartSize?: number;
  /**
   * For a job that follows S3 events: how long before the pass an object's change may still have its
   * event on the way, not counted in `missedByEvents` (default 15 minutes, events/missed-by-events.ts).
   */
  eventGraceMs?: number;
}

/** One object this run copied. */
export interface CopiedObject {
  key: string;
  destinationKey: string;
  reason: 'new' | 'changed' | 'retry';
  bytes: number;
  etag: string;
  sha256: string;
  lastModified: string;
}

/** What one run did. */
export interface RunSummary extends SyncProgress {
  jobId: string;
  runId: string;
  /** complete: every key was considered; partial: stopped at the deadline and the next run resumes. */
  status: 'complete' | 'partial';
  /** Copies the deadline cut or left unstarted: not failures; the next run copies them. */
  deferred: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  vanished: number;
  archived: number;
  deleted: number;
  listRequests: number;
  readCapacityUnits: number;
  writeCapacityUnits: number;
  resumeAfter?: string;
  /**
   * Seconds since the sync first saw, behind, the longest-waiting object this run left uncopied (failed,
   * or left for the next run; the ledger keeps each key's `firstSeenAt`); 0 when the run caught up. Not
   * counted from LastModified: a backfill of old objects is backlog, not lag. Keys beyond a deadline stop
   * are not counted.
   */
  replicationLagSeconds: number;
  /**
   * Objects this run found needing a copy and left uncopied (failed + deferred), and their bytes. After a
   * partial run the keys beyond its stop are not counted: a lower bound.
   */
  backlogObjects: number;
  backlogBytes: number;
  /**
   * For a job that follows S3 events (`options.events`): objects this pass copied that no event had
   * delivered, changed since the last complete pass and before the grace for events on the way. 0 on a
   * healthy event path; absent for a job without events.
   */
  missedByEvents?: number;
  /** The run's manifest and completion marker, when it copied anything. */
  manifest?: ManifestLocation;
  failures: { key: string; reason: string }[];
  archivedKeys: string[];
  /** Keys deleted at the source between listing and copy (up to 20; all are in the manifest). */
  vanishedKeys: { key: string; reason: string }[];
}
