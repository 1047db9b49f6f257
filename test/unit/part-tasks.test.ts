import { describe, expect, it } from 'vitest';
import {
  type PartTask,
  parsePartTask,
  partTaskId,
  partTasks,
  versionId,
} from '../../functions/core/dispatch/part-tasks.js';
import { TaskValidationError } from '../../functions/core/dispatch/task-message.js';

const MiB = 1024 * 1024;
const source = {
  jobId: 'docs',
  fence: 7,
  pass: '20261203T060000Z-abc',
  key: 'big/ü.bin',
  etag: '"0123456789abcdef0123456789abcdef"',
  size: 24 * MiB + 3,
  uploadId: 'up-1',
  partSize: 8 * MiB,
};

describe('partTasks: a giant object cut into part tasks', () => {
  it('covers every byte once, in parts of partSize and a last one with the rest', () => {
    const tasks = partTasks(source);

    expect(tasks.map((task) => [task.partNumber, task.range.start, task.range.end])).toEqual([
      [1, 0, 8 * MiB - 1],
      [2, 8 * MiB, 16 * MiB - 1],
      [3, 16 * MiB, 24 * MiB - 1],
      [4, 24 * MiB, 24 * MiB + 2],
    ]);
    expect(tasks[0]).toEqual({
      kind: 'part',
      jobId: 'docs',
      fence: 7,
      pass: source.pass,
      taskId: partTaskId(source.key, source.etag, 1),
      key: source.key,
      etag: source.etag,
      size: source.size,
      uploadId: 'up-1',
      partNumber: 1,
      range: { start: 0, end: 8 * MiB - 1 },
    });
  });

  it('gives the same ids to the same version, and other ids to another ETag or key', () => {
    const ids = partTasks(source).map((task) => task.taskId);

    expect(partTasks({ ...source, uploadId: 'another' }).map((task) => task.taskId)).toEqual(ids);
    expect(new Set(ids).size).toBe(4);
    expect(versionId(source.key, '"other"')).not.toBe(versionId(source.key, source.etag));
    expect(versionId('big/u.bin', source.etag)).not.toBe(versionId(source.key, source.etag));
    // The separator keeps "ab"+"c" apart from "a"+"bc".
    expect(versionId('ab', 'c')).not.toBe(versionId('a', 'bc'));
    expect(ids[0]).toMatch(/^part-[\w-]{22}-1$/);
  });

  it('leaves uploadId out when the sender does not know it', () => {
    const [task] = partTasks({ ...source, uploadId: undefined });

    expect(task).not.toHaveProperty('uploadId');
  });
});

describe('parsePartTask: a worker reads a part message', () => {
  const [task] = partTasks(source) as [PartTask];
  const body = (over: Record<string, unknown>) => JSON.stringify({ ...task, ...over });

  it('reads back exactly what partTasks sent', () => {
    for (const sent of partTasks(source)) expect(parsePartTask(JSON.stringify(sent))).toEqual(sent);
  });

  it('names what is wrong with a message that is not a part task', () => {
    expect(() => parsePartTask('nope')).toThrow(
      new TaskValidationError('a part task is a JSON object; the message body is not JSON: nope'),
    );
    expect(() => parsePartTask(body({ partNumber: 0 }))).toThrow(/invalid part task: task\.partNumber /);
    expect(() => parsePartTask(body({ partNumber: 10_001 }))).toThrow(/task\.partNumber /);
    expect(() => parsePartTask(body({ range: { start: 10, end: 9 } }))).toThrow(
      'invalid part task: task.range ends (9) before it starts (10)',
    );
    expect(() => parsePartTask(body({ range: { start: 0, end: source.size } }))).toThrow(
      `invalid part task: task.range.end is past the object's last byte (${source.size - 1})`,
    );
    expect(() => parsePartTask(body({ etag: '"changed"' }))).toThrow(
      'invalid part task: task.taskId is not the id of part 1 of this key and ETag',
    );
    expect(() => parsePartTask(body({ extra: 1 }))).toThrow(/task .*extra/);
    expect(() => parsePartTask(body({ kind: 'copy' }))).toThrow(/task\.kind /);
  });
});
