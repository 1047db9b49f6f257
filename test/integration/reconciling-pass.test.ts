/**
 * The reconciling pass of a job that follows S3 events (issue 12), over real HTTP: moto's S3 with auth
 * enforced (the source read with the assumed role) and DynamoDB Local. Events are synthetic, with real
 * increasing sequencers (moto gives every real event the same one, docs/event-driven.md); the objects they
 * point at are real.
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { sourceCredentials } from '../../functions/core/access/source-credentials.js';
import { applyChange, type ChangeDependencies } from '../../functions/core/events/apply-change.js';
import { type ObjectChange, parseObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { nextSequencer, objectDeleted } from './event-helpers.js';
import { isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;

function created(key: string): ObjectChange {
  return parseObjectChange({
    id: randomUUID(),
    source: 'aws.s3',
    'detail-type': 'Object Created',
    time: new Date().toISOString(),
    detail: { bucket: { name: SOURCE }, object: { key, sequencer: nextSequencer() } },
  });
}

function changeDependencies(job: Job): ChangeDependencies {
  const sourceS3: S3Client = deps.sourceS3(sourceCredentials(deps.sts, job, 'reconcile-test'));
  return { sourceS3, destinationS3: deps.destinationS3, state: deps.state };
}

const destinationOf = (job: Job, key: string) => job.destination.prefix + key.slice(job.source.prefix.length);

describe('a reconciling pass beside events (moto S3 + DynamoDB Local)', () => {
  it('keeps the sequencer an event recorded when it rewrites the key, so a late older event stays refused', async () => {
    const job = isolatedJob(sandbox, 'rec-seq', { options: { events: true } });
    const change = changeDependencies(job);
    const key = `${job.source.prefix}k`;
    await putObject(producer, SOURCE, key, 'one');
    const first = created(key);
    await putObject(producer, SOURCE, key, 'two');
    const second = created(key);
    expect(await applyChange(change, job, second)).toMatchObject({ outcome: 'copied' });
    // Its event still on the way, a third version is copied by the pass instead.
    await putObject(producer, SOURCE, key, 'three');
    expect(await syncJob(deps, job)).toMatchObject({ copied: 1 });
    expect(await deps.state.ledgerEntry(job.jobId, key)).toMatchObject({
      sequencer: storedSequencer(second.sequencer),
    });
    await putObject(producer, SOURCE, key, 'four');

    const late = await applyChange(change, job, first);

    expect(late.outcome).toBe('stale');
    expect((await readObject(consumer, DESTINATION, destinationOf(job, key))).toString()).toBe('three');
  });

  it('counts the changes no event delivered (missedByEvents), and not those whose events may be on the way', async () => {
    const job = isolatedJob(sandbox, 'rec-missed', { options: { events: true } });
    const change = changeDependencies(job);
    const prefix = job.source.prefix;
    await putObject(producer, SOURCE, `${prefix}backfill`, 'there before events');
    // A job's first pass is its backfill: nothing to judge.
    expect(await syncJob(deps, job)).toMatchObject({ copied: 1, missedByEvents: 0 });
    // S3's LastModified has one-second resolution: the changes below are stamped after that pass ended.
    await nextSecond();
    await putObject(producer, SOURCE, `${prefix}delivered`, 'its event came');
    expect(await applyChange(change, job, created(`${prefix}delivered`))).toMatchObject({
      outcome: 'copied',
    });
    await putObject(producer, SOURCE, `${prefix}dropped`, 'its event was lost');

    // With the default grace (15 minutes) the lost event may still be on the way: not counted yet.
    const graced = await syncJob(deps, job);
    await nextSecond();
    await putObject(producer, SOURCE, `${prefix}dropped-too`, 'lost as well');
    const judged = await syncJob(deps, job, { eventGraceMs: 0 });

    expect(graced).toMatchObject({ copied: 1, missedByEvents: 0 });
    expect(judged).toMatchObject({ copied: 1, missedByEvents: 1 });
    expect(
      (await readObject(consumer, DESTINATION, destinationOf(job, `${prefix}dropped-too`))).toString(),
    ).toBe('lost as well');
  });

  it("removes an event's deletion record without deleting anything more or counting it as its own", async () => {
    // Prepare: a mirror job's key copied by its event, deleted at the source and at the destination by the
    // next event; someone else's object put at the key afterwards
    const job = isolatedJob(sandbox, 'rec-del', { options: { events: true, mirror: true } });
    const change = changeDependencies(job);
    const key = `${job.source.prefix}k`;
    await putObject(producer, SOURCE, key, 'one');
    expect(await applyChange(change, job, created(key))).toMatchObject({ outcome: 'copied' });
    await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
    expect(await applyChange(change, job, objectDeleted(SOURCE, key))).toMatchObject({ outcome: 'deleted' });
    const destinationKey = destinationOf(job, key);
    await consumer.send(new PutObjectCommand({ Bucket: DESTINATION, Key: destinationKey, Body: 'theirs' }));

    // Act
    const summary = await syncJob(deps, job);

    // Assert: the event did the deletion; the pass only removes its record
    expect(summary).toMatchObject({ deleted: 0, skipped: 0, failed: 0 });
    expect(await deps.state.ledgerEntry(job.jobId, key)).toBeUndefined();
    expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe('theirs');
  });

  it('reports no missedByEvents for a job that does not follow events', async () => {
    const job = isolatedJob(sandbox, 'rec-none');
    await putObject(producer, SOURCE, `${job.source.prefix}a`, 'a');

    const summary = await syncJob(deps, job, { eventGraceMs: 0 });

    expect(summary.copied).toBe(1);
    expect(summary).not.toHaveProperty('missedByEvents');
  });
});

/** Waits for the next whole second, so an object written next is stamped after everything before. */
async function nextSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
}
