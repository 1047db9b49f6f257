/**
 * The run room: one sync run of a job, from lease to summary.
 *
 * - sync-job.ts (this file): the run's steps, in order;
 * - sync-types.ts: the types callers see;
 * - run-deadline.ts: when to stop starting copies, and when to cut those in flight;
 * - semaphore.ts: the counting semaphore behind the concurrency slots.
 */
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { openSourceAccess } from '../access/preflight.js';
import type { SourceCredentials } from '../access/source-credentials.js';
import { cleanOrphanUploads } from '../copy/clean-orphan-uploads.js';
import { type CopyResult, copyObject, type UploadRecords } from '../copy/copy-object.js';
import { retryObjectCopy } from '../copy/retry.js';
import { describeError, LeaseLostError, ObjectCopyError, SourceVanishedError } from '../errors.js';
import { type Job, parseJob } from '../job.js';
import { destinationKeyFor, MAX_KEY_BYTES } from '../plan/keys.js';
import { type KeyRange, type ListCounter, listSource, type SourceObject } from '../plan/list-source.js';
import { type PlanStep, planSteps } from '../plan/plan.js';
import { announceRun } from '../report/announce-run.js';
import { RunManifest } from '../report/run-manifest.js';
import { releaseLeaseWithRetry } from '../state/release-lease.js';
import type {
  Checkpoint,
  Lease,
  LedgerEntry,
  MultipartUploadRecord,
  UnrecordedWrite,
} from '../state/state-store.js';
import { deadlineMargins, deadlineSignal } from './run-deadline.js';
import { Semaphore } from './semaphore.js';

import type { RunControl, RunSummary, SyncDependencies, SyncLogger, SyncProgress } from './sync-types.js';

export type {
  CopiedObject,
  RunControl,
  RunSummary,
  SyncDependencies,
  SyncLogger,
  SyncMetrics,
  SyncProgress,
} from './sync-types.js';

const MiB = 1024 * 1024;

/** Objects up to this size hold at most this much memory each while copied, up to `concurrency` at once. */
export const SMALL_OBJECT_BYTES = 1 * MiB;
/**
 * Larger objects (one PutObject up to PART_SIZE, multipart beyond) also take one of these slots, so part
 * buffers stay below concurrency × SMALL_OBJECT_BYTES + LARGE_OBJECT_CONCURRENCY × QUEUE_SIZE × PART_SIZE
 * (see copy-object.ts): 16 + 128 MiB at the default concurrency; 4 large objects keep 16 parts in flight.
 */
export const LARGE_OBJECT_CONCURRENCY = 4;
/** A crashed run's lease frees the job this long after its last heartbeat. */
export const LEASE_TTL_MS = 120_000;
/** Copies are dispatched in batches of up to this many keys, each announced by one upload-intent item. */
const INTENT_BATCH_KEYS = 100;
/** ...or of this many key bytes, well inside DynamoDB's 400 KB item limit. */
const INTENT_BATCH_BYTES = 64 * 1024;
/** A batch waiting for more copies is sent anyway after this many plan steps (long unchanged stretches). */
const INTENT_BATCH_MAX_WAIT_STEPS = 1000;
/** Save the resume position at least this often, so a killed run loses little listing work. */
const CHECKPOINT_INTERVAL_MS = 10_000;
/** The summary lists this many failed and archived keys; the ledger holds them all. */
const MAX_LISTED_KEYS = 20;

/**
 * The SHA-256 reported for a copy continued across runs: no one run read all its bytes, which were checked
 * against the source's multipart ETag instead.
 */
const NOT_HASHED = '';

/**
 * Runs one sync of `job`: assume the source role, check both buckets, take the job's lease, merge the
 * source listing with the ledger, copy what is new or changed, record each copy, and save where to
 * resume. Nothing is written before the checks pass.
 *
 * @throws JobValidationError, AssumeRoleError, BucketAccessError, JobAlreadyRunningError, LeaseLostError
 */
export async function syncJob(
  deps: SyncDependencies,
  job: Job,
  control: RunControl = {},
): Promise<RunSummary> {
  const runId = control.runId ?? newRunId();
  const log = deps.logger ?? silentLogger;
  const started = Date.now();

  const { sourceS3, credentials } = await openSourceAccess(deps, job, runId);

  const leaseTtlMs = control.leaseTtlMs ?? LEASE_TTL_MS;
  const lease = await deps.state.acquireLease(job.jobId, runId, leaseTtlMs);
  log.info('run started', { jobId: job.jobId, runId, fence: lease.fence });
  const margins = deadlineMargins(control.timeoutMs);
  const deadline = deadlineSignal(margins.abortMs, control.remainingTimeMs, control.signal);
  const run = new Run(
    deps,
    job,
    { ...control, runId, leaseTtlMs, dispatchMarginMs: margins.dispatchMs, signal: deadline.signal },
    lease,
    { s3: sourceS3, credentials },
    log,
  );
  try {
    const summary = await run.execute(started);
    summary.manifest = await run.manifest.publish(deps.destinationS3, summary.finishedAt, {
      status: summary.status,
      copied: summary.copied,
      failed: summary.failed,
      deferred: summary.deferred,
    });
    await deps.state.putRunRecord(job.jobId, summary);
    await announceRun(deps, job, summary, log);
    log.info('run finished', { ...summary, failures: summary.failures.length, archivedKeys: undefined });
    return summary;
  } catch (error) {
    await run.manifest.discard();
    throw error;
  } finally {
    deadline.dispose();
    run.stopHeartbeat();
    await releaseLeaseWithRetry(deps.state, job.jobId, run.lease, log, {
      remainingTimeMs: control.remainingTimeMs,
    });
  }
}

/** One run's mutable state, kept together so the steps read as a list. */
class Run {
  readonly progress: SyncProgress = { listed: 0, copied: 0, skipped: 0, failed: 0, bytes: 0, inFlight: 0 };
  readonly counts = { vanished: 0, archived: 0, deleted: 0, deferred: 0 };
  readonly failures: { key: string; reason: string }[] = [];
  readonly vanishedKeys: { key: string; reason: string }[] = [];
  readonly archivedKeys: string[] = [];
  readonly list: ListCounter = { listRequests: 0 };
  readonly #slots: Semaphore;
  readonly #largeSlots = new Semaphore(LARGE_OBJECT_CONCURRENCY);
  readonly #inFlight = new Set<Promise<void>>();
  /** Keys in dispatch order with whether they are settled; the settled prefix is the resume position. */
  readonly #order: { key: string; settled: boolean }[] = [];
  #resumeAfter: string | undefined;
  #lastCompletePass: Checkpoint['lastCompletePass'];
  #lastCheckpointAt = Date.now();
  #heartbeat: NodeJS.Timeout | undefined;
  #fatal: Error | undefined;
  /** LastModified of the oldest object that needed copying and was not copied. */
  #oldestPending: Date | undefined;
  #deletesStarted = 0;
  /** Copies planned but not yet dispatched, waiting to be announced in one upload intent. */
  #batch: { step: Extract<PlanStep, { action: 'copy' }>; slot: { key: string; settled: boolean } }[] = [];
  #batchBytes = 0;
  #stepsSinceBatchStart = 0;
  #batchCount = 0;
  /** Keys that runs which died may have uploaded without recording, from their upload intents. */
  #interrupted = new Map<string, UnrecordedWrite>();
  #interruptedIntentIds: string[] = [];
  /** Interrupted keys this pass has not met in the listing or the ledger (see #resolveUnseen). */
  #unresolved = new Set<string>();
  /** Set when the deadline stopped dispatch part-way through a batch. */
  #stopped = false;
  /** Multipart uploads earlier runs' deadlines cut, by source key, until this run's copy takes them. */
  #cutUploads = new Map<string, MultipartUploadRecord>();
  readonly #uploadRecords: UploadRecords;
  lease: Lease;
  readonly manifest: RunManifest;

  constructor(
    readonly deps: SyncDependencies,
    readonly job: Job,
    readonly control: RunControl & {
      runId: string;
      leaseTtlMs: number;
      dispatchMarginMs: number;
      /** The run's own: aborts at the caller's signal or when the deadline's abort margin is reached. */
      signal: AbortSignal;
    },
    lease: Lease,
    readonly source: { s3: S3Client; credentials: SourceCredentials },
    readonly log: SyncLogger,
  ) {
    this.lease = lease;
    this.manifest = new RunManifest(
      { jobId: job.jobId, runId: control.runId, startedAt: new Date().toISOString() },
      { bucket: job.destination.bucket, prefix: job.options.manifestPrefix },
    );
    this.#slots = new Semaphore(job.options.concurrency);
    this.#uploadRecords = {
      save: (record) => deps.state.putMultipartUpload(job.jobId, { ...record, runId: control.runId }),
      forget: (key) => deps.state.deleteMultipartUpload(job.jobId, key),
    };
    this.#heartbeat = setInterval(() => void this.#renewLease(), Math.max(1000, control.leaseTtlMs / 3));
    this.#heartbeat.unref();
  }

  async execute(started: number): Promise<RunSummary> {
    // The store outlives the run (one per Lambda container), so its counters are read as a difference.
    const capacityBefore = { ...this.deps.state.capacity };
    const checkpoint = await this.deps.state.readCheckpoint(this.job.jobId);
    this.#resumeAfter = checkpoint.resumeAfter;
    this.#lastCompletePass = checkpoint.lastCompletePass;
    // The lease is ours, so every intent still on record belongs to a run that died mid-batch.
    for (const intent of await this.deps.state.readUploadIntents(this.job.jobId)) {
      this.#interruptedIntentIds.push(intent.id);
      for (const object of intent.objects)
        this.#interrupted.set(object.key, { sizes: [object.size], since: intent.since });
    }
    this.#unresolved = new Set(this.#interrupted.keys());
    // Multipart uploads of runs that died are aborted now; those a deadline cut wait for their key's copy.
    const orphans = await cleanOrphanUploads(this.deps.destinationS3, this.deps.state, this.job, {
      keepContinuable: true,
    });
    this.#cutUploads = orphans.continuable;
    if (orphans.aborted > 0) {
      this.log.info('aborted multipart uploads left by earlier runs', { aborted: orphans.aborted });
    }
    // A pass that stopped part-way resumes after the last settled key, then wraps round to the start.
    const ranges: KeyRange[] =
      checkpoint.resumeAfter === undefined
        ? [{}]
        : [{ after: checkpoint.resumeAfter }, { through: checkpoint.resumeAfter }];
    if (checkpoint.resumeAfter !== undefined) {
      this.log.info('resuming pass', { jobId: this.job.jobId, resumeAfter: checkpoint.resumeAfter });
    }

    let complete = true;
    for (const range of ranges) {
      if (!(await this.#runRange(range))) {
        complete = false;
        break;
      }
    }
    await Promise.all(this.#inFlight);
    if (this.#fatal) throw this.#fatal;
    if (complete && !this.control.signal.aborted) {
      await this.#resolveUnseen();
      // A cut upload no copy of this full pass took (its key was deleted or no longer needs copying).
      await cleanOrphanUploads(this.deps.destinationS3, this.deps.state, this.job, {
        keepContinuable: false,
        records: [...this.#cutUploads.values()],
      });
    }
    // Every upload this run announced is now settled in the ledger; after a full pass, so is every
    // upload of the runs that died (copied, or recorded as failed with their intent).
    const settled = (await this.deps.state.readUploadIntents(this.job.jobId, this.control.runId)).map(
      (i) => i.id,
    );
    await this.deps.state.deleteUploadIntents(this.job.jobId, [
      ...settled,
      ...(complete && !this.control.signal.aborted ? this.#interruptedIntentIds : []),
    ]);
    // Copies cut off by the deadline are deferred to the next run; the pass did not finish.
    if (this.control.signal.aborted) complete = false;

    const finishedAt = new Date().toISOString();
    const next: Checkpoint = complete
      ? { lastCompletePass: { runId: this.control.runId, finishedAt } }
      : { resumeAfter: this.#resumeAfter, lastCompletePass: this.#lastCompletePass };
    await this.deps.state.writeCheckpoint(this.job.jobId, next, this.lease.fence);

    const capacity = {
      readCapacityUnits: this.deps.state.capacity.readCapacityUnits - capacityBefore.readCapacityUnits,
      writeCapacityUnits: this.deps.state.capacity.writeCapacityUnits - capacityBefore.writeCapacityUnits,
    };
    return {
      jobId: this.job.jobId,
      runId: this.control.runId,
      status: complete ? 'complete' : 'partial',
      startedAt: new Date(started).toISOString(),
      finishedAt,
      durationMs: Date.now() - started,
      ...this.progress,
      inFlight: 0,
      ...this.counts,
      listRequests: this.list.listRequests,
      readCapacityUnits: capacity.readCapacityUnits,
      writeCapacityUnits: capacity.writeCapacityUnits,
      resumeAfter: next.resumeAfter,
      replicationLagSeconds: this.#oldestPending
        ? Math.max(0, Math.round((Date.now() - this.#oldestPending.getTime()) / 1000))
        : 0,
      failures: this.failures,
      archivedKeys: this.archivedKeys,
      vanishedKeys: this.vanishedKeys,
    };
  }

  stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
  }

  /** Plans and dispatches one key range. Returns false when it stopped before the range's end. */
  async #runRange(range: KeyRange): Promise<boolean> {
    const { jobId, source } = this.job;
    const listing = listSource(
      this.source.s3,
      source.bucket,
      source.prefix,
      range,
      this.list,
      this.control.signal,
    );
    const ledger = this.deps.state.ledger(jobId, range);
    try {
      return await this.#planRange(planSteps(listing, ledger));
    } catch (error) {
      // The deadline cut a listing request: the range stops here, as it would between keys.
      if (this.control.signal.aborted) return false;
      throw error;
    }
  }

  async #planRange(steps: AsyncGenerator<PlanStep>): Promise<boolean> {
    const { jobId } = this.job;
    for await (const step of steps) {
      if (this.#fatal) return false;
      if (step.action !== 'deleted') this.progress.listed += 1;
      if (this.#shouldStop()) {
        if (step.action === 'copy') this.#defer(step.object.lastModified);
        for (const { step: waiting } of this.#batch) this.#defer(waiting.object.lastModified);
        this.#batch = [];
        this.log.info('deadline near: no new copies this run', { jobId, resumeAfter: this.#resumeAfter });
        return false;
      }
      await this.#dispatch(step);
      this.#stepsSinceBatchStart += 1;
      if (this.#batch.length > 0 && this.#stepsSinceBatchStart >= INTENT_BATCH_MAX_WAIT_STEPS) {
        await this.#dispatchBatch();
      }
      if (this.#stopped) return false;
    }
    await this.#dispatchBatch();
    return !this.#stopped;
  }

  /** Announces the waiting copies in one upload intent, then starts them. */
  async #dispatchBatch(): Promise<void> {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    this.#batchBytes = 0;
    const since = new Date().toISOString();
    this.#batchCount += 1;
    await this.deps.state.putUploadIntent(this.job.jobId, this.control.runId, this.#batchCount, {
      since,
      objects: batch.map(({ step }) => ({ key: step.object.key, size: step.object.size })),
    });
    for (const [index, { step, slot }] of batch.entries()) {
      if (this.#fatal) return;
      if (this.#shouldStop()) {
        // Left unsettled, so the resume position stays before them; the next run announces them again.
        for (const { step: waiting } of batch.slice(index)) this.#defer(waiting.object.lastModified);
        this.#stopped = true;
        return;
      }
      await this.#startTask(slot, step.object.size > SMALL_OBJECT_BYTES, (release) =>
        this.#copy(step, release, since),
      );
    }
  }

  #shouldStop(): boolean {
    if (this.control.signal.aborted) return true;
    const remaining = this.control.remainingTimeMs?.();
    return remaining !== undefined && remaining < this.control.dispatchMarginMs;
  }

  async #dispatch(step: PlanStep): Promise<void> {
    const key = step.action === 'deleted' ? step.entry.key : step.object.key;
    this.#unresolved.delete(key);
    const slot = { key, settled: false };
    this.#order.push(slot);
    switch (step.action) {
      case 'unchanged':
        this.progress.skipped += 1;
        break;
      case 'archived':
        this.counts.archived += 1;
        if (this.archivedKeys.length < MAX_LISTED_KEYS) this.archivedKeys.push(key);
        this.log.warn('object archived in Glacier; restore it to copy it', {
          key,
          storageClass: step.object.storageClass,
        });
        break;
      case 'deleted':
        await this.#startTask(slot, false, () => this.#propagateDelete(step.entry));
        return;
      case 'copy':
        if (this.#batch.length === 0) this.#stepsSinceBatchStart = 0;
        this.#batch.push({ step, slot });
        this.#batchBytes += Buffer.byteLength(key);
        if (this.#batch.length >= INTENT_BATCH_KEYS || this.#batchBytes >= INTENT_BATCH_BYTES) {
          await this.#dispatchBatch();
        }
        return;
    }
    await this.#settle(slot);
  }

  /**
   * Runs `task` in a concurrency slot. The task may hand its slot back early through `release` (a copy
   * does, once its bytes are written, so the ledger write that follows does not hold up the next copy).
   */
  async #startTask(
    slot: { key: string; settled: boolean },
    large: boolean,
    task: (release: () => void) => Promise<unknown>,
  ) {
    await this.#slots.acquire();
    if (large) await this.#largeSlots.acquire();
    this.progress.inFlight += 1;
    this.control.onProgress?.(this.progress);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.progress.inFlight -= 1;
      if (large) this.#largeSlots.release();
      this.#slots.release();
    };
    let deferred = false;
    const running = task(release)
      .then((outcome) => {
        deferred = outcome === DEFERRED;
      })
      .catch((error: unknown) => {
        this.#fatal ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(async () => {
        release();
        this.#inFlight.delete(running);
        // A deferred key stays unsettled, so the resume position stays before it.
        if (deferred) return;
        await this.#settle(slot).catch((error: unknown) => {
          this.#fatal ??= error as Error;
        });
      });
    this.#inFlight.add(running);
  }

  /** Copies one object and records it; `intentSince` is when its batch's upload intent was written. */
  async #copy(
    step: Extract<PlanStep, { action: 'copy' }>,
    release: () => void,
    intentSince: string,
  ): Promise<typeof DEFERRED | undefined> {
    const { object, previous } = step;
    const { jobId, source, destination, options } = this.job;
    const destinationKey = destinationKeyFor(object.key, source.prefix, destination.prefix);
    const interruptedWrite = mergeUnrecorded(previous?.pending, this.#interrupted.get(object.key));
    // What may be at the destination unrecorded if this attempt fails: an earlier run's write, this
    // attempt's (announced in its batch's intent), or either. Kept with the failure for the next run.
    const pending = options.mirror
      ? interruptedWrite
      : mergeUnrecorded(interruptedWrite, { sizes: [object.size], since: intentSince });
    // Set once the destination holds the object: a failure after that is not "not copied".
    let stored = false;
    try {
      if (Buffer.byteLength(destinationKey) > MAX_KEY_BYTES) {
        throw new ObjectCopyError(
          `destination key for "${object.key}" would exceed S3's ${MAX_KEY_BYTES}-byte limit: ` +
            'shorten job.destination.prefix',
          { retryable: false },
        );
      }
      const cutUpload = this.#takeCutUpload(object.key);
      const result = await retryObjectCopy(
        () =>
          copyObject(
            { sourceS3: this.source.s3, destinationS3: this.deps.destinationS3 },
            {
              sourceBucket: source.bucket,
              key: object.key,
              etag: object.etag,
              size: object.size,
              destinationBucket: destination.bucket,
              destinationKey,
              previousDestinationEtag: previous?.destinationEtag,
              overwrite: options.mirror,
              interruptedWrite,
              cutUpload,
            },
            { signal: this.control.signal, uploads: this.#uploadRecords, partSize: this.control.minPartSize },
          ),
        { ...this.control.objectRetry, signal: this.control.signal, credentials: this.source.credentials },
      );
      stored = true;
      release();
      await this.deps.state.putLedgerEntry(
        jobId,
        copiedLedgerEntry(object, destinationKey, result, this.control.runId),
        this.lease.fence,
      );
      this.progress.copied += 1;
      this.progress.bytes += result.bytes;
      this.control.onObjectCopied?.({
        key: object.key,
        destinationKey,
        reason: step.reason,
        bytes: result.bytes,
        etag: object.etag,
        sha256: result.sha256 ?? NOT_HASHED,
        lastModified: object.lastModified.toISOString(),
      });
      await this.manifest.add({
        destinationKey,
        sourceKey: object.key,
        size: result.bytes,
        etag: object.etag,
        sha256: result.sha256 ?? NOT_HASHED,
        sourceLastModified: object.lastModified.toISOString(),
      });
      this.log.debug('object copied', { key: object.key, bytes: result.bytes, reason: step.reason });
    } catch (error) {
      if (error instanceof LeaseLostError) throw error;
      if (stored) {
        // Its batch's upload intent stays in the table (the run stops before deleting it), so the next
        // run adopts this object rather than copying it again.
        this.log.error('object stored at the destination but not recorded; the next run adopts it', {
          key: object.key,
          error: describeError(error),
        });
        throw error;
      }
      if (error instanceof SourceVanishedError) {
        this.counts.vanished += 1;
        const reason = error.message;
        if (this.vanishedKeys.length < MAX_LISTED_KEYS) this.vanishedKeys.push({ key: object.key, reason });
        await this.manifest.addVanished({
          sourceKey: object.key,
          etag: object.etag,
          sourceLastModified: object.lastModified.toISOString(),
          reason,
        });
        this.log.info('object deleted before it could be copied', { key: object.key });
        return;
      }
      if (this.control.signal.aborted) {
        // Cut by the deadline (or a stop request): not a failure, the next run copies it. What the
        // attempt may have stored before the cut stays on record, as for a failure.
        this.#defer(object.lastModified);
        await this.deps.state.putLedgerEntry(
          jobId,
          { ...previous, key: object.key, pending },
          this.lease.fence,
        );
        this.log.info('copy cut at the deadline; the next run copies it', { key: object.key });
        return DEFERRED;
      }
      this.#notCopied(object.lastModified);
      // The attempt may have stored the object before failing, so its intent stays in the ledger.
      await this.#recordFailure(object.key, object.etag, { ...previous, key: object.key, pending }, error);
    }
  }

  /** The cut upload of `key`, for its one copy this run (whose tries each check that it still exists). */
  #takeCutUpload(key: string): MultipartUploadRecord | undefined {
    const record = this.#cutUploads.get(key);
    this.#cutUploads.delete(key);
    return record;
  }

  /** A copy this run planned and leaves to the next one (deadline or stop request). */
  #defer(lastModified: Date): void {
    this.counts.deferred += 1;
    this.#notCopied(lastModified);
  }

  #notCopied(lastModified: Date): void {
    if (!this.#oldestPending || lastModified < this.#oldestPending) this.#oldestPending = lastModified;
  }

  async #recordFailure(key: string, etag: string, previous: LedgerEntry | undefined, error: unknown) {
    const reason = describeError(error);
    const attempts = previous?.failure?.etag === etag ? previous.failure.attempts + 1 : 1;
    this.progress.failed += 1;
    if (this.failures.length < MAX_LISTED_KEYS) this.failures.push({ key, reason });
    this.log.warn('object not copied', { key, reason, attempts });
    // Keep what the earlier copy recorded, so the next run still sees the key as changed and the
    // overwrite stays conditional on this sync's own last copy.
    await this.deps.state.putLedgerEntry(
      this.job.jobId,
      { ...previous, key, failure: { reason, attempts, at: new Date().toISOString(), etag } },
      this.lease.fence,
    );
  }

  /**
   * Keys a run that died was uploading, now in neither the source nor the ledger (deleted at the source
   * before they were recorded). A mirror job removes what that run may have left at the destination; any
   * other job keeps it, on record, so the key can be reclaimed if it comes back.
   */
  async #resolveUnseen(): Promise<void> {
    const { jobId, options } = this.job;
    for (const key of this.#unresolved) {
      const write = this.#interrupted.get(key);
      if (options.mirror) {
        await this.#deleteCopy(key);
      } else if (write) {
        await this.deps.state.putLedgerEntry(jobId, { key, pending: write }, this.lease.fence);
      }
    }
  }

  async #propagateDelete(entry: LedgerEntry): Promise<void> {
    const { jobId, options } = this.job;
    if (!options.mirror) {
      // Gone at the source, but a run that died may have written it: keep that on record for the day
      // the key comes back, since this run will delete the intent that said so.
      const interrupted = this.#interrupted.get(entry.key);
      if (interrupted) {
        const pending = mergeUnrecorded(entry.pending, interrupted);
        await this.deps.state.putLedgerEntry(jobId, { ...entry, pending }, this.lease.fence);
      }
      return;
    }
    // Counted when started, not when done: deletions run concurrently and the cap is a safety limit.
    if (this.#deletesStarted >= options.maxDeletesPerRun) {
      this.log.warn('delete limit reached; the rest waits for the next run', {
        key: entry.key,
        maxDeletesPerRun: options.maxDeletesPerRun,
      });
      return;
    }
    this.#deletesStarted += 1;
    // A key with no recorded copy may still hold what a run that died wrote there.
    await this.#deleteCopy(entry.key, entry.destinationKey);
    await this.deps.state.deleteLedgerEntry(jobId, entry.key, this.lease.fence);
  }

  /** Deletes the destination copy of a source key (mirror jobs only). */
  async #deleteCopy(key: string, destinationKey?: string): Promise<void> {
    const { source, destination } = this.job;
    await this.deps.destinationS3.send(
      new DeleteObjectCommand({
        Bucket: destination.bucket,
        Key: destinationKey ?? destinationKeyFor(key, source.prefix, destination.prefix),
      }),
    );
    this.counts.deleted += 1;
    this.log.debug('object deleted', { key });
  }

  async #settle(slot: { key: string; settled: boolean }): Promise<void> {
    slot.settled = true;
    let advanced = 0;
    while (this.#order[advanced]?.settled) advanced += 1;
    if (advanced > 0) {
      this.#resumeAfter = this.#order[advanced - 1]?.key;
      this.#order.splice(0, advanced);
    }
    this.control.onProgress?.(this.progress);
    if (Date.now() - this.#lastCheckpointAt > CHECKPOINT_INTERVAL_MS && this.#resumeAfter !== undefined) {
      this.#lastCheckpointAt = Date.now();
      await this.deps.state.writeCheckpoint(
        this.job.jobId,
        { resumeAfter: this.#resumeAfter, lastCompletePass: this.#lastCompletePass },
        this.lease.fence,
      );
    }
  }

  async #renewLease(): Promise<void> {
    try {
      this.lease = await this.deps.state.renewLease(this.job.jobId, this.lease, this.control.leaseTtlMs);
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.#fatal ??= error;
        this.log.error('lease lost; stopping', { jobId: this.job.jobId });
      } else {
        this.log.warn('lease renewal failed; retrying', { error: describeError(error) });
      }
    }
  }
}

/** Either unrecorded write may be at the destination: any of their sizes, after the earlier time. */
function mergeUnrecorded(a?: UnrecordedWrite, b?: UnrecordedWrite): UnrecordedWrite | undefined {
  if (!a || !b) return a ?? b;
  const [earlier] = [a.since, b.since].sort();
  return { sizes: [...new Set([...a.sizes, ...b.sizes])], since: earlier ?? a.since };
}

/** Sortable and short: it goes into the STS session name and run record keys. */
/**
 * What the ledger records for an object once its copy is verified: the source version (ETag, size,
 * LastModified, which the next run's plan compares) and what was written. Exported so that the benchmark
 * can build workload 4's starting state with exactly the records a copy leaves.
 */
export function copiedLedgerEntry(
  object: SourceObject,
  destinationKey: string,
  result: Pick<CopyResult, 'sha256' | 'destinationEtag' | 'verifiedBy'>,
  runId: string,
  copiedAt = new Date(),
): LedgerEntry {
  return {
    key: object.key,
    etag: object.etag,
    size: object.size,
    lastModified: object.lastModified.toISOString(),
    sha256: result.sha256,
    destinationKey,
    destinationEtag: result.destinationEtag,
    verifiedBy: result.verifiedBy,
    copiedAt: copiedAt.toISOString(),
    runId,
  };
}

export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** What a copy cut by the deadline returns: its key is left unsettled for the next run. */
const DEFERRED = Symbol('deferred');

const silentLogger: SyncLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Validates a scheduled event as a job, then runs it. */
export function syncFromEvent(
  deps: SyncDependencies,
  event: unknown,
  control: RunControl = {},
): Promise<RunSummary> {
  return syncJob(deps, parseJob(event), control);
}
