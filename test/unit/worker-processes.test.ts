import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WorkerFunctionError, WorkerProcesses } from '../../sandbox/worker-processes.js';

/** A handler that counts its invocations per process, and can fail or never answer. */
const HANDLER = `
let invocations = 0;
export const handler = async (event) => {
  invocations += 1;
  if (event.hang) await new Promise(() => setInterval(() => {}, 1000));
  if (event.fail) throw Object.assign(new Error('asked to fail'), { name: 'AskedError' });
  return { pid: process.pid, invocations, table: process.env.TABLE };
};
`;

let dir = '';
let processes: WorkerProcesses;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'worker-processes-'));
  await writeFile(join(dir, 'handler.mjs'), HANDLER);
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(() => processes?.stop());

const workers = () => {
  processes = new WorkerProcesses({
    copy: { modulePath: join(dir, 'handler.mjs'), exportName: 'handler', env: { TABLE: 'from-function' } },
  });
  return processes;
};
const event = (fields: object = {}) => ({ Records: [], ...fields }) as unknown as SQSEvent;
const context = (remainingMs = 60_000) => {
  const deadline = Date.now() + remainingMs;
  return {
    functionName: 'CopyWorkerFunction',
    awsRequestId: 'request',
    getRemainingTimeInMillis: () => deadline - Date.now(),
  } as Context;
};
type Answer = { pid: number; invocations: number; table: string };

describe('WorkerProcesses', () => {
  it('starts a child for the first invocation and reuses it, warm, for the next', async () => {
    const handle = workers().handler('copy', { TABLE: 'from-sandbox' });
    const first = (await handle(event(), context())) as Answer;
    const second = (await handle(event(), context())) as Answer;
    expect(second.pid).toBe(first.pid);
    expect([first.invocations, second.invocations]).toEqual([1, 2]);
    expect(first.table).toBe('from-sandbox');
    expect(processes.starts.copy).toBe(1);
  });

  it('runs invocations at the same time in separate children, one invocation per child', async () => {
    const handle = workers().handler('copy', {});
    const answers = (await Promise.all([handle(event(), context()), handle(event(), context())])) as Answer[];
    expect(new Set(answers.map((answer) => answer.pid)).size).toBe(2);
    expect(processes.starts.copy).toBe(2);
  });

  it('fails the invocation of a child killed mid-task, and starts a fresh child for the next', async () => {
    const handle = workers().handler('copy', {});
    const warm = (await handle(event(), context())) as Answer;
    processes.onInvoke = (invocation) => {
      processes.onInvoke = undefined;
      expect(invocation.kill()).toBe(true);
    };
    await expect(handle(event({ hang: true }), context())).rejects.toThrow(
      /exited \(SIGKILL\) mid-invocation/,
    );
    expect(processes.kills.copy).toBe(1);
    expect(processes.busy()).toEqual([]);
    const fresh = (await handle(event(), context())) as Answer;
    expect(fresh.pid).not.toBe(warm.pid);
    expect(fresh.invocations).toBe(1);
    expect(processes.alive('copy')).toBe(1);
  });

  it('kills an invocation that outlives its deadline, as Lambda times one out', async () => {
    const handle = workers().handler('copy', {});
    await expect(handle(event({ hang: true }), context(300))).rejects.toBeInstanceOf(WorkerFunctionError);
    expect(processes.kills.copy).toBe(1);
  });

  it('kills the child when the signal cuts the invocation short', async () => {
    const handle = workers().handler('copy', {});
    const cut = new AbortController();
    processes.onInvoke = () => cut.abort();
    await expect(handle(event({ hang: true }), context(), cut.signal)).rejects.toThrow(/SIGKILL/);
    expect(processes.kills.copy).toBe(1);
  });

  it("reports the function's error and keeps the child warm", async () => {
    const handle = workers().handler('copy', {});
    await expect(handle(event({ fail: true }), context())).rejects.toThrow('AskedError: asked to fail');
    const next = (await handle(event(), context())) as Answer;
    expect(next.invocations).toBe(2);
    expect(processes.starts.copy).toBe(1);
  });

  it('refuses a kind with no function', () => {
    expect(() => workers().handler('part', {})).toThrow('no worker function built for task kind "part"');
  });
});
