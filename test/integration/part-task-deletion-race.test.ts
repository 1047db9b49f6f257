/**
 * A giant object's part tasks and an event deleting the same key, over real HTTP (moto S3 + DynamoDB
 * Local): the key is deleted at the source after the pass planned it as parts, and its Object Deleted
 * event marks the key, deletes the copy on record and is held before its last ledger write while the
 * completer completes and records (docs/event-driven.md, "Deletions and writers of the same bytes").
 * The key is left to the deletion: its mark stays, the pass counts it skipped, and the destination
 * agrees with the ledger. Tasks are captured and run as in part-task-event-race.test.ts.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { applyChange } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { PassOpener } from '../../functions/core/fanout/open-pass.js';
import { runPartTask } from '../../functions/core/fanout/part-task.js';
import { planShard } from '../../functions/core/fanout/plan-shard.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import type { Job } from '../../functions/core/job.js';
import { isMarkedForDeletion } from '../../functions/core/state/deletion-marks.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  eventDependencies,
  forgetJobWhenDone,
  objectCreated,
  objectDeleted,
  racingDependencies,
} from './event-helpers.js';
import { exists, heldEvent, settle, signal } from './held-workers.js';
import { isolatedJob, passEnded, putObject, useSandbox } from './helpers.js';
import { bytesOf, capturingTasks, openUploads, workerControl } from './part-task-helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const MiB = 1024 * 1024;
const log = consoleLogger('error');

/** A mirror job whose key holds v0, copied by an event, and v1 at the source, giant: 2 part tasks. */
async function giantOverEventCopy(name: string, seed: number) {
  const job = isolatedJob(sandbox, name, {
    options: { mirror: true, fanOut: { mode: 'always', partTasksAbove: 5 * MiB } },
  });
  forgetJobWhenDone(deps, job.jobId);
  const key = `${job.source.prefix}giant.bin`;
  const destinationKey = `${job.destination.prefix}giant.bin`;
  await putObject(producer, job.source.bucket, key, 'version zero');
  const events = eventDependencies(sandbox, deps, job, `${name}-test`);
  expect(await applyChange(events, job, objectCreated(job.source.bucket, key))).toMatchObject({
    outcome: 'copied',
  });
  await putObject(producer, job.source.bucket, key, bytesOf(12 * MiB, seed));
  return { job, key, destinationKey, events };
}

/**
 * The pass over `passDeps` started and planned: its 2 part tasks captured; `runParts` runs them in order,
 * each delivered once, then returns the pass's record once it ended.
 */
async function plannedParts(passDeps: Parameters<typeof capturingTasks>[0], job: Job) {
  const { fanOutDeps, sent } = capturingTasks(passDeps);
  const started = await startPass(fanOutDeps, job, { log });
  expect(started).toMatchObject({ status: 'started' });
  const { fence } = started as { fence: number };
  const passes = new PassOpener(fanOutDeps);
  for (const shard of sent.shards) await planShard(passes, shard, workerControl('planner'));
  expect(sent.parts).toHaveLength(2);
  return {
    runParts: async () => {
      for (const part of sent.parts.sort((a, b) => a.partNumber - b.partNumber)) {
        expect(await runPartTask(passes, part, workerControl(`part-${part.partNumber}`))).toBe('settled');
      }
    },
    ended: () => passEnded(fanOutDeps, job, fence),
  };
}

/** After the race: nothing at the destination, the deletion recorded, no upload left open. */
async function expectDeleted(job: Job, key: string, destinationKey: string, deletion: ObjectChange) {
  expect(await exists(consumer, job.destination.bucket, destinationKey)).toBe(false);
  const entry = await deps.state.ledgerEntry(job.jobId, key);
  expect(entry).toMatchObject({ sequencer: storedSequencer(deletion.sequencer) });
  expect(entry?.destinationEtag).toBeUndefined();
  expect(await openUploads(consumer, job)).toEqual([]);
  expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
}

describe('part tasks racing an event that deletes the key (moto S3 + DynamoDB Local)', () => {
  it("leaves the key to the deletion when the completion comes while the event's mark holds it", async () => {
    // Prepare: before the completion, the key is deleted at the source, and its event marks the key,
    // deletes v0 and is held before its last ledger write until the part tasks are done.
    const { job, key, destinationKey } = await giantOverEventCopy('part-deletion', 31);
    const partsDone = signal();
    const event = heldEvent(
      sandbox,
      deps,
      job,
      { ledgerKey: key, ledgerCommand: 'PutItemCommand' },
      partsDone.reached,
    );
    const deletion = objectDeleted(job.source.bucket, key);
    let applied: Promise<{ result?: unknown; error?: unknown }> | undefined;
    const pass = racingDependencies(
      sandbox,
      deps,
      { s3Command: 'CompleteMultipartUploadCommand', destinationKey },
      async () => {
        await producer.send(new DeleteObjectCommand({ Bucket: job.source.bucket, Key: key }));
        applied = settle(applyChange(event.events, job, deletion));
        await event.held;
      },
    );
    const parts = await plannedParts(pass.deps, job);
    pass.arm();

    // Act
    await parts.runParts();
    const during = await deps.state.ledgerEntry(job.jobId, key);
    const heldDestination = await exists(consumer, job.destination.bucket, destinationKey);
    partsDone.reach();
    if (!applied) throw new Error('the deletion was not applied');
    const outcome = await applied;

    // Assess: the mark held while the completer ran, nothing of v1 written, the key counted skipped.
    expect(pass.raced()).toBe(true);
    expect(event.raced()).toBe(true);
    expect(isMarkedForDeletion(during)).toBe(true);
    expect(heldDestination).toBe(false);
    expect(outcome).toEqual({ result: expect.objectContaining({ outcome: 'deleted' }) });
    expect(await parts.ended()).toMatchObject({ status: 'complete', copied: 0, skipped: 1, failed: 0 });
    await expectDeleted(job, key, destinationKey, deletion);
  });

  it('has the deletion remove the completed copy when its mark comes between the completion and its record', async () => {
    // Prepare: after the completion, before the completer's ledger write, the key is deleted at the
    // source, and its event marks the key and is held before its DeleteObject (If-Match v0) until the
    // part tasks are done.
    const { job, key, destinationKey, events } = await giantOverEventCopy('part-deletion-late', 32);
    const partsDone = signal();
    const event = heldEvent(
      sandbox,
      deps,
      job,
      { s3Command: 'DeleteObjectCommand', destinationKey },
      partsDone.reached,
    );
    const deletion = objectDeleted(job.source.bucket, key);
    let applied: Promise<{ result?: unknown; error?: unknown }> | undefined;
    const pass = racingDependencies(sandbox, deps, { ledgerKey: key }, async () => {
      await producer.send(new DeleteObjectCommand({ Bucket: job.source.bucket, Key: key }));
      applied = settle(applyChange(event.events, job, deletion));
      await event.held;
    });
    const parts = await plannedParts(pass.deps, job);
    pass.arm();

    // Act: the parts; then the event, and its redelivery if it asked for one.
    await parts.runParts();
    partsDone.reach();
    if (!applied) throw new Error('the deletion was not applied');
    const first = await applied;
    if (first.error !== undefined) {
      expect(first.error).toMatchObject({ retryable: true });
      expect(await applyChange(events, job, deletion)).toMatchObject({ outcome: 'deleted' });
    }

    // Assess
    expect(pass.raced()).toBe(true);
    expect(event.raced()).toBe(true);
    // The completer recorded its copy over the mark, which deleted another: counted copied.
    expect(await parts.ended()).toMatchObject({ status: 'complete', copied: 1, skipped: 0, failed: 0 });
    await expectDeleted(job, key, destinationKey, deletion);
  });
});
