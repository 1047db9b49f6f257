/**
 * One run's pass over the job's keys, as a list of steps: read where the last run stopped and what runs
 * that died left, plan each key range (listing ⋈ ledger), dispatch its steps to the task pool in
 * announced batches until the range ends or the deadline nears, then settle what the pass leaves behind
 * and sum it up.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SourceCredentials } from '../access/source-credentials.js';
import { type EventWindow, eventWindow, missedByEvents } from '../events/missed-by-events.js';
import type { Job } from '../job.js';
import { type KeyRange, listSource } from '../plan/list-source.js';
import { type PlanStep, planSteps } from '../plan/plan.js';
import { RunManifest } from '../report/run-manifest.js';
import { RunTally } from '../report/run-tally.js';
import { InterruptedWrites } from '../state/interrupted-writes.js';
import { type ResumeSlot, ResumeTracker } from '../state/resume-tracker.js';
import type { Lease } from '../state/state-store.js';
import { CopyRecorder, DEFERRED } from './copy-and-record.js';
import { type BatchedCopy, IntentBatcher } from './intent-batcher.js';
import { LeaseKeeper } from './lease-keeper.js';
import { DeletePropagator } from './propagate-deletes.js';
import type { RunContext, RunSettings } from './run-context.js';
import type { RunSummary, SyncDependencies, SyncLogger } from './sync-types.js';
import { SMALL_OBJECT_BYTES, TaskPool } from './task-pool.js';

/** One run of a job, from its lease being taken to its summary. */
export class RunPass {
  readonly manifest: RunManifest;
  readonly lease: LeaseKeeper;
  readonly #run: RunContext;
  readonly #tally: RunTally;
  /** Copies planned and never started (the deadline came first), remembered in the ledger at the end. */
  readonly #unstarted: Extract<PlanStep, { action: 'copy' }>[] = [];
  readonly #pool: TaskPool;
  readonly #resume: ResumeTracker;
  readonly #interrupted = new InterruptedWrites();
  readonly #batches: IntentBatcher;
  readonly #copies: CopyRecorder;
  readonly #deletes: DeletePropagator;
  /** Set when the deadline stopped dispatch part-way through a batch. */
  #stopped = false;
  /** For a job that follows events: the LastModified window whose changes events should have delivered. */
  #eventWindow: EventWindow | undefined;

  /** Starts the lease's heartbeat: call `stop()` once the run is over. */
  constructor(
    deps: SyncDependencies,
    job: Job,
    control: RunSettings,
    lease: Lease,
    source: { s3: S3Client; credentials: SourceCredentials },
    log: SyncLogger,
  ) {
    const { jobId } = job;
    const startedAt = new Date().toISOString();
    this.#tally = new RunTally(startedAt);
    this.manifest = new RunManifest(
      { jobId, runId: control.runId, startedAt },
      { bucket: job.destination.bucket, prefix: job.options.manifestPrefix },
    );
    this.#pool = new TaskPool(job.options.concurrency, {
      started: () => {
        this.#tally.countInFlight(1);
        control.onProgress?.(this.#tally.progress);
      },
      released: () => this.#tally.countInFlight(-1),
    });
    this.#resume = new ResumeTracker(deps.state, jobId, () => this.lease.fence);
    this.#batches = new IntentBatcher(deps.state, jobId, control.runId);
    this.lease = new LeaseKeeper(
      deps.state,
      jobId,
      lease,
      control.leaseTtlMs,
      (e) => this.#pool.fail(e),
      log,
    );
    this.#run = {
      deps,
      job,
      control,
      source,
      log,
      lease: this.lease,
      tally: this.#tally,
      manifest: this.manifest,
      interrupted: this.#interrupted,
    };
    this.#copies = new CopyRecorder(this.#run);
    this.#deletes = new DeletePropagator(this.#run);
  }

  /** Runs the pass and sums it up; `started` is when the run began (epoch ms). */
  async execute(started: number): Promise<RunSummary> {
    const { deps, job, control, log } = this.#run;
    const { state } = deps;
    // The store outlives the run (one per Lambda container), so its counters are read as a difference.
    const capacityBefore = { ...state.capacity };
    // Three independent reads of what earlier runs left, side by side rather than one after the other
    // (each is a round trip before the listing can start):
    // - where the last run stopped;
    // - the upload intents: the lease is ours, so every one still on record belongs to a run that died
    //   mid-batch;
    // - multipart uploads: those of runs that died are aborted now, those a deadline cut wait for their
    //   key's copy.
    // All three settle before a failure of one stops the run, so none goes on after the lease is released.
    const reading = this.#resume.readCheckpoint();
    const reads = await Promise.allSettled([
      reading,
      this.#interrupted.read(state, job.jobId),
      this.#copies.adoptCutUploads(),
    ]);
    for (const outcome of reads) if (outcome.status === 'rejected') throw outcome.reason;
    const checkpoint = await reading;
    if (job.options.events) {
      this.#eventWindow = eventWindow(
        checkpoint.lastCompletePass?.finishedAt,
        new Date(this.#tally.runStartedAt),
        control.eventGraceMs,
      );
    }
    // A pass that stopped part-way resumes after the last settled key, then wraps round to the start.
    if (checkpoint.resumeAfter !== undefined) {
      log.info('resuming pass', { jobId: job.jobId, resumeAfter: checkpoint.resumeAfter });
    }

    let complete = true;
    for (const range of this.#resume.ranges()) {
      if (!(await this.#runRange(range))) {
        complete = false;
        break;
      }
    }
    await this.#pool.drain();
    if (this.#pool.fatal) throw this.#pool.fatal;
    await this.#copies.rememberUnstarted(this.#unstarted);
    if (complete && !control.signal.aborted) {
      await this.#deletes.resolveUnseen();
      await this.#copies.abortUntakenCutUploads();
    }
    // Every upload this run announced is now settled in the ledger; after a full pass, so is every
    // upload of the runs that died (copied, or recorded as failed with their intent).
    const settled = (await state.readUploadIntents(job.jobId, control.runId)).map((i) => i.id);
    await state.deleteUploadIntents(job.jobId, [
      ...settled,
      ...(complete && !control.signal.aborted ? this.#interrupted.intentIds : []),
    ]);
    // Copies cut off by the deadline are deferred to the next run; the pass did not finish.
    if (control.signal.aborted) complete = false;

    const finishedAt = new Date().toISOString();
    const next = await this.#resume.saveFinal(complete, control.runId, finishedAt);

    const tally = this.#tally;
    if (tally.missedByEvents > 0) {
      log.warn('the pass copied changes no event delivered; check the event path (doctor)', {
        jobId: job.jobId,
        missedByEvents: tally.missedByEvents,
        keys: tally.missedKeys,
      });
    }
    return {
      jobId: job.jobId,
      runId: control.runId,
      status: complete ? 'complete' : 'partial',
      startedAt: new Date(started).toISOString(),
      finishedAt,
      durationMs: Date.now() - started,
      ...tally.progress,
      inFlight: 0,
      ...tally.counts,
      listRequests: tally.list.listRequests,
      readCapacityUnits: state.capacity.readCapacityUnits - capacityBefore.readCapacityUnits,
      writeCapacityUnits: state.capacity.writeCapacityUnits - capacityBefore.writeCapacityUnits,
      resumeAfter: next.resumeAfter,
      replicationLagSeconds: tally.replicationLagSeconds(),
      backlogObjects: tally.backlog.objects,
      backlogBytes: tally.backlog.bytes,
      ...(job.options.events && { missedByEvents: tally.missedByEvents }),
      failures: tally.failures,
      archivedKeys: tally.archivedKeys,
      vanishedKeys: tally.vanishedKeys,
    };
  }

  /** Plans and dispatches one key range. Returns false when it stopped before the range's end. */
  async #runRange(range: KeyRange): Promise<boolean> {
    const { deps, job, control, source } = this.#run;
    const { bucket, prefix } = job.source;
    const listing = listSource(source.s3, bucket, prefix, range, this.#tally.list, control.signal);
    const ledger = deps.state.ledger(job.jobId, range);
    try {
      return await this.#planRange(planSteps(listing, ledger));
    } catch (error) {
      // The deadline cut a listing request: the range stops here, as it would between keys.
      if (control.signal.aborted) return false;
      throw error;
    }
  }

  async #planRange(steps: AsyncGenerator<PlanStep>): Promise<boolean> {
    for await (const step of steps) {
      if (this.#pool.fatal) return false;
      if (step.action !== 'deleted') this.#tally.countListed();
      if (this.#shouldStop()) {
        if (step.action === 'copy') this.#defer(step);
        this.#deferAll(this.#batches.drop());
        this.#run.log.info('deadline near: no new copies this run', {
          jobId: this.#run.job.jobId,
          resumeAfter: this.#resume.resumeAfter,
        });
        return false;
      }
      await this.#dispatch(step);
      if (this.#batches.countStep()) await this.#dispatchBatch();
      if (this.#stopped) return false;
    }
    await this.#dispatchBatch();
    return !this.#stopped;
  }

  /** Announces the waiting copies in one upload intent, then starts them. */
  async #dispatchBatch(): Promise<void> {
    const batch = await this.#batches.announce();
    if (!batch) return;
    for (const [index, { step, slot }] of batch.copies.entries()) {
      if (this.#pool.fatal) return;
      if (this.#shouldStop()) {
        // Left unsettled, so the resume position stays before them; the next run announces them again.
        this.#deferAll(batch.copies.slice(index));
        this.#stopped = true;
        return;
      }
      await this.#startTask(slot, step.object.size > SMALL_OBJECT_BYTES, (release) =>
        this.#copies.copy(step, release, batch.since),
      );
    }
  }

  #deferAll(copies: BatchedCopy[]): void {
    for (const { step } of copies) this.#defer(step);
  }

  #defer(step: Extract<PlanStep, { action: 'copy' }>): void {
    this.#tally.countDeferred(step.object.size, this.#tally.firstSeen(step.previous));
    this.#unstarted.push(step);
  }

  #shouldStop(): boolean {
    const { control } = this.#run;
    if (control.signal.aborted) return true;
    const remaining = control.remainingTimeMs?.();
    return remaining !== undefined && remaining < control.dispatchMarginMs;
  }

  async #dispatch(step: PlanStep): Promise<void> {
    const key = step.action === 'deleted' ? step.entry.key : step.object.key;
    this.#interrupted.markSeen(key);
    const slot = this.#resume.track(key);
    switch (step.action) {
      case 'unchanged':
        this.#tally.countSkipped();
        break;
      case 'archived':
        this.#tally.countArchived(key);
        this.#run.log.warn('object archived in Glacier; restore it to copy it', {
          key,
          storageClass: step.object.storageClass,
        });
        break;
      case 'deleted':
        // Stryker disable next-line BooleanLiteral: a delete holds no buffers; a large slot would only slow deletions
        await this.#startTask(slot, false, () => this.#deletes.propagate(step.entry));
        return;
      case 'copy':
        if (missedByEvents(step, this.#eventWindow)) this.#tally.countMissedByEvents(key);
        if (this.#batches.add({ step, slot })) await this.#dispatchBatch();
        return;
    }
    await this.#settle(slot);
  }

  /** Runs `task` in the pool; its key settles when it ends, unless the deadline deferred it. */
  async #startTask(slot: ResumeSlot, large: boolean, task: (release: () => void) => Promise<unknown>) {
    await this.#pool.start(large, task, (outcome) =>
      // A deferred key stays unsettled, so the resume position stays before it.
      outcome === DEFERRED ? undefined : this.#settle(slot),
    );
  }

  async #settle(slot: ResumeSlot): Promise<void> {
    this.#resume.settle(slot);
    this.#run.control.onProgress?.(this.#tally.progress);
    await this.#resume.saveIfDue();
  }
}
