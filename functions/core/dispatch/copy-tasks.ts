/**
 * The dispatch room: a pass's plan steps as SQS task messages for fan-out workers (docs/fan-out.md).
 *
 * - copy-tasks.ts (this file): copy steps batched into `copy` tasks (many small objects, or one large
 *   one), each within SQS's message size, and the parser a worker reads a message with.
 */
import * as z from 'zod/mini';
import type { PlanStep } from '../plan/plan.js';
import type { LedgerEntry } from '../state/state-store.js';
import { parseTask, TaskValidationError } from './task-message.js';

export { TaskValidationError } from './task-message.js';

/** A copy step, marked when the planner judged it a change no event delivered. */
type CopyStep = Extract<PlanStep, { action: 'copy' }> & { missedByEvents?: boolean };

/** One object of a copy task: the version listed (the GET is pinned to its ETag) and what the ledger held. */
export interface TaskObject {
  key: string;
  etag: string;
  size: number;
  lastModified: string;
  storageClass: string;
  restored?: boolean;
  reason: CopyStep['reason'];
  previous?: LedgerEntry;
  /**
   * A change of a job that follows events which no event delivered (events/missed-by-events.ts), judged by
   * the planner; the worker counts it once copied. Absent from messages of older planners.
   */
  missedByEvents?: true;
}

/** A batch of objects for one copy worker invocation, under the pass's fence. */
export interface CopyTask {
  kind: 'copy';
  jobId: string;
  fence: number;
  /** Unique within the pass and the same when a planner is delivered again: `<shard>-<n>`. */
  taskId: string;
  objects: TaskObject[];
}

export interface CopyTaskLimits {
  /** Objects of at least this many bytes travel alone (a worker streams them with its whole budget). */
  largeObjectBytes: number;
  /** Bytes of source objects per task: what one worker copies in well under its timeout. */
  maxTaskBytes: number;
  /** Objects per task. */
  maxObjects: number;
  /** The JSON message's size: SQS takes 256 KiB, kept with room for attributes. */
  maxMessageBytes: number;
}

export const DEFAULT_COPY_TASK_LIMITS: CopyTaskLimits = {
  largeObjectBytes: 64 * 1024 * 1024,
  maxTaskBytes: 256 * 1024 * 1024,
  maxObjects: 100,
  maxMessageBytes: 200 * 1024,
};

/**
 * Batches a shard's copy steps, in key order, into copy tasks: an object of `largeObjectBytes` or more
 * alone; smaller ones together until the next would pass `maxObjects`, `maxTaskBytes` or
 * `maxMessageBytes`. Task ids are `<shard>-<n>`, so the same steps give the same ids.
 */
export async function* copyTasks(
  steps: AsyncIterable<CopyStep>,
  task: { jobId: string; fence: number; shard: string },
  limits: CopyTaskLimits = DEFAULT_COPY_TASK_LIMITS,
): AsyncGenerator<CopyTask> {
  const taskOf = (n: number, objects: TaskObject[]): CopyTask => ({
    kind: 'copy',
    jobId: task.jobId,
    fence: task.fence,
    taskId: `${task.shard}-${n}`,
    objects,
  });
  // The message without objects, with the longest task id it could have.
  const envelope = messageBytes(taskOf(Number.MAX_SAFE_INTEGER, []));
  let number = 0;
  let batch: TaskObject[] = [];
  let batchBytes = 0;
  let batchMessageBytes = envelope;
  for await (const step of steps) {
    const object = taskObject(step);
    const objectMessageBytes = messageBytes(object) + 1;
    if (envelope + objectMessageBytes > limits.maxMessageBytes) {
      throw new TaskValidationError(
        `the ledger entry of "${object.key}" makes its copy task larger than ${limits.maxMessageBytes} bytes`,
      );
    }
    if (object.size >= limits.largeObjectBytes) {
      yield taskOf(number++, [object]);
      continue;
    }
    const full =
      batch.length === limits.maxObjects ||
      batchBytes + object.size > limits.maxTaskBytes ||
      batchMessageBytes + objectMessageBytes > limits.maxMessageBytes;
    if (batch.length > 0 && full) {
      yield taskOf(number++, batch);
      batch = [];
      batchBytes = 0;
      batchMessageBytes = envelope;
    }
    batch.push(object);
    batchBytes += object.size;
    batchMessageBytes += objectMessageBytes;
  }
  if (batch.length > 0) yield taskOf(number++, batch);
}

function taskObject(step: CopyStep): TaskObject {
  const { object, reason, previous } = step;
  return {
    key: object.key,
    etag: object.etag,
    size: object.size,
    lastModified: object.lastModified.toISOString(),
    storageClass: object.storageClass,
    ...(object.restored && { restored: true }),
    reason,
    ...(previous && { previous }),
    ...(step.missedByEvents && { missedByEvents: true as const }),
  };
}

function messageBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

const ledgerEntry = z.looseObject({ key: z.string() });

const copyTaskSchema = z.strictObject({
  kind: z.literal('copy'),
  jobId: z.string().check(z.minLength(1)),
  fence: z.number().check(z.int(), z.minimum(1)),
  taskId: z.string().check(z.minLength(1)),
  objects: z
    .array(
      z.strictObject({
        key: z.string().check(z.minLength(1)),
        etag: z.string().check(z.minLength(1)),
        size: z.number().check(z.int(), z.minimum(0)),
        lastModified: z.iso.datetime(),
        storageClass: z.string(),
        restored: z.optional(z.literal(true)),
        reason: z.enum(['new', 'changed', 'retry']),
        previous: z.optional(ledgerEntry),
        missedByEvents: z.optional(z.literal(true)),
      }),
    )
    .check(z.minLength(1)),
});

/**
 * Reads a copy task from an SQS message body. A message that is not one names what is wrong; a worker
 * reports it as a failed item, so after the queue's receive limit it is in the dead-letter queue to look at.
 */
export function parseCopyTask(body: string): CopyTask {
  return parseTask(body, 'copy', copyTaskSchema) as CopyTask;
}
