/**
 * Applying S3 changes over real HTTP: moto's S3 (auth enforced, the source read with the assumed role)
 * and DynamoDB Local's conditions. moto gives every real event the same sequencer
 * (docs/event-driven.md), so the events here are synthetic, read by the same reader, with real increasing
 * sequencers; the bytes they point at are real objects.
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sourceCredentials } from '../../functions/core/access/source-credentials.js';
import { applyChange, type ChangeDependencies } from '../../functions/core/events/apply-change.js';
import { type ObjectChange, parseObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import type { Job } from '../../functions/core/job.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { nextSequencer } from './event-helpers.js';
import { isolatedJob, listKeys, putObject, randomText, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;

/** An S3 EventBridge event as the producer's rule forwards it, read by the worker's reader. */
function event(key: string, change: 'created' | 'deleted', sequencer = nextSequencer()): ObjectChange {
  return parseObjectChange({
    id: randomUUID(),
    source: 'aws.s3',
    'detail-type': change === 'created' ? 'Object Created' : 'Object Deleted',
    time: new Date().toISOString(),
    detail: { bucket: { name: SOURCE }, object: { key, sequencer } },
  });
}

/** The job's dependencies as the event worker builds them; `puts` counts the destination's PutObjects. */
function dependencies(job: Job): { deps: ChangeDependencies; puts: () => number } {
  let puts = 0;
  const destinationS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
  destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'PutObjectCommand') puts += 1;
      return next(args);
    },
    { step: 'initialize' },
  );
  const sourceS3: S3Client = deps.sourceS3(sourceCredentials(deps.sts, job, 'events-test'));
  return { deps: { sourceS3, destinationS3, state: deps.state }, puts: () => puts };
}

const destinationOf = (job: Job, key: string) => job.destination.prefix + key.slice(job.source.prefix.length);

async function put(key: string, body: string): Promise<ObjectChange> {
  await putObject(producer, SOURCE, key, body);
  return event(key, 'created');
}

async function remove(key: string): Promise<ObjectChange> {
  await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
  return event(key, 'deleted');
}

describe('applyChange (moto S3 + DynamoDB Local)', () => {
  it('copies a created object byte for byte, and a second delivery of the event writes nothing', async () => {
    const job = isolatedJob(sandbox, 'ev-create');
    const { deps: change, puts } = dependencies(job);
    const key = `${job.source.prefix}a b+c=d%e.txt`;
    const body = randomText(300);
    const created = await put(key, body);

    const first = await applyChange(change, job, created);
    const again = await applyChange(change, job, created);

    expect(first).toMatchObject({ outcome: 'copied', key, bytes: 300 });
    expect(first.lagMs).toBeGreaterThanOrEqual(0);
    expect(['up-to-date', 'stale']).toContain(again.outcome);
    expect(puts()).toBe(1);
    expect((await readObject(consumer, DESTINATION, destinationOf(job, key))).toString()).toBe(body);
    expect(await deps.state.ledgerEntry(job.jobId, key)).toMatchObject({
      sequencer: storedSequencer(created.sequencer),
    });
  });

  it('refuses a late event older than the change the ledger recorded, and keeps the newer copy', async () => {
    const job = isolatedJob(sandbox, 'ev-late');
    const { deps: change, puts } = dependencies(job);
    const key = `${job.source.prefix}k`;
    const first = await put(key, 'version one');
    const second = await put(key, 'version two');
    expect(await applyChange(change, job, second)).toMatchObject({ outcome: 'copied' });
    // Written again before the first event arrives: only the sequencer tells the first event is old.
    const third = await put(key, 'version three');

    const late = await applyChange(change, job, first);

    expect(late.outcome).toBe('stale');
    expect(puts()).toBe(1);
    expect((await readObject(consumer, DESTINATION, destinationOf(job, key))).toString()).toBe('version two');
    expect(await deps.state.ledgerEntry(job.jobId, key)).toMatchObject({
      sequencer: storedSequencer(second.sequencer),
    });
    expect(await applyChange(change, job, third)).toMatchObject({ outcome: 'copied' });
    expect((await readObject(consumer, DESTINATION, destinationOf(job, key))).toString()).toBe(
      'version three',
    );
  });

  it.each([
    { mirror: true, kept: false },
    { mirror: false, kept: true },
  ])('applies a deletion with mirror $mirror: destination copy kept $kept', async ({ mirror, kept }) => {
    const job = isolatedJob(sandbox, 'ev-delete', { options: { mirror } });
    const { deps: change } = dependencies(job);
    const key = `${job.source.prefix}gone.txt`;
    await applyChange(change, job, await put(key, 'soon gone'));

    const outcome = await applyChange(change, job, await remove(key));

    expect(outcome.outcome).toBe(mirror ? 'deleted' : 'skipped');
    expect(await listKeys(consumer, DESTINATION, job.destination.prefix)).toEqual(
      kept ? [destinationOf(job, key)] : [],
    );
  });

  it('copies, not deletes, when a deletion arrives for a key created again since', async () => {
    const job = isolatedJob(sandbox, 'ev-recreated', { options: { mirror: true } });
    const { deps: change } = dependencies(job);
    const key = `${job.source.prefix}back.txt`;
    await applyChange(change, job, await put(key, 'first life'));
    const deleted = await remove(key);
    await putObject(producer, SOURCE, key, 'second life');

    const outcome = await applyChange(change, job, deleted);

    expect(outcome.outcome).toBe('copied');
    expect((await readObject(consumer, DESTINATION, destinationOf(job, key))).toString()).toBe('second life');
  });

  it('leaves every key whose last event was delivered equal to the source, whatever the delivery order', async () => {
    const names = ['a', 'dir/b c', 'x+y%z'];
    const operation = fc.record({
      name: fc.constantFrom(...names),
      kind: fc.constantFrom('put', 'put', 'delete'),
      size: fc.integer({ min: 0, max: 40 }),
      // 0 deliveries: dropped; 2: duplicated. Each is delayed by `delay` steps, ties broken by `rank`.
      deliveries: fc.array(fc.record({ delay: fc.nat(3), rank: fc.nat(100) }), { maxLength: 2 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 8 }), async (operations) => {
        const job = isolatedJob(sandbox, 'ev-prop', { options: { mirror: true } });
        const { deps: change } = dependencies(job);
        const pending: { at: number; rank: number; change: ObjectChange }[] = [];
        const lastEvent = new Map<string, ObjectChange>();
        const delivered = new Set<string>();
        const deliverUntil = async (step: number) => {
          pending.sort((a, b) => a.at - b.at || a.rank - b.rank);
          while (pending[0] && pending[0].at <= step) {
            const next = pending.shift() as (typeof pending)[number];
            await applyChange(change, job, next.change);
            delivered.add(next.change.eventId);
          }
        };
        for (const [step, op] of operations.entries()) {
          const key = job.source.prefix + op.name;
          const happened = op.kind === 'put' ? await put(key, randomText(op.size)) : await remove(key);
          lastEvent.set(key, happened);
          for (const { delay, rank } of op.deliveries)
            pending.push({ at: step + delay, rank, change: happened });
          await deliverUntil(step);
        }
        await deliverUntil(Number.POSITIVE_INFINITY);

        const sourceKeys = new Set(await listKeys(producer, SOURCE, job.source.prefix));
        const destinationKeys = new Set(await listKeys(consumer, DESTINATION, job.destination.prefix));
        for (const [key, last] of lastEvent) {
          if (!delivered.has(last.eventId)) continue;
          const copy = destinationOf(job, key);
          expect(destinationKeys.has(copy), key).toBe(sourceKeys.has(key));
          if (sourceKeys.has(key)) {
            expect(await readObject(consumer, DESTINATION, copy), key).toEqual(
              await readObject(producer, SOURCE, key),
            );
          }
        }
      }),
      { numRuns: 10 },
    );
  });
});
