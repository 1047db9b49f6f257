/**
 * What a fan-out pass's tally stores and answers (state/pass-tally.ts): the pass as stored, a settled task,
 * and what settling one did.
 */

/** Counts a task adds to its pass: objects copied, bytes, failures, and so on. Names are [a-zA-Z]+. */
export type PassCounts = Record<string, number>;

/** What a pass is started with, for every worker of it to read. */
export interface PassDetails {
  /** The pass's run id: its manifest's folder and its upload intents' prefix. */
  runId: string;
  /** The job as the pass started it (validated), so every task of one pass works to the same job. */
  job: unknown;
  /**
   * For a job that follows events, the LastModified window (ISO times, `(from, to]`) its planners judge
   * `missedByEvents` by (events/missed-by-events.ts): worked out once, so every shard judges alike.
   */
  eventWindow?: { from: string; to: string };
}

/** The pass as stored. */
export interface PassState extends Partial<PassDetails> {
  outstanding: number;
  /**
   * `ending`: its last task settled and one worker claimed the end (it writes the manifest and run record);
   * `abandoned`: a newer pass took over before this one ended; it never ends.
   */
  state: 'running' | 'ending' | 'ended' | 'abandoned';
  totals: PassCounts;
  startedAt: string;
  /** When a task last settled (or the pass started): a pass quiet for long has lost its messages. */
  updatedAt: string;
  endedBy?: string;
  /**
   * While `ending`: the deadline of the worker writing the end (Lambda kills it then). Past it, that worker
   * is gone and another delivery takes the end over (`takeOverEnd`).
   */
  endingUntil?: string;
  /**
   * When an ender of this pass recorded its run event published (`markEventPublished`): an ender that takes
   * the end over does not publish it again.
   */
  eventPublishedAt?: string;
  /** When the pass was marked `ended`: the next pass of a job that follows events judges from it. */
  finishedAt?: string;
}

/** A settled task as stored: what it added, and what it noted for the pass's end (its failures, say). */
export interface SettledTask {
  taskId: string;
  counts: PassCounts;
  note?: Record<string, unknown>;
}

/** What settling a task did. */
export interface Settled {
  /** The task had been settled before (a redelivered message): nothing was added this time. */
  duplicate: boolean;
  /** Tasks of the pass still outstanding after this one; 0 means the pass may end (see `claimEnd`). */
  outstanding: number;
}
