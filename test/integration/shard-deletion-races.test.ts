/**
 * Two deliveries of one shard planner of a mirror job, interleaved with gates over real HTTP (moto S3,
 * DynamoDB Local): the order that made fan-out's "carries deletions from every shard under one
 * maxDeletesPerRun cap" report `deleted: 4` for 5 deletions, now and then (docs/fan-out.md, "Tasks").
 *
 * The race: one delivery deletes a key gone at the source (destination copy and ledger entry) and is slow to
 * settle; its twin, whose ledger read came after, finds nothing to delete and settles the shard first with
 * `deleted: 0`; the first one's settlement is then a duplicate, and the deletion it made is never counted.
 * The run's totals must come from the ledger changes, not from whichever delivery settles (issue 11).
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { CopyTask } from '../../functions/core/dispatch/copy-tasks.js';
import type { PlanShardTask } from '../../functions/core/dispatch/shard-tasks.js';
import { runCopyTask } from '../../functions/core/fanout/copy-task.js';
import { type OpenPass, PassOpener } from '../../functions/core/fanout/open-pass.js';
import { planShard } from '../../functions/core/fanout/plan-shard.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { forgetJobWhenDone } from './event-helpers.js';
import { isolatedJob, listKeys, passEnded, putObject, useSandbox } from './helpers.js';
import { ledgerOf } from './part-task-helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const log = consoleLogger('error');

/** A promise and its resolver: a gate a test opens, or a signal a delivery gives. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

function control(worker: string) {
  return { log, worker, signal: new AbortController().signal };
}

/** The queues of a fan-out deployment, capturing what is sent instead of queueing it. */
function capturing() {
  const sent = { shards: [] as PlanShardTask[], copies: [] as CopyTask[] };
  const fanOutDeps = {
    ...deps,
    queues: {
      planShard: async (task: PlanShardTask) => void sent.shards.push(task),
      copy: async (task: CopyTask) => void sent.copies.push(task),
    },
  };
  return { sent, fanOutDeps };
}

/**
 * A mirror job whose first pass copied a, b and c, and whose source has lost b since; its second pass
 * started, with its one shard's planner task captured, not run.
 */
async function secondPassWithOneDeletion(name: string) {
  const job = isolatedJob(sandbox, name, {
    options: { mirror: true, maxDeletesPerRun: 5, fanOut: { mode: 'always' } },
  });
  forgetJobWhenDone(deps, job.jobId);
  const key = (name: string) => `${job.source.prefix}${name}.txt`;
  for (const name of ['a', 'b', 'c']) await putObject(producer, job.source.bucket, key(name), name);

  const first = capturing();
  const firstStart = await startPass(first.fanOutDeps, job, { log });
  expect(firstStart).toMatchObject({ status: 'started' });
  const firstPasses = new PassOpener(first.fanOutDeps);
  for (const shard of first.sent.shards) await planShard(firstPasses, shard, control('planner'));
  for (const copy of first.sent.copies) await runCopyTask(firstPasses, copy, control('copier'));
  const { fence: firstFence } = firstStart as { fence: number };
  expect(await passEnded(first.fanOutDeps, job, firstFence)).toMatchObject({ copied: 3 });

  await producer.send(new DeleteObjectCommand({ Bucket: job.source.bucket, Key: key('b') }));
  const second = capturing();
  const started = await startPass(second.fanOutDeps, job, { log });
  expect(started).toMatchObject({ status: 'started' });
  expect(second.sent.shards).toHaveLength(1);
  const [shard] = second.sent.shards as [PlanShardTask];
  return { job, shard, fanOutDeps: second.fanOutDeps, fence: (started as { fence: number }).fence };
}

/** A pass opener whose passes' tally holds `settle` until `release` opens; `reached` opens when it gets there. */
function holdingSettlement(passes: PassOpener, reached: () => void, release: Promise<void>): PassOpener {
  const open = async (jobId: string, fence: number): Promise<OpenPass> => {
    const pass = await passes.open(jobId, fence);
    const tally = new Proxy(pass.tally, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== 'function') return value;
        if (name !== 'settle') return value.bind(target);
        return async (...args: unknown[]) => {
          reached();
          await release;
          return value.apply(target, args);
        };
      },
    }) as PassTally;
    return { ...pass, tally };
  };
  return { open } as unknown as PassOpener;
}

/** The pass ended with b deleted once and counted once: gone from the destination and the ledger. */
async function expectDeletedOnce(planned: Awaited<ReturnType<typeof secondPassWithOneDeletion>>) {
  const { job, fanOutDeps, fence } = planned;
  expect(await passEnded(fanOutDeps, job, fence)).toMatchObject({ status: 'complete', deleted: 1 });
  // Both deliveries are done by now: the pass's own total (not only the run record written at its end).
  const pass = new PassTally(deps.state.client, deps.state.tableName, job.jobId, fence);
  expect((await pass.read()).totals).toMatchObject({ deleted: 1 });
  const left = await listKeys(consumer, job.destination.bucket, job.destination.prefix);
  expect(left.sort()).toEqual([`${job.destination.prefix}a.txt`, `${job.destination.prefix}c.txt`]);
  expect((await ledgerOf(deps, job)).map((entry) => entry.key)).toEqual([
    `${job.source.prefix}a.txt`,
    `${job.source.prefix}c.txt`,
  ]);
}

describe('shard planners: two deliveries of one mirror shard, interleaved', () => {
  it('counts a deletion whose delivery settles after its twin settled the shard without seeing the key', async () => {
    const planned = await secondPassWithOneDeletion('shard-deleted-then-twin-settled');
    const { fanOutDeps, shard } = planned;
    // The first delivery deletes b (destination copy, ledger entry) and is held as it settles.
    const reached = gate();
    const release = gate();
    const first = planShard(
      holdingSettlement(new PassOpener(fanOutDeps), reached.open, release.opened),
      shard,
      control('planner-a'),
    );
    await reached.opened;
    // Its twin reads the ledger after: b is gone, nothing to delete. It settles the shard and ends the pass.
    expect(await planShard(new PassOpener(fanOutDeps), shard, control('planner-b'))).toBe(true);
    release.open();
    expect(await first).toBe(false);

    await expectDeletedOnce(planned);
  });

  it('counts a deletion once when both deliveries delete the key and the later one records it last', async () => {
    const planned = await secondPassWithOneDeletion('shard-both-deleted');
    const { fanOutDeps, shard } = planned;
    // The first delivery's destination client holds it once its DeleteObject of b is done, before the
    // deletion is recorded in the ledger.
    const reached = gate();
    const release = gate();
    const heldS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
    heldS3.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'DeleteObjectCommand') {
          reached.open();
          await release.opened;
        }
        return result;
      },
      { step: 'initialize', name: 'holdAfterDelete' },
    );
    const first = planShard(
      new PassOpener({ ...fanOutDeps, destinationS3: heldS3 }),
      shard,
      control('planner-a'),
    );
    await reached.opened;
    // Its twin still finds b in the ledger: it deletes b too, records it, settles and ends the pass.
    expect(await planShard(new PassOpener(fanOutDeps), shard, control('planner-b'))).toBe(true);
    release.open();
    expect(await first).toBe(false);

    await expectDeletedOnce(planned);
  });
});
