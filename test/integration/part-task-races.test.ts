/**
 * Two deliveries of one part task, interleaved step by step (docs/fan-out.md, "Part tasks"): the order
 * that made fan-out-parts' "24 MiB as 3 parts, every delivery twice" end a pass "complete" without its giant
 * object (2 runs in 10 on a loaded machine), held here with gates, over real HTTP (moto S3, DynamoDB
 * Local). The part tasks are captured, not queued, and each delivery is one call of runPartTask.
 *
 * The race: part task T2's first delivery records its part while part 3 is still missing, so it settles T2
 * with nothing ("the last part's delivery counts the object"); its second delivery, which passed its
 * `isSettled` check before that, finds every part recorded once part 3 is, claims the completion for T2,
 * completes the object, and settles T2 again with `copied: 1`: a duplicate, so the count is lost, and the
 * pass (nothing outstanding) ends without the object. The mirror order: the second delivery claims first,
 * and the first, on its stale read, settles T2 with nothing before the claimer settles it.
 */

import { describe, expect, it } from 'vitest';
import { partCopierFor } from '../../functions/core/copy/copy-method.js';
import type { PartTask } from '../../functions/core/dispatch/part-tasks.js';
import { versionId } from '../../functions/core/dispatch/part-tasks.js';
import { partUploadsOf } from '../../functions/core/fanout/open-part-upload.js';
import { type OpenPass, PassOpener } from '../../functions/core/fanout/open-pass.js';
import { runPartTask } from '../../functions/core/fanout/part-task.js';
import { planShard } from '../../functions/core/fanout/plan-shard.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import type { PassTally } from '../../functions/core/state/pass-tally.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { isolatedJob, passEnded, putObject, readObject, useSandbox } from './helpers.js';
import { bytesOf, capturingTasks, ledgerOf, openUploads, sha, workerControl } from './part-task-helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const MiB = 1024 * 1024;
const log = consoleLogger('error');

/** A promise and its resolver: a gate a test opens, or a signal a delivery gives. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * A pass opener whose passes' tally holds `method` (after it ran, for `isSettled`; before, for `settle`)
 * until `release` opens: `reached` opens when a delivery gets there.
 */
function holding(
  passes: PassOpener,
  method: 'isSettled' | 'settle',
  reached: () => void,
  release: Promise<void>,
) {
  const open = async (jobId: string, fence: number): Promise<OpenPass> => {
    const pass = await passes.open(jobId, fence);
    const tally = new Proxy(pass.tally, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== 'function') return value;
        if (name !== method) return value.bind(target);
        return async (...args: unknown[]) => {
          if (method === 'settle') {
            reached();
            await release;
            return value.apply(target, args);
          }
          const result = await value.apply(target, args);
          reached();
          await release;
          return result;
        };
      },
    }) as PassTally;
    return { ...pass, tally };
  };
  return { open } as unknown as PassOpener;
}

/** A giant object's pass, planned: its 3 part tasks captured, in part order. */
async function plannedGiant(name: string) {
  const job = isolatedJob(sandbox, name, {
    options: { fanOut: { mode: 'always', partTasksAbove: 5 * MiB } },
  });
  const giant = bytesOf(24 * MiB, 11);
  await putObject(producer, job.source.bucket, `${job.source.prefix}giant.bin`, giant);
  const { fanOutDeps, sent } = capturingTasks(deps);
  const started = await startPass(fanOutDeps, job, { log });
  expect(started).toMatchObject({ status: 'started' });
  const { fence } = started as { fence: number };
  const passes = new PassOpener(fanOutDeps);
  for (const shard of sent.shards) await planShard(passes, shard, workerControl('planner'));
  expect(sent.copies).toEqual([]);
  const parts = [...sent.parts].sort((a, b) => a.partNumber - b.partNumber);
  expect(parts).toHaveLength(3);
  return { job, giant, fence, fanOutDeps, passes, parts };
}

/** Part `task` uploaded and recorded, as its delivery does before it looks for a completion to claim. */
async function recordPartOnly(passes: PassOpener, task: PartTask) {
  const pass = await passes.open(task.jobId, task.fence);
  const upload = await partUploadsOf(pass).find(versionId(task.key, task.etag));
  if (!upload) throw new Error('no upload on record');
  const part = await partCopierFor(pass.job)(
    { sourceS3: pass.source.s3, destinationS3: pass.deps.destinationS3 },
    {
      sourceBucket: pass.job.source.bucket,
      key: task.key,
      etag: task.etag,
      size: task.size,
      destinationBucket: pass.job.destination.bucket,
      destinationKey: upload.destinationKey,
      uploadId: upload.uploadId,
      partNumber: task.partNumber,
      range: task.range,
    },
  );
  await partUploadsOf(pass).recordPart(versionId(task.key, task.etag), part);
}

/** The pass ended with the giant object counted copied once, there byte for byte, nothing left open. */
async function expectCountedOnce(planned: Awaited<ReturnType<typeof plannedGiant>>) {
  const { job, giant, fence, fanOutDeps } = planned;
  const run = await passEnded(fanOutDeps, job, fence);
  expect(run).toMatchObject({ status: 'complete', copied: 1, failed: 0, bytes: giant.length });
  const copy = await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`);
  expect(sha(copy)).toBe(sha(giant));
  const [entry] = await ledgerOf(deps, job);
  expect(entry).toMatchObject({ key: `${job.source.prefix}giant.bin`, size: giant.length });
  expect(await openUploads(consumer, job)).toEqual([]);
}

describe('part tasks: two deliveries of one task, interleaved', () => {
  it('counts the object when a delivery claims the completion for a task its other delivery settled', async () => {
    const planned = await plannedGiant('parts-settled-then-claimed');
    const { passes, parts } = planned;
    const [t1, t2, t3] = parts as [PartTask, PartTask, PartTask];
    expect(await runPartTask(passes, t1, workerControl('t1'))).toBe('settled');

    // T2's second delivery passes its isSettled check, and waits there.
    const reached = gate();
    const release = gate();
    const second = runPartTask(
      holding(passes, 'isSettled', reached.open, release.opened),
      t2,
      workerControl('t2-b'),
    );
    await reached.opened;
    // T2's first delivery: part 3 still missing, it settles T2 with nothing.
    expect(await runPartTask(passes, t2, workerControl('t2-a'))).toBe('settled');
    // Part 3's delivery records its part (and would go on to claim the completion).
    await recordPartOnly(passes, t3);
    release.open();
    // T2 settled already: its second delivery has nothing to count, so it must not take the completion.
    expect(await second).toBe('duplicate');
    // Part 3's delivery goes on: it completes the object and counts it.
    expect(await runPartTask(passes, t3, workerControl('t3'))).toBe('settled');

    await expectCountedOnce(planned);
  });

  it('counts the object when a delivery settles on a stale read after its other delivery claimed the completion', async () => {
    const planned = await plannedGiant('parts-claimed-then-settled');
    const { passes, parts } = planned;
    const [t1, t2, t3] = parts as [PartTask, PartTask, PartTask];
    expect(await runPartTask(passes, t1, workerControl('t1'))).toBe('settled');

    // T2's first delivery records part 2 while part 3 is missing, and is held as it settles with nothing.
    const firstReached = gate();
    const firstRelease = gate();
    const first = runPartTask(
      holding(passes, 'settle', firstReached.open, firstRelease.opened),
      t2,
      workerControl('t2-a'),
    );
    await firstReached.opened;
    await recordPartOnly(passes, t3);
    // T2's second delivery finds every part recorded, claims the completion for T2, completes the object,
    // and is held as it settles T2 with the object.
    const secondReached = gate();
    const secondRelease = gate();
    const second = runPartTask(
      holding(passes, 'settle', secondReached.open, secondRelease.opened),
      t2,
      workerControl('t2-b'),
    );
    await secondReached.opened;
    firstRelease.open();
    const outcomes = [await first];
    secondRelease.open();
    outcomes.push(await second);
    // One of the two settled T2 (with the object), the other found it settled.
    expect(outcomes.sort()).toEqual(['duplicate', 'settled']);
    expect(await runPartTask(passes, t3, workerControl('t3'))).toBe('settled');

    await expectCountedOnce(planned);
  });
});
