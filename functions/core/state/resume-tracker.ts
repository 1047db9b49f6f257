/**
 * The resume tracker: the keys a pass dispatched, in order, and which have settled. The settled prefix is
 * the resume position (`resumeAfter`), saved in a fenced checkpoint at least every CHECKPOINT_INTERVAL_MS
 * so that a killed run loses little listing work, and once more when the run ends.
 */
import type { KeyRange } from '../plan/list-source.js';
import type { Checkpoint, StateStore } from './state-store.js';

/** Save the resume position at least this often, so a killed run loses little listing work. */
const CHECKPOINT_INTERVAL_MS = 10_000;

/** One dispatched key; settled once nothing about it is left to do this run. */
export interface ResumeSlot {
  key: string;
  settled: boolean;
}

/** Tracks one pass's resume position, from the checkpoint it starts at (`readCheckpoint`). */
export class ResumeTracker {
  /** Keys in dispatch order with whether they are settled; the settled prefix is the resume position. */
  readonly #order: ResumeSlot[] = [];
  /** The checkpoint the pass started from. */
  #started: Checkpoint = {};
  #resumeAfter: string | undefined;
  #lastCompletePass: Checkpoint['lastCompletePass'];
  #lastCheckpointAt = Date.now();

  constructor(
    readonly state: StateStore,
    readonly jobId: string,
    /** The fence of the lease as it is now (the lease is renewed during the run). */
    readonly fence: () => number,
  ) {}

  /** Reads the checkpoint the pass starts from. */
  async readCheckpoint(): Promise<Checkpoint> {
    this.#started = await this.state.readCheckpoint(this.jobId);
    this.#resumeAfter = this.#started.resumeAfter;
    this.#lastCompletePass = this.#started.lastCompletePass;
    return this.#started;
  }

  /** The last key of the settled prefix. */
  get resumeAfter(): string | undefined {
    return this.#resumeAfter;
  }

  /** The key ranges of this pass: after the resume position, then wrapping round to the start. */
  ranges(): KeyRange[] {
    const after = this.#started.resumeAfter;
    return after === undefined ? [{}] : [{ after }, { through: after }];
  }

  /** Notes `key` as dispatched; it holds the resume position back until it is settled. */
  track(key: string): ResumeSlot {
    const slot = { key, settled: false };
    this.#order.push(slot);
    return slot;
  }

  /** Marks `slot` settled and moves the resume position past the settled prefix. */
  settle(slot: ResumeSlot): void {
    slot.settled = true;
    let advanced = 0;
    while (this.#order[advanced]?.settled) advanced += 1;
    if (advanced > 0) {
      this.#resumeAfter = this.#order[advanced - 1]?.key;
      this.#order.splice(0, advanced);
    }
  }

  /** Writes the checkpoint if the last one is older than CHECKPOINT_INTERVAL_MS. */
  async saveIfDue(): Promise<void> {
    if (Date.now() - this.#lastCheckpointAt > CHECKPOINT_INTERVAL_MS && this.#resumeAfter !== undefined) {
      this.#lastCheckpointAt = Date.now();
      await this.state.writeCheckpoint(
        this.jobId,
        { resumeAfter: this.#resumeAfter, lastCompletePass: this.#lastCompletePass },
        this.fence(),
      );
    }
  }

  /**
   * Writes the run's last checkpoint: a finished pass starts the next run from the beginning, a partial
   * one resumes after the settled prefix.
   */
  async saveFinal(complete: boolean, runId: string, finishedAt: string): Promise<Checkpoint> {
    const next: Checkpoint = complete
      ? { lastCompletePass: { runId, finishedAt } }
      : { resumeAfter: this.#resumeAfter, lastCompletePass: this.#lastCompletePass };
    await this.state.writeCheckpoint(this.jobId, next, this.fence());
    return next;
  }
}
