/** What every step of one run reads: the job, its clients, its settings, and the units it shares. */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SourceCredentials } from '../access/source-credentials.js';
import type { Job } from '../job.js';
import type { RunManifest } from '../report/run-manifest.js';
import type { RunTally } from '../report/run-tally.js';
import type { InterruptedWrites } from '../state/interrupted-writes.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { RunControl, SyncDependencies, SyncLogger } from './sync-types.js';

/** The caller's control with the run's own defaults filled in. */
export interface RunSettings extends RunControl {
  runId: string;
  leaseTtlMs: number;
  dispatchMarginMs: number;
  /** The run's own: aborts at the caller's signal or when the deadline's abort margin is reached. */
  signal: AbortSignal;
  /**
   * A fan-out task's delivery (its worker's name): two deliveries of one task copy the same keys at once,
   * so each keeps its own multipart upload records. Absent for an inline run, which holds the lease.
   */
  delivery?: string;
}

/**
 * One run's shared context, built once by the run and handed to its steps. A fan-out worker builds one
 * for its task: its fence is the pass's, and its manifest lines go to the task's part of the manifest.
 */
export interface RunContext {
  deps: SyncDependencies;
  job: Job;
  control: RunSettings;
  source: { s3: S3Client; credentials: SourceCredentials };
  log: SyncLogger;
  /** The fence every ledger write carries: the lease keeper's, or a fan-out pass's. */
  lease: Pick<LeaseKeeper, 'fence'>;
  tally: RunTally;
  manifest: Pick<RunManifest, 'add' | 'addVanished'>;
  interrupted: InterruptedWrites;
}
