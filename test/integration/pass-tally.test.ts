/**
 * PassTally over real HTTP against the sandbox's DynamoDB Local: a fan-out pass ends exactly once, however
 * many workers settle its tasks at once and however often a task is delivered.
 */
import { randomBytes } from 'node:crypto';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LeaseLostError } from '../../functions/core/errors.js';
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
    expect(await pass.ended('last', new Date('2026-12-02T01:00:00.000Z'))).toBe(true);
    expect(await pass.abandon()).toBe(false);

    expect(await pass.read()).toEqual({
      outstanding: 0,
      state: 'ended',
      totals: { copied: 1 },
      startedAt,
      updatedAt: expect.any(String),
      endedBy: 'last',
      // What the next pass of a job that follows events judges missedByEvents from.
      finishedAt: '2026-12-02T01:00:00.000Z',
      // The claimer's deadline: Lambda's longest timeout when the caller gives none.
      endingUntil: expect.any(String),
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

  it('names no current pass before any, then the newest fence opened', async () => {
    const jobId = `pass-tally-current-${randomBytes(3).toString('hex')}`;
    const client = sandboxDynamo(sandbox);
    const table = sandbox.accountB.tableName;

    expect(await PassTally.current(client, table, jobId)).toBeUndefined();
    await new PassTally(client, table, jobId, 3).open(1, startedAt);
    expect(await PassTally.current(client, table, jobId)).toBe(3);
    await new PassTally(client, table, jobId, 5).open(1, startedAt);
    expect(await PassTally.current(client, table, jobId)).toBe(5);
  });

  it('refuses to open an older pass after a newer one, keeping the pointer on the newer fence', async () => {
    const jobId = `pass-tally-older-${randomBytes(3).toString('hex')}`;
    const client = sandboxDynamo(sandbox);
    const table = sandbox.accountB.tableName;
    const older = new PassTally(client, table, jobId, 4);
    await new PassTally(client, table, jobId, 5).open(1, startedAt);

    const refused = older.open(1, startedAt);

    await expect(refused).rejects.toThrow(PassExistsError);
    await expect(refused).rejects.toThrow(`a pass newer than pass#4 of job#${jobId} has started`);
    expect(await PassTally.current(client, table, jobId)).toBe(5);
    // One transaction: the refused pass was not created either.
    expect(await older.find()).toBeUndefined();
  });

  it('keeps the run id and job a pass was opened with, for every worker to read', async () => {
    const pass = tally();
    const job = { jobId: 'docs', source: { bucket: 'src' }, options: { fanOut: { mode: 'always' } } };
    await pass.open(2, startedAt, { runId: '20261202T000000Z-abc', job });

    expect(await pass.find()).toEqual({
      outstanding: 2,
      state: 'running',
      totals: {},
      startedAt,
      updatedAt: startedAt,
      runId: '20261202T000000Z-abc',
      job,
    });
  });

  it('finds no pass that was never opened', async () => {
    const pass = tally();

    expect(await pass.find()).toBeUndefined();
    await expect(pass.read()).rejects.toThrow(/pass#7 of job#pass-tally-\w+ does not exist/);
  });

  it('tells whether a task has settled', async () => {
    const pass = tally();
    await pass.open(2, startedAt);

    expect(await pass.isSettled('a')).toBe(false);
    await pass.settle('a');
    expect(await pass.isSettled('a')).toBe(true);
    expect(await pass.isSettled('b')).toBe(false);
  });

  it('lists every settled task with its counts and note, in task-id order', async () => {
    const pass = tally();
    await pass.open(3, startedAt);
    await pass.settle('c', { copied: 3 });
    await pass.settle('a', { copied: 1, failed: 1 }, { failedKeys: ['x/1'] });
    await pass.settle('b', {}, { warning: 'slow' });

    const settled = [];
    for await (const task of pass.settledTasks()) settled.push(task);

    expect(settled).toEqual([
      { taskId: 'a', counts: { copied: 1, failed: 1 }, note: { failedKeys: ['x/1'] } },
      { taskId: 'b', counts: {}, note: { warning: 'slow' } },
      { taskId: 'c', counts: { copied: 3 }, note: undefined },
    ]);
    expect(await pass.read()).toMatchObject({ outstanding: 0, totals: { copied: 4, failed: 1 } });
  });

  it('lists only its own settled tasks, not those of another pass of the job', async () => {
    const jobId = `pass-tally-own-${randomBytes(3).toString('hex')}`;
    const client = sandboxDynamo(sandbox);
    const table = sandbox.accountB.tableName;
    // Fence 1 and fence 10: "pass#1#task#" must not also match "pass#10#task#...".
    const first = new PassTally(client, table, jobId, 1);
    const tenth = new PassTally(client, table, jobId, 10);
    await first.open(1, startedAt);
    await tenth.open(1, startedAt);
    await first.settle('one');
    await tenth.settle('ten');

    const ids = [];
    for await (const task of first.settledTasks()) ids.push(task.taskId);

    expect(ids).toEqual(['one']);
  });

  it('grants exactly max deletions to a pass, one after another or all at once', async () => {
    const pass = tally();
    await pass.open(1, startedAt);
    expect(await pass.reserveDeletion('a', 2)).toBe(true);
    expect(await pass.reserveDeletion('b', 2)).toBe(true);
    expect(await pass.reserveDeletion('c', 2)).toBe(false);

    const concurrent = tally();
    await concurrent.open(1, startedAt);
    const granted = await Promise.all(
      ['k1', 'k2', 'k3', 'k4', 'k5'].map((key) => concurrent.reserveDeletion(key, 2)),
    );
    expect(granted.filter(Boolean)).toHaveLength(2);

    expect(await tally().reserveDeletion('a', 2)).toBe(false); // a pass never opened
  });

  it('grants a key reserved before again without counting it twice (a planner delivered again)', async () => {
    const pass = tally();
    await pass.open(1, startedAt);

    const twice = await Promise.all(['a', 'a', 'b', 'b'].map((key) => pass.reserveDeletion(key, 2)));

    expect(twice).toEqual([true, true, true, true]);
    expect(await pass.reserveDeletion('a', 2)).toBe(true);
    expect(await pass.reserveDeletion('c', 2)).toBe(false);
  });

  it('counts a recorded deletion once however many deliveries record it, with its ledger entry removed under the fence', async () => {
    const pass = tally();
    const doc = DynamoDBDocumentClient.from(sandboxDynamo(sandbox));
    const TableName = sandbox.accountB.tableName;
    const ledgerKey = (sk: string) => ({ pk: `ledger#${pass.jobId}`, sk });
    onTestFinished(async () => {
      for (const pk of [`job#${pass.jobId}`, `ledger#${pass.jobId}`]) {
        const { Items = [] } = await doc.send(
          new QueryCommand({
            TableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': pk },
          }),
        );
        for (const { sk } of Items) await doc.send(new DeleteCommand({ TableName, Key: { pk, sk } }));
      }
    });
    await pass.open(1, startedAt);
    await doc.send(new PutCommand({ TableName, Item: { ...ledgerKey('gone'), fence: pass.fence } }));
    await pass.reserveDeletion('gone', 5);

    const recorded = await Promise.all([pass.recordDeletion('gone'), pass.recordDeletion('gone')]);

    expect(recorded.sort()).toEqual([false, true]);
    expect(await pass.recordDeletion('gone')).toBe(false);
    expect((await pass.read()).totals).toEqual({ deleted: 1 });
    expect((await doc.send(new GetCommand({ TableName, Key: ledgerKey('gone') }))).Item).toBeUndefined();

    // A newer pass wrote the key: its entry stays, and nothing is counted.
    await doc.send(new PutCommand({ TableName, Item: { ...ledgerKey('back'), fence: pass.fence + 1 } }));
    await pass.reserveDeletion('back', 5);
    await expect(pass.recordDeletion('back')).rejects.toThrow(LeaseLostError);
    expect((await pass.read()).totals).toEqual({ deleted: 1 });
    expect((await doc.send(new GetCommand({ TableName, Key: ledgerKey('back') }))).Item).toBeDefined();
  });

  it("keeps an event's entry recorded after the plan read the key, counting nothing (issue 12)", async () => {
    const pass = tally();
    const doc = DynamoDBDocumentClient.from(sandboxDynamo(sandbox));
    const TableName = sandbox.accountB.tableName;
    const ledgerKey = (sk: string) => ({ pk: `ledger#${pass.jobId}`, sk });
    onTestFinished(async () => {
      for (const pk of [`job#${pass.jobId}`, `ledger#${pass.jobId}`]) {
        const { Items = [] } = await doc.send(
          new QueryCommand({
            TableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': pk },
          }),
        );
        for (const { sk } of Items) await doc.send(new DeleteCommand({ TableName, Key: { pk, sk } }));
      }
    });
    await pass.open(1, startedAt);
    const read = 'A'.repeat(64);
    const later = 'B'.repeat(64);
    // The plan read the key at `read`; an event re-created it since and recorded its copy at `later`.
    await doc.send(
      new PutCommand({
        TableName,
        Item: { ...ledgerKey('recreated'), fence: pass.fence, etag: '"new"', sequencer: later },
      }),
    );
    await pass.reserveDeletion('recreated', 5);

    const recorded = await pass.recordDeletion('recreated', read);

    expect(recorded).toMatchObject({ key: 'recreated', etag: '"new"', sequencer: later });
    expect((await pass.read()).totals).toEqual({});
    expect((await doc.send(new GetCommand({ TableName, Key: ledgerKey('recreated') }))).Item).toMatchObject({
      sequencer: later,
    });
  });

  it('abandons a running pass, which then cannot end, and does not abandon an ended one', async () => {
    const running = tally();
    await running.open(1, startedAt);
    await running.settle('only');

    expect(await running.abandon()).toBe(true);
    expect((await running.read()).state).toBe('abandoned');
    expect(await running.claimEnd('late')).toBe(false);
    expect(await running.read()).toMatchObject({ state: 'abandoned', outstanding: 0 });
    expect((await running.read()).endedBy).toBeUndefined();

    const ending = tally();
    await ending.open(1, startedAt);
    await ending.settle('only');
    expect(await ending.claimEnd('w')).toBe(true);
    expect(await ending.abandon()).toBe(true);
    expect(await ending.ended('w')).toBe(false);

    const ended = tally();
    await ended.open(1, startedAt);
    await ended.settle('only');
    await ended.claimEnd('w');
    await ended.ended('w');
    expect(await ended.abandon()).toBe(false);
    expect((await ended.read()).state).toBe('ended');

    expect(await tally().abandon()).toBe(false); // a pass never opened
  });

  it("lets another worker take over an end only once its claimer's deadline has passed, and only one", async () => {
    const pass = tally();
    await pass.open(1, startedAt);
    await pass.settle('only');
    const deadline = new Date(Date.now() + 60_000);
    expect(await pass.claimEnd('claimer', deadline)).toBe(true);
    expect((await pass.read()).endingUntil).toBe(deadline.toISOString());

    const later = new Date(Date.now() + 120_000);
    expect(await pass.takeOverEnd('early', 'claimer', later)).toBe(false);
    expect(await pass.takeOverEnd('wrong-claimer', 'someone', later, later)).toBe(false);
    const [first, second] = await Promise.all([
      pass.takeOverEnd('taker-1', 'claimer', later, new Date(deadline.getTime() + 1)),
      pass.takeOverEnd('taker-2', 'claimer', later, new Date(deadline.getTime() + 1)),
    ]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
    const taker = first ? 'taker-1' : 'taker-2';
    expect(await pass.read()).toMatchObject({
      state: 'ending',
      endedBy: taker,
      endingUntil: later.toISOString(),
    });
    expect(await pass.ended('claimer')).toBe(false);
    expect(await pass.ended(taker)).toBe(true);
  });

  it('moves updatedAt to the time a task settled, not before the pass started', async () => {
    const pass = tally();
    const opened = new Date(Date.now() - 60_000).toISOString();
    await pass.open(2, opened);
    expect((await pass.read()).updatedAt).toBe(opened);

    const before = new Date().toISOString();
    await pass.settle('a');
    const after = new Date().toISOString();

    const { startedAt: started, updatedAt } = await pass.read();
    expect(started).toBe(opened);
    expect(updatedAt >= started).toBe(true);
    expect(updatedAt >= before && updatedAt <= after).toBe(true);
  });

  it('marks every item of a pass for DynamoDB to purge 30 days on, and not the current-pass pointer', async () => {
    const jobId = `pass-tally-${randomBytes(3).toString('hex')}`;
    const client = sandboxDynamo(sandbox);
    const pass = new PassTally(client, sandbox.accountB.tableName, jobId, 3);
    await pass.open(1, startedAt);
    await pass.expect('planner', 1);
    await pass.settle('task');
    await pass.reserveDeletion('gone.csv', 5);

    const { Items = [] } = await DynamoDBDocumentClient.from(client).send(
      new QueryCommand({
        TableName: sandbox.accountB.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `job#${jobId}` },
      }),
    );
    const purgeAt = Object.fromEntries(Items.map((item) => [item.sk, item.purgeAt]));
    const days = (seconds: number) => (seconds - Date.now() / 1000) / 86_400;
    expect(Object.keys(purgeAt).sort()).toEqual([
      'current-pass',
      'pass#3',
      'pass#3#announce#planner',
      'pass#3#delete#gone.csv',
      'pass#3#task#task',
    ]);
    expect(purgeAt['current-pass']).toBeUndefined();
    for (const sk of Object.keys(purgeAt).filter((key) => key !== 'current-pass')) {
      expect(days(purgeAt[sk]), sk).toBeGreaterThan(29.9);
      expect(days(purgeAt[sk]), sk).toBeLessThan(30.1);
    }
  });
});
