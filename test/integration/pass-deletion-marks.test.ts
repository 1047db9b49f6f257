/**
 * A mirror pass and an event for the same key, ordered through the key's deletion mark, over real HTTP
 * (moto S3 + DynamoDB Local): a pass that deletes "what is there" after its If-Match was refused (its
 * widened mark), and a pass whose failed copy is recorded while an event's deletion holds the key
 * (docs/event-driven.md, "Deletions and writers of the same bytes"). Each worker is held at a gate
 * while the other runs; the event is delivered again when it asked for it.
 */
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { applyChange } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { isMarkedForDeletion } from '../../functions/core/state/deletion-marks.js';
import { captureLogger } from '../support/capture-logger.js';
import {
  eventDependencies,
  forgetJobWhenDone,
  objectCreated,
  objectDeleted,
  racingDependencies,
} from './event-helpers.js';
import { exists, heldEvent, settle, signal } from './held-workers.js';
import { isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;

/** A mirror job whose key holds a copy of `bytes`, recorded by an event. */
async function copiedByEvent(name: string, bytes: string) {
  const job = isolatedJob(sandbox, name, { options: { mirror: true } });
  forgetJobWhenDone(deps, job.jobId);
  const key = `${job.source.prefix}k.txt`;
  const destinationKey = `${job.destination.prefix}k.txt`;
  await putObject(producer, SOURCE, key, bytes);
  const events = eventDependencies(sandbox, deps, job, `${name}-first`);
  expect(await applyChange(events, job, objectCreated(SOURCE, key))).toMatchObject({ outcome: 'copied' });
  return { job, key, destinationKey };
}

describe('a mirror pass whose If-Match delete is refused (moto S3 + DynamoDB Local)', () => {
  it("has an event that wrote other bytes but had not recorded them copy again after the pass's deletion", async () => {
    // Prepare: the key copied, deleted at the source, listed gone by the pass; re-created with other
    // bytes, whose event writes its copy and is held before recording it while the pass deletes.
    const { job, key, destinationKey } = await copiedByEvent('widened-mark', 'first bytes');
    await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
    const passDone = signal();
    const event = heldEvent(
      sandbox,
      deps,
      job,
      { ledgerKey: key, ledgerCommand: 'PutItemCommand' },
      passDone.reached,
    );
    const recreated = 'other bytes, written again after the deletion';
    let change: ObjectChange | undefined;
    let applied: Promise<{ result?: unknown; error?: unknown }> | undefined;
    const pass = racingDependencies(
      sandbox,
      deps,
      { ledgerKey: key, ledgerCommand: 'any write' },
      async () => {
        await putObject(producer, SOURCE, key, recreated);
        change = objectCreated(SOURCE, key);
        applied = settle(applyChange(event.events, job, change));
        await event.held;
      },
    );
    pass.arm();

    // Act: the pass marks, its If-Match (the first copy) is refused, it widens its mark and deletes the
    // event's unrecorded copy; then the event records, and is delivered again if it asked.
    const summary = await syncJob(pass.deps, job);
    const emptied = !(await exists(consumer, DESTINATION, destinationKey));
    passDone.reach();
    if (!applied || !change) throw new Error('the re-creation was not applied');
    const first = await applied;
    if (first.error !== undefined) {
      expect(first.error).toMatchObject({ retryable: true });
      expect(await applyChange(eventDependencies(sandbox, deps, job, 'again'), job, change)).toMatchObject({
        outcome: 'copied',
      });
    }

    // Assess
    expect(pass.raced()).toBe(true);
    expect(event.raced()).toBe(true);
    expect(summary).toMatchObject({ deleted: 1, failed: 0 });
    expect(emptied).toBe(true);
    expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe(recreated);
    const destination = await consumer.send(
      new HeadObjectCommand({ Bucket: DESTINATION, Key: destinationKey }),
    );
    const source = await producer.send(new HeadObjectCommand({ Bucket: SOURCE, Key: key }));
    expect(await deps.state.ledgerEntry(job.jobId, key)).toMatchObject({
      etag: source.ETag,
      destinationEtag: destination.ETag?.replace(/"/g, ''),
      sequencer: storedSequencer(change.sequencer),
    });
  });
});

describe('a mirror pass whose copy fails while an event deletes the key (moto S3 + DynamoDB Local)', () => {
  it("keeps the event's deletion mark: the key is left to the event, counted skipped", async () => {
    // Prepare: the key copied, changed at the source (the pass plans a copy); the copy's write fails
    // once the key is deleted at the source and its event, holding the key's mark, is held before its
    // last ledger write.
    const { job, key, destinationKey } = await copiedByEvent('failed-under-mark', 'first bytes');
    await putObject(producer, SOURCE, key, 'second bytes, which the pass fails to copy');
    const passDone = signal();
    const event = heldEvent(
      sandbox,
      deps,
      job,
      { ledgerKey: key, ledgerCommand: 'PutItemCommand' },
      passDone.reached,
    );
    const deletion = objectDeleted(SOURCE, key);
    let applied: Promise<{ result?: unknown; error?: unknown }> | undefined;
    const pass = racingDependencies(sandbox, deps, { byTheTest: true }, async () => {
      await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
      applied = settle(applyChange(event.events, job, deletion));
      await event.held;
    });
    pass.deps.destinationS3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (context.commandName === 'PutObjectCommand' && input.Key === destinationKey) {
          await pass.race();
          throw new Error('injected: the copy of the key fails');
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    pass.arm();

    // Act
    const logger = captureLogger();
    const summary = await syncJob({ ...pass.deps, logger }, job, { objectRetry: { attempts: 1 } });
    const during = await deps.state.ledgerEntry(job.jobId, key);
    passDone.reach();
    if (!applied) throw new Error('the deletion was not applied');
    const outcome = await applied;

    // Assess
    expect(pass.raced()).toBe(true);
    expect(event.raced()).toBe(true);
    expect(isMarkedForDeletion(during)).toBe(true);
    expect(summary).toMatchObject({ copied: 0, skipped: 1, failed: 0 });
    expect(logger.lines).toContainEqual(
      expect.objectContaining({
        message: 'an event is deleting the key; left to the event',
        fields: expect.objectContaining({ key }),
      }),
    );
    expect(outcome).toEqual({ result: expect.objectContaining({ outcome: 'deleted' }) });
    expect(await exists(consumer, DESTINATION, destinationKey)).toBe(false);
    const entry = await deps.state.ledgerEntry(job.jobId, key);
    expect(entry).toMatchObject({ sequencer: storedSequencer(deletion.sequencer) });
    expect(entry?.destinationEtag).toBeUndefined();
    expect(entry?.failure).toBeUndefined();
  });
});
