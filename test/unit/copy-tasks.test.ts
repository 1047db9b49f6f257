import { describe, expect, it } from 'vitest';
import {
  type CopyTask,
  type CopyTaskLimits,
  copyTasks,
  parseCopyTask,
  TaskValidationError,
} from '../../functions/core/dispatch/copy-tasks.js';
import type { PlanStep } from '../../functions/core/plan/plan.js';

type CopyStep = Extract<PlanStep, { action: 'copy' }>;
const lastModified = new Date('2026-12-01T10:00:00.000Z');
const step = (key: string, size: number, extra: Partial<CopyStep> = {}): CopyStep => ({
  action: 'copy',
  reason: 'new',
  object: { key, etag: `"e-${key}"`, size, lastModified, storageClass: 'STANDARD' },
  ...extra,
});
async function* stream(steps: CopyStep[]) {
  yield* steps;
}
const limits: CopyTaskLimits = {
  largeObjectBytes: 1000,
  maxTaskBytes: 2500,
  maxObjects: 3,
  maxMessageBytes: 200_000,
};
async function tasksOf(steps: CopyStep[], over: Partial<CopyTaskLimits> = {}): Promise<CopyTask[]> {
  const tasks: CopyTask[] = [];
  for await (const task of copyTasks(
    stream(steps),
    { jobId: 'docs', fence: 4, shard: 's2' },
    { ...limits, ...over },
  )) {
    tasks.push(task);
  }
  return tasks;
}
const keysOf = (tasks: CopyTask[]) => tasks.map((task) => task.objects.map((object) => object.key));

describe('copyTasks: a shard copy steps as SQS task messages', () => {
  it('batches small objects up to maxObjects, sends a large one alone, and keeps key order and every key once', async () => {
    const tasks = await tasksOf([
      step('a', 10),
      step('b', 10),
      step('c', 10),
      step('d', 10),
      step('big', 1000),
      step('e', 10),
    ]);

    expect(keysOf(tasks)).toEqual([['a', 'b', 'c'], ['big'], ['d', 'e']]);
    expect(tasks.map((task) => task.taskId)).toEqual(['s2-0', 's2-1', 's2-2']);
    expect(tasks[0]).toMatchObject({ kind: 'copy', jobId: 'docs', fence: 4 });
  });

  it('closes a batch before the next object would pass maxTaskBytes', async () => {
    const tasks = await tasksOf([step('a', 900), step('b', 900), step('c', 900), step('d', 700)]);

    expect(keysOf(tasks)).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it('closes a batch before the next object would pass the message size, and every message fits', async () => {
    const longKey = (n: number) => `${n}-${'k'.repeat(900)}`;
    const steps = Array.from({ length: 10 }, (_, n) => step(longKey(n), 1));

    const tasks = await tasksOf(steps, { maxObjects: 100, maxMessageBytes: 4000 });

    expect(tasks.length).toBeGreaterThan(1);
    for (const task of tasks) expect(Buffer.byteLength(JSON.stringify(task))).toBeLessThanOrEqual(4000);
    // Each message but the last is full: the next task's first object would not have fitted in it.
    for (const [index, task] of tasks.slice(0, -1).entries()) {
      const next = tasks[index + 1]?.objects[0];
      const grown = { ...task, objects: [...task.objects, next] };
      expect(Buffer.byteLength(JSON.stringify(grown))).toBeGreaterThan(4000);
    }
    expect(keysOf(tasks).flat()).toEqual(steps.map((s) => s.object.key));
  });

  it('refuses an object whose task alone would not fit in a message, naming the key', async () => {
    await expect(tasksOf([step('x'.repeat(5000), 1)], { maxMessageBytes: 4000 })).rejects.toThrow(
      /the ledger entry of "x+" makes its copy task larger than 4000 bytes/,
    );
  });

  it('carries what a worker needs: the listed version, the reason and the ledger entry it replaces', async () => {
    const previous = { key: 'a', etag: '"old"', destinationKey: 'copy/a', destinationEtag: 'd1' };
    const tasks = await tasksOf([step('a', 5, { reason: 'changed', previous })]);

    expect(tasks[0]?.objects).toEqual([
      {
        key: 'a',
        etag: '"e-a"',
        size: 5,
        lastModified: '2026-12-01T10:00:00.000Z',
        storageClass: 'STANDARD',
        reason: 'changed',
        previous,
      },
    ]);
  });

  it("carries the planner's missedByEvents mark on the objects it marked only", async () => {
    const tasks = await tasksOf([{ ...step('a', 5), missedByEvents: true } as CopyStep, step('b', 5)]);

    expect(tasks[0]?.objects[0]).toMatchObject({ key: 'a', missedByEvents: true });
    expect(tasks[0]?.objects[1]).not.toHaveProperty('missedByEvents');
  });

  it('sends nothing for a shard with nothing to copy', async () => {
    expect(await tasksOf([])).toEqual([]);
  });
});

describe('parseCopyTask: a worker reads a task message', () => {
  it('reads back exactly what copyTasks sent', async () => {
    const [task] = await tasksOf([step('a', 5, { reason: 'retry', previous: { key: 'a' } })]);

    expect(parseCopyTask(JSON.stringify(task))).toEqual(task);
  });

  it('reads the missedByEvents mark, and a message of an older planner without it', async () => {
    const [marked] = await tasksOf([{ ...step('a', 5), missedByEvents: true } as CopyStep]);
    const [old] = await tasksOf([step('a', 5)]);
    const invalid = { ...old, objects: [{ ...old?.objects[0], missedByEvents: 'yes' }] };

    expect(parseCopyTask(JSON.stringify(marked)).objects[0]?.missedByEvents).toBe(true);
    expect(parseCopyTask(JSON.stringify(old))).toEqual(old);
    expect(() => parseCopyTask(JSON.stringify(invalid))).toThrow(/task\.objects\.0\.missedByEvents/);
  });

  it('names what is wrong with a message that is not a copy task', () => {
    expect(() => parseCopyTask('{not json')).toThrow(
      new TaskValidationError('a copy task is a JSON object; the message body is not JSON: {not json'),
    );
    expect(() =>
      parseCopyTask(JSON.stringify({ kind: 'copy', jobId: 'docs', fence: 0, taskId: 's-0', objects: [] })),
    ).toThrow(/invalid copy task: task\.fence .*; task\.objects /);
    expect(() =>
      parseCopyTask(
        JSON.stringify({
          kind: 'copy',
          jobId: 'docs',
          fence: 1,
          taskId: 's-0',
          objects: [
            { key: 'a', etag: 'e', size: -1, lastModified: 'yesterday', storageClass: 'S', reason: 'new' },
          ],
        }),
      ),
    ).toThrow(/task\.objects\.0\.size .*; task\.objects\.0\.lastModified /);
  });
});
