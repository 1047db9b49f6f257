/**
 * A fan-out pass whose end no delivery will write: the worker ending it (or the one that settled its last
 * task, before claiming the end) is killed outright, and its message, out of receives, goes to the
 * dead-letter queue. The next scheduled start ends that pass, as its ender would have (manifest,
 * `_SUCCESS`, run record, run event, once), instead of answering `busy` for 30 minutes and then
 * abandoning it. Workers run as the bundled functions in child processes (sandbox/worker-processes.ts);
 * the fault proxy holds the victim at the chosen request so the kill lands there every time.
 */
import { CreateBucketCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import { runFolder } from '../../functions/core/report/run-manifest.js';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import { sandboxSqs } from '../../sandbox/clients.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import type { FaultProxy, FaultRule } from '../../sandbox/fault-proxy.js';
import type { WorkerProcesses } from '../../sandbox/worker-processes.js';
import {
  isolatedJob,
  listKeys,
  type ProcessFanOut,
  processFanOut,
  putObject,
  readObject,
  runEvents,
  until,
  useSandbox,
  versionCounts,
} from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
/** Versioned: a marker or manifest written twice shows as two versions. */
const DESTINATION = 'accountb-fan-out-end';
/** The workers' timeout: a killed ender's claim lapses this long after its invocation started. */
const FUNCTION_TIMEOUT_MS = 20_000;

let proxy: FaultProxy;
let processes: WorkerProcesses;
let fanOut: LocalFanOut;
let local: ProcessFanOut | undefined;

beforeAll(async () => {
  await consumer.send(new CreateBucketCommand({ Bucket: DESTINATION })).catch(() => {});
  await consumer.send(
    new PutBucketVersioningCommand({ Bucket: DESTINATION, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  // One receive per message: a killed worker's message goes to the dead-letter queue, not back to work.
  local = await processFanOut(sandbox, deps, {
    workers: 2,
    visibilityTimeoutSeconds: 2,
    maxReceiveCount: 1,
    functionTimeoutMs: FUNCTION_TIMEOUT_MS,
  });
  ({ proxy, processes, fanOut } = local);
});
afterEach(() => proxy.reset());
afterAll(() => local?.stop());

function endJob(name: string): Job {
  const job = isolatedJob(sandbox, name, {
    options: { concurrency: 2, fanOut: { mode: 'always', keysPerShard: 1000 } },
  });
  return parseJob({ ...job, destination: { ...job.destination, bucket: DESTINATION } });
}

async function start(job: Job): Promise<PassStart> {
  return (await handleEvent(fanOut.deps, job)) as PassStart;
}

/** Messages in the dead-letter queues (they stay there: each test's job is its own). */
async function deadLettered(): Promise<number> {
  const sqs = sandboxSqs(sandbox, sandbox.accountB.admin);
  let found = 0;
  for (const QueueUrl of [fanOut.deadLetterUrls.planShard, fanOut.deadLetterUrls.copy]) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
    );
    found += Messages.length;
  }
  return found;
}

describe('a pass whose ending message went to the dead-letter queue', () => {
  it.each<{ victim: string; rule: FaultRule; state: string }>([
    {
      victim: 'the worker that claimed the end',
      // The end's first write never gets an answer: its worker is held after claiming the end.
      rule: { service: 's3', key: 'manifest\\.jsonl$', count: 1, fault: { type: 'hang' } },
      state: 'ending',
    },
    {
      victim: 'the worker that settled the last task, before it claimed the end',
      // The workers' first UpdateItem is the claim of the end: the last settler is held there.
      rule: { service: 'dynamodb', operation: 'UpdateItem', count: 1, fault: { type: 'hang' } },
      state: 'running',
    },
  ])(
    'is ended by the next start when $victim is killed',
    async ({ rule, state }) => {
      const job = endJob(`dead-lettered-${state}`);
      const keys = ['a', 'b', 'c'].map((name) => `${job.source.prefix}${name}`);
      for (const key of keys) await putObject(producer, sandbox.accountA.bucket, key, `body of ${key}`);
      proxy.setRules([rule]);
      const first = await start(job);
      if (first.status !== 'started') throw new Error(`no pass started: ${JSON.stringify(first)}`);
      const pass = new PassTally(deps.state.client, deps.state.tableName, job.jobId, first.fence);

      await until(
        'victim held',
        async () => proxy.counts().total,
        (n) => n > 0,
      );
      expect(processes.busy().filter((invocation) => invocation.kill()).length).toBeGreaterThan(0);
      await until('message dead-lettered', deadLettered, (n) => n > 0);
      // Nobody ends the pass now; once the victim's claim (if any) has lapsed, the next start may.
      const stuck = await pass.read();
      expect([stuck.state, stuck.outstanding]).toEqual([state, 0]);
      await until(
        'claim lapsed',
        async () => Date.now(),
        (now) => now > Date.parse(stuck.endingUntil ?? '0'),
      );

      const next = await start(job);

      expect(next).toMatchObject({ status: 'started', fence: first.fence + 1 });
      const ended = await pass.read();
      expect(ended.state).toBe('ended');
      expect(ended.endedBy).toMatch(/^starter-/);
      const folder = runFolder(job.options.manifestPrefix, job.jobId, first.runId);
      const manifest = (await readObject(consumer, DESTINATION, `${folder}manifest.jsonl`)).toString();
      expect(
        manifest
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line).sourceKey)
          .sort(),
      ).toEqual(keys);
      const written = await versionCounts(consumer, DESTINATION, folder);
      expect(written.get(`${folder}manifest.jsonl`)).toBe(1);
      expect(written.get(`${folder}_SUCCESS`)).toBe(1);
      expect((await listKeys(consumer, DESTINATION, folder)).sort()).toEqual([
        `${folder}_SUCCESS`,
        `${folder}manifest.jsonl`,
      ]);
      const runs = await deps.state.recentRuns(job.jobId);
      expect(runs.filter((run) => run.runId === first.runId)).toMatchObject([
        { copied: 3, status: 'complete' },
      ]);
      expect(await runEvents(sandbox, first.runId)).toBe(1);
      // The new pass finds nothing to copy and ends as usual.
      const nextPass = new PassTally(deps.state.client, deps.state.tableName, job.jobId, first.fence + 1);
      await until(
        'next pass ended',
        () => nextPass.read(),
        (stored) => stored.state === 'ended',
      );
    },
    180_000,
  );
});
