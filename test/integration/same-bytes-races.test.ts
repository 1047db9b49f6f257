/**
 * A deletion racing a re-creation of the same bytes, over real HTTP (moto S3 + DynamoDB Local): the key is
 * deleted at the source and written again with identical content, so its new copy has the old copy's
 * ETag and the deleter's If-Match cannot tell them apart. The deleter is an Object Deleted event, or a
 * mirror pass that listed the key gone; the re-creation's event lands at each step of the deleter. After
 * the race (and the queue's redelivery of an event that asked for it), with no further pass, the
 * destination must hold the source's bytes and the ledger must record that copy
 * (docs/event-driven.md, "Deletions and writers of the same bytes").
 */
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { CopyTask } from '../../functions/core/dispatch/copy-tasks.js';
import type { PlanShardTask } from '../../functions/core/dispatch/shard-tasks.js';
import { ObjectCopyError } from '../../functions/core/errors.js';
import { applyChange, type ChangeDependencies } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { PassOpener } from '../../functions/core/fanout/open-pass.js';
import { planShard } from '../../functions/core/fanout/plan-shard.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { isMarkedForDeletion } from '../../functions/core/state/deletion-marks.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  eventDependencies,
  forgetJobWhenDone,
  objectCreated,
  objectDeleted,
  type RaceAt,
  racingDependencies,
} from './event-helpers.js';
import { isolatedJob, passEnded, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;
const BYTES = 'the same bytes, deleted and written again';

type Gate =
  | 'before its first ledger write'
  | 'before the destination delete'
  | 'before its last ledger write';
const GATES: { gate: Gate }[] = [
  { gate: 'before its first ledger write' },
  { gate: 'before the destination delete' },
  { gate: 'before its last ledger write' },
];

/** Where the deleter is held while the re-creation's event is applied. */
function raceAt(
  gate: Gate,
  key: string,
  destinationKey: string,
  last: 'PutItemCommand' | 'DeleteItemCommand',
): RaceAt {
  if (gate === 'before the destination delete') return { s3Command: 'DeleteObjectCommand', destinationKey };
  if (gate === 'before its first ledger write') return { ledgerKey: key, ledgerCommand: 'any write' };
  return { ledgerKey: key, ledgerCommand: last };
}

/** A mirror job whose key holds a copy of BYTES recorded by an event, then deleted at the source. */
async function copiedThenDeleted(name: string, fanOut = false) {
  const options = fanOut ? { mirror: true, fanOut: { mode: 'always' as const } } : { mirror: true };
  const job = isolatedJob(sandbox, name, { options });
  forgetJobWhenDone(deps, job.jobId);
  const key = `${job.source.prefix}k.txt`;
  const destinationKey = `${job.destination.prefix}k.txt`;
  const events = eventDependencies(sandbox, deps, job, `${name}-test`);
  await putObject(producer, SOURCE, key, BYTES);
  expect(await applyChange(events, job, objectCreated(SOURCE, key))).toMatchObject({ outcome: 'copied' });
  await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
  return { job, key, destinationKey, events };
}

/**
 * Re-creates the key with BYTES and applies its event once; true when the worker asked for it to be
 * delivered again (a retryable failure: the record goes back to the queue).
 */
async function recreate(
  events: ChangeDependencies,
  job: Job,
  key: string,
  body = BYTES,
): Promise<{ change: ObjectChange; again: boolean }> {
  await putObject(producer, SOURCE, key, body);
  const change = objectCreated(SOURCE, key);
  try {
    await applyChange(events, job, change);
    return { change, again: false };
  } catch (error) {
    if (error instanceof ObjectCopyError && error.retryable) return { change, again: true };
    throw error;
  }
}

/** The destination holds the source's bytes, and the ledger records that very copy at the re-creation. */
async function expectCopyAgrees(
  job: Job,
  key: string,
  destinationKey: string,
  change: ObjectChange,
  body = BYTES,
) {
  expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe(body);
  const destination = await consumer.send(
    new HeadObjectCommand({ Bucket: DESTINATION, Key: destinationKey }),
  );
  const source = await producer.send(new HeadObjectCommand({ Bucket: SOURCE, Key: key }));
  const entry = await deps.state.ledgerEntry(job.jobId, key);
  expect(entry).toMatchObject({
    etag: source.ETag,
    destinationKey,
    destinationEtag: destination.ETag?.replace(/"/g, ''),
    sequencer: storedSequencer(change.sequencer),
  });
}

describe('a deletion racing a re-creation of the same bytes (moto S3 + DynamoDB Local)', () => {
  it.each(GATES)(
    "keeps the re-created copy when an Object Deleted event's worker is held $gate",
    async ({ gate }) => {
      const { job, key, destinationKey, events } = await copiedThenDeleted('aba-event');
      const deletion = objectDeleted(SOURCE, key);
      let recreation: { change: ObjectChange; again: boolean } | undefined;
      const deleter = racingDependencies(
        sandbox,
        deps,
        raceAt(gate, key, destinationKey, 'PutItemCommand'),
        async () => {
          recreation = await recreate(events, job, key);
        },
      );
      deleter.arm();

      await applyChange(
        { ...events, destinationS3: deleter.deps.destinationS3, state: deleter.deps.state },
        job,
        deletion,
      );

      expect(deleter.raced()).toBe(true);
      if (!recreation) throw new Error('the re-creation was not applied');
      // The queue delivers a change that asked for it again, after the deleter is done.
      if (recreation.again) {
        expect(await applyChange(events, job, recreation.change)).toMatchObject({ outcome: 'copied' });
      }
      await expectCopyAgrees(job, key, destinationKey, recreation.change);
    },
  );

  it.each(GATES)(
    'keeps the re-created copy when a mirror pass deleting the key is held $gate',
    async ({ gate }) => {
      const { job, key, destinationKey, events } = await copiedThenDeleted('aba-pass');
      let recreation: { change: ObjectChange; again: boolean } | undefined;
      const pass = racingDependencies(
        sandbox,
        deps,
        raceAt(gate, key, destinationKey, 'DeleteItemCommand'),
        async () => {
          recreation = await recreate(events, job, key);
        },
      );
      pass.arm();

      const summary = await syncJob(pass.deps, job);

      expect(pass.raced()).toBe(true);
      expect(summary).toMatchObject({ failed: 0 });
      if (!recreation) throw new Error('the re-creation was not applied');
      if (recreation.again) {
        expect(await applyChange(events, job, recreation.change)).toMatchObject({ outcome: 'copied' });
      }
      await expectCopyAgrees(job, key, destinationKey, recreation.change);
    },
  );

  // Other bytes too: the planner's If-Match is refused, and the event's copy and record must stand.
  it.each([
    { bytes: 'the same bytes', body: BYTES },
    { bytes: 'other bytes', body: 'other bytes than the deleted copy' },
  ])(
    'keeps the re-created copy ($bytes) when a fan-out shard planner deleting the key is held before the destination delete',
    async ({ body }) => {
      const { job, key, destinationKey, events } = await copiedThenDeleted('aba-shard', true);
      let recreation: { change: ObjectChange; again: boolean } | undefined;
      const planner = racingDependencies(
        sandbox,
        deps,
        { s3Command: 'DeleteObjectCommand', destinationKey },
        async () => {
          recreation = await recreate(events, job, key, body);
        },
      );
      const sent = { shards: [] as PlanShardTask[], copies: [] as CopyTask[] };
      const fanOutDeps = {
        ...planner.deps,
        queues: {
          planShard: async (task: PlanShardTask) => void sent.shards.push(task),
          copy: async (task: CopyTask) => void sent.copies.push(task),
        },
      };
      const log = consoleLogger('error');
      const started = await startPass(fanOutDeps, job, { log });
      expect(started).toMatchObject({ status: 'started' });
      planner.arm();

      const passes = new PassOpener(fanOutDeps);
      for (const shard of sent.shards)
        await planShard(passes, shard, { log, worker: 'planner', signal: new AbortController().signal });

      expect(planner.raced()).toBe(true);
      expect(sent.copies).toHaveLength(0);
      expect(await passEnded(fanOutDeps, job, (started as { fence: number }).fence)).toMatchObject({
        failed: 0,
      });
      if (!recreation) throw new Error('the re-creation was not applied');
      if (recreation.again) {
        expect(await applyChange(events, job, recreation.change)).toMatchObject({ outcome: 'copied' });
      }
      await expectCopyAgrees(job, key, destinationKey, recreation.change, body);
    },
  );
});

describe('a pass that copies a key while an event is deleting it (moto S3 + DynamoDB Local)', () => {
  it("records its copy of other bytes over the deletion's mark, which deletes another copy (If-Match)", async () => {
    // Prepare: a copied key, changed at the source, whose ledger item an event's deletion has marked
    const job = isolatedJob(sandbox, 'marked-copy', { options: { mirror: true } });
    forgetJobWhenDone(deps, job.jobId);
    const key = `${job.source.prefix}k.txt`;
    const destinationKey = `${job.destination.prefix}k.txt`;
    await putObject(producer, SOURCE, key, 'first');
    expect(await syncJob(deps, job)).toMatchObject({ copied: 1 });
    await putObject(producer, SOURCE, key, 'second, longer');
    const read = await deps.state.ledgerEntry(job.jobId, key);
    if (!read) throw new Error('no ledger entry after the first pass');
    const fence = (await deps.state.readLease(job.jobId))?.fence ?? 0;
    const mark = await deps.state.markDeletion(job.jobId, read, fence, 'event-marked-copy');
    if (!mark.marked) throw new Error('the mark was refused');
    // Act
    const summary = await syncJob(deps, job);

    // Assert: the deletion's If-Match names the first copy, so it cannot remove this one; delivered
    // again, it reads this record and deletes what is recorded
    expect(summary).toMatchObject({ copied: 1, skipped: 0, failed: 0 });
    const head = await consumer.send(new HeadObjectCommand({ Bucket: DESTINATION, Key: destinationKey }));
    expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe('second, longer');
    const entry = await deps.state.ledgerEntry(job.jobId, key);
    expect(isMarkedForDeletion(entry)).toBe(false);
    expect(entry?.destinationEtag?.replaceAll('"', '')).toBe(head.ETag?.replaceAll('"', ''));
  });
});
