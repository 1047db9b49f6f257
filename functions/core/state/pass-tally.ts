/**
 * The tally of one fan-out pass (docs/fan-out.md): how many of its tasks are still outstanding and what the
 * settled ones added up to, kept in DynamoDB so that the pass ends exactly once however many workers settle
 * tasks at the same moment, and so that a task delivered twice counts once.
 *
 *   pk = "job#<jobId>"  sk = "pass#<fence>"                 outstanding, totals, state, endedBy, the job
 *   pk = "job#<jobId>"  sk = "pass#<fence>#task#<taskId>"   a settled task and what it added, written once
 *   pk = "job#<jobId>"  sk = "current-pass"                 the fence of the job's newest pass
 *
 * Every item of a pass carries `purgeAt`, the table's TTL attribute: DynamoDB removes it 30 days on.
 *
 * A task that creates tasks (a shard's planner) announces them with `expect` before it sends them, and
 * settles itself after: `outstanding` counts the announcing task until then, so it cannot reach 0 while
 * tasks are still being sent. A planner that dies between `expect` and sending leaves the pass open; the
 * next pass (a higher fence) supersedes it.
 *
 * This file is the tally's one door, wiring only; the work is done by its rooms: pass-open.ts (opening,
 * announcing, abandoning), pass-settle.ts (settling tasks), pass-ending.ts (the end's marks),
 * pass-deletions.ts (the deletion allowance), pass-read.ts (reading it back), pass-item.ts (the keys and
 * TTL they share) and transaction-conflicts.ts (cancelled transactions, shared with part-uploads.ts).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { LedgerEntry } from './ledger-item.js';
import { recordPassDeletion, reservePassDeletion } from './pass-deletions.js';
import { claimPassEnd, markPassEnded, markPassEventPublished, takeOverPassEnd } from './pass-ending.js';
import { type ConditionItem, type PassItem, passItem } from './pass-item.js';
import { abandonPass, expectTasks, openPass } from './pass-open.js';
import { currentPassFence, findPass, readPass } from './pass-read.js';
import { isTaskSettled, settledTasksOf, settlePassTask, unsettledCondition } from './pass-settle.js';
import type { PassCounts, PassDetails, PassState, Settled, SettledTask } from './pass-types.js';

export { type ConditionItem, PASS_RETENTION_SECONDS } from './pass-item.js';
export { PassEndedError, PassExistsError } from './pass-open.js';
export { SettlementRefusedError } from './pass-settle.js';
export type { PassCounts, PassDetails, PassState, Settled, SettledTask } from './pass-types.js';

export class PassTally {
  readonly #pass: PassItem;

  constructor(
    client: DynamoDBClient,
    table: string,
    readonly jobId: string,
    readonly fence: number,
  ) {
    this.#pass = passItem(client, table, jobId, fence);
  }

  /** The fence of the job's newest pass, or undefined if it never had one. */
  static current(client: DynamoDBClient, table: string, jobId: string): Promise<number | undefined> {
    return currentPassFence(client, table, jobId);
  }

  /**
   * Creates the pass with its first `tasks` outstanding (a shard planner each), and makes it the job's
   * current pass.
   *
   * @throws PassExistsError if it exists, or a newer pass of the job has been opened
   */
  open(tasks: number, startedAt: string, details?: PassDetails): Promise<void> {
    return openPass(this.#pass, this.fence, tasks, startedAt, details);
  }

  /** Marks a running or ending pass abandoned (a newer pass replaces it); false if it had ended. */
  abandon(): Promise<boolean> {
    return abandonPass(this.#pass);
  }

  /**
   * Announces `tasks` more tasks, before they are sent, once per `announcementId` (a planner delivered again
   * re-sends the same tasks under the same ids, and must not count them twice). Refused once the pass has
   * ended.
   *
   * @throws PassEndedError once the pass is no longer running
   */
  expect(announcementId: string, tasks: number): Promise<void> {
    return expectTasks(this.#pass, announcementId, tasks);
  }

  /**
   * Settles task `taskId` once: in one transaction, records it and adds `counts` to the pass's totals and
   * takes it off `outstanding`. A second settlement of the same task changes nothing and says so. `note`
   * is kept with the task for whoever ends the pass (the keys that failed, say). `requires`, checked in the
   * same transaction, must hold for the settlement to be made.
   *
   * @throws SettlementRefusedError when `requires` does not hold (and the task had not settled)
   */
  settle(
    taskId: string,
    counts: PassCounts = {},
    note?: Record<string, unknown>,
    requires?: ConditionItem,
  ): Promise<Settled> {
    return settlePassTask(this.#pass, taskId, counts, note, requires);
  }

  /**
   * Claims the end of the pass for `worker` (state `ending`) if nothing is outstanding and no one has; true
   * for the one that did, which then ends it (`ended`). `until` is the worker's deadline: past it, the end
   * is taken over (`takeOverEnd`).
   */
  claimEnd(worker: string, until?: Date): Promise<boolean> {
    return claimPassEnd(this.#pass, worker, until);
  }

  /**
   * Takes over the end of a pass whose ender (`previous`) died after claiming it: allowed once the ender's
   * deadline has passed (Lambda has killed it by then, so two workers never write the end at once). True
   * for the one worker that took it; it ends the pass as the claimer would have, by `until`.
   */
  takeOverEnd(worker: string, previous: string, until: Date, now?: Date): Promise<boolean> {
    return takeOverPassEnd(this.#pass, worker, previous, until, now);
  }

  /**
   * Records the pass's run event published by `worker`, the pass's ender now (a takeover by another worker
   * refuses it): whoever takes the end over later finds it and does not publish the event again. False if
   * `worker` no longer ends the pass.
   */
  markEventPublished(worker: string, at?: Date): Promise<boolean> {
    return markPassEventPublished(this.#pass, worker, at);
  }

  /** Marks the pass `ended` once the worker that claimed its end has written everything it ends with. */
  ended(worker: string, at?: Date): Promise<boolean> {
    return markPassEnded(this.#pass, worker, at);
  }

  /**
   * Takes the deletion of `key` off the pass's allowance of `max` (mirror jobs' `maxDeletesPerRun`, for the
   * whole pass however many shards delete at once); false once `max` keys have been taken. A key taken
   * before (its planner delivered again) is granted again without counting twice.
   */
  reserveDeletion(key: string, max: number): Promise<boolean> {
    return reservePassDeletion(this.#pass, key, max);
  }

  /**
   * Records the deletion of `key` (reserved before) done: removes its ledger entry under the pass's fence and
   * counts it in the pass's `deleted` total, in one transaction and once per key, so the total is the same
   * whichever delivery of the shard's planner deleted the key and whichever settled the shard. False when a
   * delivery recorded it before (nothing changed). `readSequencer` is the one the planner read in the key's
   * entry: an event that recorded a change of the key since keeps its entry, returned, counted nowhere.
   * `token`: the deletion mark the planner set on the entry (state/deletion-marks.ts), still its own.
   *
   * @throws LeaseLostError when a newer pass has written the key's ledger entry
   */
  recordDeletion(key: string, readSequencer?: string, token?: string): Promise<boolean | LedgerEntry> {
    return recordPassDeletion(this.#pass, this.jobId, key, this.fence, readSequencer, token);
  }

  /**
   * A condition that task `taskId` has not settled, for a transaction on another item (a part task's claim
   * of its object's completion): a task settled with nothing must not take on an object to count.
   */
  unsettled(taskId: string): ConditionItem {
    return unsettledCondition(this.#pass, taskId);
  }

  /** Whether task `taskId` has settled (a strongly consistent read): a redelivered task need not run. */
  isSettled(taskId: string): Promise<boolean> {
    return isTaskSettled(this.#pass, taskId);
  }

  /** Every settled task of the pass, in task-id order (for the worker that ends it). */
  settledTasks(): AsyncGenerator<SettledTask> {
    return settledTasksOf(this.#pass);
  }

  /** The pass as stored now (a strongly consistent read). */
  read(): Promise<PassState> {
    return readPass(this.#pass);
  }

  /** The pass as stored now, or undefined if it was never opened. */
  find(): Promise<PassState | undefined> {
    return findPass(this.#pass);
  }
}
