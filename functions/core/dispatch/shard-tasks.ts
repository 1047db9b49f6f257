/**
 * `plan-shard` tasks: one message per shard of a pass, telling a planner which key range to compare
 * (docs/fan-out.md). The range is `(after, through]`, as `plan/shards.ts` cuts it.
 */
import * as z from 'zod/mini';
import type { KeyRange } from '../plan/list-source.js';
import { rangesBetween } from '../plan/shards.js';
import { parseTask } from './task-message.js';

export interface PlanShardTask {
  kind: 'plan-shard';
  jobId: string;
  fence: number;
  /** `shard-<n>`: the planner's own task id, and the prefix of the copy tasks it sends. */
  taskId: string;
  range: KeyRange;
}

/** One planner task per range cut at `splits` (sorted keys; none gives one shard over the whole job). */
export function shardTasks(jobId: string, fence: number, splits: readonly string[]): PlanShardTask[] {
  return rangesBetween(splits).map((range, n) => ({
    kind: 'plan-shard',
    jobId,
    fence,
    taskId: `shard-${n}`,
    range,
  }));
}

const planShardSchema = z.strictObject({
  kind: z.literal('plan-shard'),
  jobId: z.string().check(z.minLength(1)),
  fence: z.number().check(z.int(), z.minimum(1)),
  taskId: z.string().check(z.regex(/^shard-\d+$/, 'must be shard-<n>')),
  range: z.strictObject({ after: z.optional(z.string()), through: z.optional(z.string()) }),
});

/** Reads a plan-shard task from an SQS message body, or names what is wrong with it. */
export function parsePlanShardTask(body: string): PlanShardTask {
  return parseTask(body, 'plan-shard', planShardSchema) as PlanShardTask;
}
