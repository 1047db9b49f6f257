/**
 * `part` tasks: one byte range of a giant object (above `options.fanOut.partTasksAbove`), to be read from
 * the source (pinned to its ETag) and uploaded as one part of the object's one multipart upload of the
 * pass (docs/fan-out.md, state/part-uploads.ts).
 */
import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { MAX_PARTS } from '../copy/part-plan.js';
import { parseTask } from './task-message.js';

/** A part task's byte range: `start` to `end`, both included (an HTTP Range). */
export interface PartRange {
  start: number;
  end: number;
}

export interface PartTask {
  kind: 'part';
  jobId: string;
  fence: number;
  /** The pass's run id (for a person reading the message in a dead-letter queue). */
  pass: string;
  /** `part-<version>-<n>`: the same for every delivery and every planner delivery (see partTaskId). */
  taskId: string;
  key: string;
  etag: string;
  size: number;
  /** The multipart upload the part goes to, when the sender knew it (the upload's record decides). */
  uploadId?: string;
  partNumber: number;
  range: PartRange;
}

/** What the part tasks of one object version are cut from. */
export interface PartTaskSource {
  jobId: string;
  fence: number;
  pass: string;
  key: string;
  etag: string;
  size: number;
  uploadId?: string;
  partSize: number;
}

/**
 * The id of an object version (key and ETag) within a pass: a hash, because a key is up to 1,024 bytes
 * and a task id is part of a DynamoDB sort key.
 */
export function versionId(key: string, etag: string): string {
  return createHash('sha256').update(key).update('\0').update(etag).digest('base64url').slice(0, 22);
}

/** Part `partNumber` of the version's task id: deterministic, so a planner delivered again counts once. */
export function partTaskId(key: string, etag: string, partNumber: number): string {
  return `part-${versionId(key, etag)}-${partNumber}`;
}

/** One task per part of `partSize` bytes (the last holds the rest), numbered from 1. */
export function partTasks(source: PartTaskSource): PartTask[] {
  const { partSize, uploadId, ...rest } = source;
  const count = Math.max(1, Math.ceil(source.size / partSize));
  return Array.from({ length: count }, (_, index) => ({
    kind: 'part' as const,
    ...rest,
    taskId: partTaskId(source.key, source.etag, index + 1),
    ...(uploadId && { uploadId }),
    partNumber: index + 1,
    range: { start: index * partSize, end: Math.min(source.size, (index + 1) * partSize) - 1 },
  }));
}

const partTaskSchema = z
  .strictObject({
    kind: z.literal('part'),
    jobId: z.string().check(z.minLength(1)),
    fence: z.number().check(z.int(), z.minimum(1)),
    pass: z.string().check(z.minLength(1)),
    taskId: z.string().check(z.regex(/^part-[\w-]{22}-\d+$/, 'must be part-<version>-<part number>')),
    key: z.string().check(z.minLength(1)),
    etag: z.string().check(z.minLength(1)),
    size: z.number().check(z.int(), z.minimum(1)),
    uploadId: z.optional(z.string().check(z.minLength(1))),
    partNumber: z.number().check(z.int(), z.minimum(1), z.maximum(MAX_PARTS)),
    range: z.strictObject({
      start: z.number().check(z.int(), z.minimum(0)),
      end: z.number().check(z.int(), z.minimum(0)),
    }),
  })
  .check(
    z.superRefine((task, context) => {
      const { start, end } = task.range;
      if (end < start) {
        context.addIssue({
          code: 'custom',
          path: ['range'],
          message: `ends (${end}) before it starts (${start})`,
        });
      }
      if (end >= task.size) {
        context.addIssue({
          code: 'custom',
          path: ['range', 'end'],
          message: `is past the object's last byte (${task.size - 1})`,
        });
      }
      if (task.taskId !== partTaskId(task.key, task.etag, task.partNumber)) {
        context.addIssue({
          code: 'custom',
          path: ['taskId'],
          message: `is not the id of part ${task.partNumber} of this key and ETag`,
        });
      }
    }),
  );

/** Reads a part task from an SQS message body, or names what is wrong with it. */
export function parsePartTask(body: string): PartTask {
  return parseTask(body, 'part', partTaskSchema) as PartTask;
}
