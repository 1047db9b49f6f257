import { describe, expect, it } from 'vitest';
import { parsePlanShardTask, shardTasks } from '../../functions/core/dispatch/shard-tasks.js';
import { TaskValidationError } from '../../functions/core/dispatch/task-message.js';

const valid = { kind: 'plan-shard', jobId: 'docs', fence: 3, taskId: 'shard-0', range: {} };
const parse = (task: object) => () => parsePlanShardTask(JSON.stringify(task));

describe('shardTasks: one plan-shard task per key range of a pass', () => {
  it('gives one task per range, ids shard-0..n, over contiguous ranges (after, through]', () => {
    const tasks = shardTasks('docs', 5, ['d', 'm', 't']);

    expect(tasks).toEqual([
      { kind: 'plan-shard', jobId: 'docs', fence: 5, taskId: 'shard-0', range: { through: 'd' } },
      { kind: 'plan-shard', jobId: 'docs', fence: 5, taskId: 'shard-1', range: { after: 'd', through: 'm' } },
      { kind: 'plan-shard', jobId: 'docs', fence: 5, taskId: 'shard-2', range: { after: 'm', through: 't' } },
      { kind: 'plan-shard', jobId: 'docs', fence: 5, taskId: 'shard-3', range: { after: 't' } },
    ]);
    expect(tasks[0]?.range).not.toHaveProperty('after');
    expect(tasks[3]?.range).not.toHaveProperty('through');
    // Each range starts exactly where the one before ends.
    for (const [n, task] of tasks.slice(1).entries()) {
      expect(task.range.after).toBe(tasks[n]?.range.through);
    }
  });

  it('gives one task over the whole key space when there are no splits', () => {
    expect(shardTasks('docs', 1, [])).toEqual([
      { kind: 'plan-shard', jobId: 'docs', fence: 1, taskId: 'shard-0', range: {} },
    ]);
  });

  it('gives two tasks for one split', () => {
    expect(shardTasks('j', 2, ['k']).map((task) => [task.taskId, task.range])).toEqual([
      ['shard-0', { through: 'k' }],
      ['shard-1', { after: 'k' }],
    ]);
  });
});

describe('parsePlanShardTask: a planner reads its task message', () => {
  it('reads back exactly what shardTasks made, after a JSON round trip', () => {
    for (const task of [...shardTasks('docs', 9, ['b', 'q']), ...shardTasks('docs', 1, [])]) {
      expect(parsePlanShardTask(JSON.stringify(task))).toEqual(task);
    }
  });

  it('says a body that is not JSON is not JSON', () => {
    expect(() => parsePlanShardTask('{oops')).toThrow(
      new TaskValidationError('a plan-shard task is a JSON object; the message body is not JSON: {oops'),
    );
    expect(() => parsePlanShardTask('')).toThrow(TaskValidationError);
  });

  it('refuses another kind of task, naming task.kind', () => {
    expect(parse({ ...valid, kind: 'copy' })).toThrow(TaskValidationError);
    expect(parse({ ...valid, kind: 'copy' })).toThrow(/^invalid plan-shard task: task\.kind /);
  });

  it('refuses fence 0, naming task.fence', () => {
    expect(parse({ ...valid, fence: 0 })).toThrow(/^invalid plan-shard task: task\.fence /);
    expect(parse({ ...valid, fence: 1.5 })).toThrow(/task\.fence /);
    expect(parsePlanShardTask(JSON.stringify({ ...valid, fence: 1 })).fence).toBe(1);
  });

  it('refuses a taskId that is not shard-<n>', () => {
    for (const taskId of ['shard-', 'shard-x', 's-0', 'shard-0-1', 'xshard-0']) {
      expect(parse({ ...valid, taskId })).toThrow('invalid plan-shard task: task.taskId must be shard-<n>');
    }
    expect(parsePlanShardTask(JSON.stringify({ ...valid, taskId: 'shard-12' })).taskId).toBe('shard-12');
  });

  it('refuses a field it does not know (strict)', () => {
    expect(parse({ ...valid, extra: true })).toThrow(/^invalid plan-shard task: task .*extra/);
  });

  it('refuses a range with a key it does not know, naming task.range', () => {
    expect(parse({ ...valid, range: { after: 'a', before: 'z' } })).toThrow(
      /^invalid plan-shard task: task\.range .*before/,
    );
    expect(parse({ ...valid, range: { through: 7 } })).toThrow(/task\.range\.through /);
  });

  it('refuses a task without a jobId or range, naming each missing field', () => {
    const { jobId: _jobId, range: _range, ...rest } = valid;
    expect(parse(rest)).toThrow(/task\.jobId .*; task\.range /);
    expect(parse({ ...valid, jobId: '' })).toThrow(/task\.jobId /);
  });
});
