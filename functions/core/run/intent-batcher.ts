/**
 * The intent batcher: copies wait here until they are announced together in one upload-intent item
 * (which tells a later run what this one may have written if it dies), then start.
 */
import type { PlanStep } from '../plan/plan.js';
import type { ResumeSlot } from '../state/resume-tracker.js';
import type { StateStore } from '../state/state-store.js';

/** Copies are dispatched in batches of up to this many keys, each announced by one upload-intent item. */
const INTENT_BATCH_KEYS = 100;
/** ...or of this many key bytes, well inside DynamoDB's 400 KB item limit. */
const INTENT_BATCH_BYTES = 64 * 1024;
/** A batch waiting for more copies is sent anyway after this many plan steps (long unchanged stretches). */
const INTENT_BATCH_MAX_WAIT_STEPS = 1000;

/** A planned copy and its place in the resume order. */
export interface BatchedCopy {
  step: Extract<PlanStep, { action: 'copy' }>;
  slot: ResumeSlot;
}

/** One announced batch: its copies and when its intent was written. */
export interface AnnouncedBatch {
  copies: BatchedCopy[];
  since: string;
}

/** Gathers one run's copies into upload-intent batches. */
export class IntentBatcher {
  /** Copies planned but not yet dispatched, waiting to be announced in one upload intent. */
  #waiting: BatchedCopy[] = [];
  #bytes = 0;
  #stepsSinceStart = 0;
  #count = 0;

  constructor(
    readonly state: StateStore,
    readonly jobId: string,
    readonly runId: string,
  ) {}

  /** Adds a copy to the batch; true when the batch is full and should be announced now. */
  add(copy: BatchedCopy): boolean {
    if (this.#waiting.length === 0) this.#stepsSinceStart = 0;
    this.#waiting.push(copy);
    this.#bytes += Buffer.byteLength(copy.slot.key);
    return this.#waiting.length >= INTENT_BATCH_KEYS || this.#bytes >= INTENT_BATCH_BYTES;
  }

  /** Counts one plan step; true when a waiting batch has waited long enough to be announced anyway. */
  countStep(): boolean {
    this.#stepsSinceStart += 1;
    return this.#waiting.length > 0 && this.#stepsSinceStart >= INTENT_BATCH_MAX_WAIT_STEPS;
  }

  /** Empties the batch without announcing it (the run stops; the next one plans these copies again). */
  drop(): BatchedCopy[] {
    const dropped = this.#waiting;
    this.#waiting = [];
    this.#bytes = 0;
    return dropped;
  }

  /** Writes the waiting copies' upload intent and hands them over; undefined when none wait. */
  async announce(): Promise<AnnouncedBatch | undefined> {
    const copies = this.#waiting;
    if (copies.length === 0) return undefined;
    this.#waiting = [];
    this.#bytes = 0;
    const since = new Date().toISOString();
    this.#count += 1;
    await this.state.putUploadIntent(this.jobId, this.runId, this.#count, {
      since,
      objects: copies.map(({ step }) => ({ key: step.object.key, size: step.object.size })),
    });
    return { copies, since };
  }
}
