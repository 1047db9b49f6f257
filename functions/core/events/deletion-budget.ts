/**
 * The deletions of mirror jobs' events, as one batch of the copy queue asks for them: each is granted or
 * refused by the job's allowance in the state table (state/event-deletion-allowance.ts), shared by every
 * worker and container, so the cap holds however the events are batched (the copy mapping's BatchSize is
 * 1). A refused deletion leaves the destination copy for a mirror pass; it is counted
 * (`eventsDeletionsCapped`) and the cap is logged once per job per batch.
 */
import type { Job } from '../job.js';
import type { SyncLogger, SyncMetrics } from '../run/sync-types.js';
import type { DeletionWindow, EventDeletionAllowance } from '../state/event-deletion-allowance.js';
import type { DeletionVerdict } from './apply-change.js';
import { addJobMetric } from './job-metric.js';
import type { ObjectChange } from './object-change.js';

/** Where a batch's deletion budget reports, and its clock (a test moves it to the next window). */
export interface DeletionBudgetSettings {
  log: SyncLogger;
  metrics?: SyncMetrics;
  now?: () => Date;
}

/** The deletion cap of one batch's events: one per batch, over the container's allowance. */
export class DeletionBudget {
  /** Jobs whose spent cap this batch has logged. */
  readonly #logged = new Set<string>();
  readonly #now: () => Date;

  constructor(
    readonly allowance: Pick<EventDeletionAllowance, 'reserve'>,
    readonly settings: DeletionBudgetSettings,
  ) {
    this.#now = settings.now ?? (() => new Date());
  }

  /**
   * Asks `job`'s allowance for the deletion `change` makes.
   *
   * @throws StateStoreError when the allowance cannot be read: the event's record fails and comes back
   */
  async take(job: Job, change: ObjectChange): Promise<DeletionVerdict> {
    const { maxDeletesPerRun: max, eventDeletionWindowMinutes: windowMinutes } = job.options;
    const { granted, window } = await this.allowance.reserve({
      jobId: job.jobId,
      key: change.key,
      sequencer: change.sequencer,
      max,
      windowMinutes,
      now: this.#now(),
    });
    if (granted) return { granted: true };
    addJobMetric(this.settings.metrics, job.jobId, 'eventsDeletionsCapped', 'Count', 1);
    const reason = capReason(max, windowMinutes, window);
    if (!this.#logged.has(job.jobId)) {
      this.#logged.add(job.jobId);
      this.settings.log.warn('event deletions capped', {
        jobId: job.jobId,
        maxDeletesPerRun: max,
        windowStart: window.start.toISOString(),
        windowEnd: window.end.toISOString(),
        reason,
      });
    }
    return { granted: false, reason };
  }
}

function capReason(max: number, windowMinutes: number, window: DeletionWindow): string {
  return (
    `the job's event deletion cap is spent: options.maxDeletesPerRun ${max} deletions per ` +
    `options.eventDeletionWindowMinutes ${windowMinutes} window (this one ${window.start.toISOString()} to ` +
    `${window.end.toISOString()}); the copy stays for a mirror pass to delete under its own cap. If the ` +
    'deletions are meant, raise options.maxDeletesPerRun or shorten options.eventDeletionWindowMinutes'
  );
}
