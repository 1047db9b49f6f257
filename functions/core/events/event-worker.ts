/**
 * The copy worker's side of events (docs/event-driven.md): one copy-queue record holding an S3 event is
 * read, routed to its job(s), and applied with applyChange; its outcome is logged and counted, and its lag
 * reported as `eventLagMs`. What fails (a lease lost to a newer pass, a source that changed mid-copy, the
 * state table unreachable, a message that is no event) is thrown, so the record comes back and, after the
 * queue's receive limit, waits in the dead-letter queue.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { openSourceAccess } from '../access/preflight.js';
import type { Job } from '../job.js';
import { inDestinationRegion, newRunId } from '../run/sync-job.js';
import type { SyncDependencies, SyncLogger, SyncMetrics } from '../run/sync-types.js';
import { EventDeletionAllowance } from '../state/event-deletion-allowance.js';
import { JobStore } from '../state/job-store.js';
import { applyChange, type ChangeOutcome } from './apply-change.js';
import { DeletionBudget } from './deletion-budget.js';
import { EventJobs } from './event-jobs.js';
import { parseEventMessage } from './event-message.js';
import { addJobMetric } from './job-metric.js';
import { routeEvent } from './route-event.js';

/** The metric counting each outcome. */
const OUTCOME_METRICS: Record<ChangeOutcome['outcome'], string> = {
  copied: 'eventsCopied',
  deleted: 'eventsDeleted',
  'up-to-date': 'eventsUpToDate',
  stale: 'eventsStale',
  skipped: 'eventsSkipped',
};

/** How one event record is handled. */
export interface EventControl {
  signal?: AbortSignal;
  log: SyncLogger;
  /** The deletion cap of mirror jobs, shared by the records of one batch. */
  deletions: DeletionBudget;
}

/**
 * Applies event records. One per container: it keeps each job's source session (the role assumed once,
 * its credentials refreshed before they expire), as PassOpener does for a pass's tasks, and the stored
 * jobs that follow events for a minute (EventJobs), so a burst of bare events reads the job store once.
 */
export class EventWorker {
  readonly #sources = new Map<string, Promise<S3Client>>();
  #jobs?: JobStore;
  /** The stored jobs that follow events, kept for EVENT_JOBS_TTL_MS: a burst of bare events reads once. */
  #followers?: EventJobs;
  #deletionAllowance?: EventDeletionAllowance;

  constructor(readonly deps: SyncDependencies) {}

  /** The deletion cap of one batch's events, drawing on each job's allowance in the state table. */
  deletionBudget(log: SyncLogger): DeletionBudget {
    this.#deletionAllowance ??= new EventDeletionAllowance(this.deps.state.client, this.deps.state.tableName);
    return new DeletionBudget(this.#deletionAllowance, { log, metrics: this.deps.metrics });
  }

  /**
   * Handles one record's body: the outcome for each job it is for (none when it is for no job).
   *
   * @throws ChangeEventError for a message that is not an event; what applyChange throws
   */
  async handle(body: string, control: EventControl): Promise<ChangeOutcome[]> {
    const { log } = control;
    const message = parseEventMessage(body);
    const { change } = message;
    this.#jobs ??= new JobStore(this.deps.state.client, this.deps.state.tableName);
    this.#followers ??= new EventJobs(this.#jobs);
    const routing = await routeEvent(this.#jobs, message, this.#followers);
    if ('dropped' in routing) {
      log.info('event for no job; dropped', {
        bucket: change.bucket,
        key: change.key,
        eventId: change.eventId,
        reason: routing.dropped,
      });
      this.deps.metrics?.addMetric('eventsDropped', 'Count', 1);
      return [];
    }
    const outcomes: ChangeOutcome[] = [];
    for (const job of routing.jobs) {
      const deps = inDestinationRegion(this.deps, job);
      const outcome = await applyChange(
        { sourceS3: await this.#source(deps, job), destinationS3: deps.destinationS3, state: deps.state },
        job,
        change,
        { signal: control.signal, mayDelete: () => control.deletions.take(job, change) },
      );
      log.info(`event ${outcome.outcome}`, {
        jobId: job.jobId,
        key: outcome.key,
        change: change.change,
        sequencer: change.sequencer,
        eventId: change.eventId,
        ...(outcome.reason !== undefined && { reason: outcome.reason }),
        ...(outcome.bytes !== undefined && { bytes: outcome.bytes }),
        ...(outcome.lagMs !== undefined && { lagMs: outcome.lagMs }),
      });
      reportOutcome(this.deps.metrics, job.jobId, outcome);
      outcomes.push(outcome);
    }
    return outcomes;
  }

  /** The job's source client, opened (role assumed, access checked) once per container. */
  #source(deps: SyncDependencies, job: Job): Promise<S3Client> {
    const id = JSON.stringify([job.jobId, job.source, job.options.copyMethod, job.options.copyTags]);
    let source = this.#sources.get(id);
    if (!source) {
      source = openSourceAccess(deps, job, `ev${newRunId()}`).then(({ sourceS3 }) => sourceS3);
      this.#sources.set(id, source);
      // A refused open (the role's trust changed, say) is tried again by the next event, not remembered.
      source.catch(() => this.#sources.delete(id));
    }
    return source;
  }
}

/** The outcome's count and, for a change recorded, its lag. */
function reportOutcome(metrics: SyncMetrics | undefined, jobId: string, outcome: ChangeOutcome): void {
  addJobMetric(metrics, jobId, OUTCOME_METRICS[outcome.outcome], 'Count', 1);
  if (outcome.lagMs !== undefined) addJobMetric(metrics, jobId, 'eventLagMs', 'Milliseconds', outcome.lagMs);
}
