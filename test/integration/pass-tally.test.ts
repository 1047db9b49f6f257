/**
 * PassTally over real HTTP against the sandbox's DynamoDB Local: a fan-out pass ends exactly once, however
 * many workers settle its tasks at once and however often a task is delivered.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PassEndedError, PassExistsError, PassTally } from '../../functions/core/state/pass-tally.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import { useSandbox } from './helpers.js';

const { sandbox } = useSandbox();
const tally = (fence = 7) =>
  new PassTally(
    sandboxDynamo(sandbox),
    sandbox.accountB.tableName,
    `pass-tally-${randomBytes(3).toString('hex')}`,
    fence,
  );
const startedAt = '2026-12-02T00:00:00.000Z';

describe('PassTally: the outstanding tasks and totals of one fan-out pass (DynamoDB Local)', () => {
  it('ends exactly once when many workers settle tasks at once, some of them twice, with exact totals', async () => {
    const pass = tally();
    await pass.open(1, startedAt);
    await pass.expect('planner-0', 40);
    await pass.settle('planner', { listed: 40 });
    const deliveries = Array.from({ length: 40 }, (_, i) => `copy-${i}`).flatMap((id, i) =>
      i % 4 === 0 ? [id, id] : [id],
    );

    const results = await Promise.all(
      deliveries.map(async (id, worker) => {
        const settled = await pass.settle(id, { copied: 1, bytes: 100 });
        const ended = settled.outstanding === 0 ? await pass.claimEnd(`worker-${worker}`) : false;
        return { ...settled, ended };
      }),
    );

    expect(results.filter((result) => result.duplicate)).toHaveLength(10);
    expect(results.filter((result) => result.ended)).toHaveLength(1);
    const state = await pass.read();
    expect(state).toMatchObject({
      outstanding: 0,
      state: 'ending',
      totals: { listed: 40, copied: 40, bytes: 4000 },
    });
    expect(state.endedBy).toMatch(/^worker-\d+$/);
  });

  it('does not end while a task is outstanding, and counts a redelivered task once', async () => {
    const pass = tally();
    await pass.open(2, startedAt);

    expect(await pass.settle('a', { copied: 1 })).toEqual({ duplicate: false, outstanding: 1 });
    expect(await pass.claimEnd('early')).toBe(false);
    expect(await pass.settle('a', { copied: 1 })).toEqual({ duplicate: true, outstanding: 1 });
    expect(await pass.settle('b')).toEqual({ duplicate: false, outstanding: 0 });
    expect(await pass.claimEnd('last')).toBe(true);
    expect(await pass.claimEnd('again')).toBe(false);
    expect(await pass.read()).toMatchObject({ state: 'ending', endedBy: 'last' });
    expect(await pass.ended('again')).toBe(false);
    expect(await pass.ended('last')).toBe(true);
    expect(await pass.abandon()).toBe(false);

    expect(await pass.read()).toEqual({
      outstanding: 0,
      state: 'ended',
      totals: { copied: 1 },
      startedAt,
      updatedAt: expect.any(String),
      endedBy: 'last',
    });
  });

  it('keeps the planner counted until it settles, so tasks it announced cannot end the pass early', async () => {
    const pass = tally();
    await pass.open(1, startedAt);
    await pass.expect('planner-0', 1);
    await pass.expect('planner-0', 1); // the planner delivered again announces the same task

    expect((await pass.settle('copy')).outstanding).toBe(1);
    expect(await pass.claimEnd('copier')).toBe(false);
    expect((await pass.settle('planner')).outstanding).toBe(0);
    expect(await pass.claimEnd('planner')).toBe(true);
  });

  it('refuses to open a pass twice, to announce tasks after it ended, and to settle a task of a pass never opened', async () => {
    const pass = tally();
    await pass.open(1, startedAt);
    await expect(pass.open(1, startedAt)).rejects.toThrow(PassExistsError);
    await expect(pass.open(1, startedAt)).rejects.toThrow(/pass#7 of job#pass-tally-\w+ is already open/);
    await pass.settle('only');
    await pass.claimEnd('w');

    await expect(pass.expect('late', 1)).rejects.toThrow(PassEndedError);
    expect((await pass.read()).outstanding).toBe(0);
    await expect(tally().settle('orphan')).rejects.toThrow(/ConditionalCheckFailed|cancel/i);
  });

  it('refuses a count name that is not letters only, before writing anything', async () => {
    const pass = tally();
    await pass.open(1, startedAt);

    await expect(pass.settle('t', { 'copied.bytes': 1 })).rejects.toThrow(
      'a pass count is named with letters only, got "copied.bytes"',
    );
    expect((await pass.read()).outstanding).toBe(1);
  });

  it('keeps the passes of one job apart by fence', async () => {
    const jobId = `pass-tally-fences-${randomBytes(3).toString('hex')}`;
    const older = new PassTally(sandboxDynamo(sandbox), sandbox.accountB.tableName, jobId, 1);
    const newer = new PassTally(sandboxDynamo(sandbox), sandbox.accountB.tableName, jobId, 2);
    await older.open(1, startedAt);
    await newer.open(2, startedAt);

    await older.settle('same-task-id', { copied: 1 });
    expect(await newer.settle('same-task-id', { copied: 5 })).toEqual({ duplicate: false, outstanding: 1 });

    expect(await older.read()).toMatchObject({ outstanding: 0, totals: { copied: 1 } });
    expect(await newer.read()).toMatchObject({ outstanding: 1, totals: { copied: 5 } });
  });
});
