/**
 * The mirror deletion cap of events over real HTTP (moto's S3, DynamoDB Local's conditions): the copy
 * mapping hands the worker one record per invocation (BatchSize 1), so the cap must hold across batches and
 * containers, not within one batch. Each delivery here is its own taskBatchHandler (a container of its own)
 * with a batch of one record, as Lambda would call it. The events are synthetic S3 events with increasing
 * sequencers (moto gives every real event the same one; docs/event-driven.md); the objects are real.
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { TaskQueues } from '../../functions/core/dispatch/task-queue.js';
import { DeletionBudget } from '../../functions/core/events/deletion-budget.js';
import { EventWorker } from '../../functions/core/events/event-worker.js';
import { taskBatchHandler } from '../../functions/core/fanout/task-batches.js';
import type { Job, JobInput } from '../../functions/core/job.js';
import { EventDeletionAllowance } from '../../functions/core/state/event-deletion-allowance.js';
import { captureLogger } from '../support/capture-logger.js';
import { forgetJobWhenDone, nextSequencer } from './event-helpers.js';
import {
  isolatedJob,
  lambdaContext,
  listKeys,
  putObject,
  randomText,
  readObject,
  useSandbox,
} from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;
const CAP = 3;
const EXTRA = 2;

/** A copy-queue body as the job's rule writes it: the job, and the S3 event. */
function eventBody(job: Job, key: string, change: 'created' | 'deleted', sequencer = nextSequencer()) {
  const input: JobInput = {
    jobId: job.jobId,
    source: job.source,
    destination: job.destination,
    options: job.options,
  };
  return JSON.stringify({
    job: input,
    event: {
      id: randomUUID(),
      source: 'aws.s3',
      'detail-type': change === 'created' ? 'Object Created' : 'Object Deleted',
      time: new Date().toISOString(),
      detail: { bucket: { name: SOURCE }, object: { key, sequencer } },
    },
  });
}

function sqsRecord(body: string): SQSRecord {
  return {
    messageId: randomUUID(),
    receiptHandle: 'handle',
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 'sender',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:${sandbox.region}:222222222222:copy`,
    awsRegion: sandbox.region,
  };
}

/** Event records carry no task: the queues are never used. */
const noQueues = {} as TaskQueues;

/** Delivers `body` as Lambda does with BatchSize 1, to a fresh container: the ids of the records that failed. */
async function deliver(body: string, log = captureLogger()): Promise<string[]> {
  const handler = taskBatchHandler({ ...deps, queues: noQueues }, 'copy', { log });
  const response = await handler({ Records: [sqsRecord(body)] } as SQSEvent, lambdaContext(60_000));
  return response.batchItemFailures.map((failure) => failure.itemIdentifier);
}

const doc = DynamoDBDocumentClient.from(deps.state.client);
const allowance = new EventDeletionAllowance(deps.state.client, deps.state.tableName);

/** Handles `body` in a container of its own, its batch's clock at `now`: the outcomes. */
function handleAt(now: Date, body: string) {
  const log = captureLogger();
  return new EventWorker(deps).handle(body, {
    log,
    deletions: new DeletionBudget(allowance, { log, now: () => now }),
  });
}

const destinationOf = (job: Job, key: string) => job.destination.prefix + key.slice(job.source.prefix.length);

/** `count` source objects copied by their Object Created events: the keys and their bodies. */
async function copiedObjects(job: Job, count: number): Promise<Map<string, string>> {
  const bodies = new Map<string, string>();
  for (let n = 0; n < count; n += 1) {
    const key = `${job.source.prefix}burst/${n} a+b.txt`;
    const body = randomText(200 + n);
    await putObject(producer, SOURCE, key, body);
    expect(await deliver(eventBody(job, key, 'created'))).toEqual([]);
    bodies.set(key, body);
  }
  expect(await listKeys(consumer, DESTINATION, job.destination.prefix)).toHaveLength(count);
  return bodies;
}

describe('the mirror deletion cap of events, across batches of one record', () => {
  it('deletes at most maxDeletesPerRun destination copies for a burst of Object Deleted events, leaving the rest intact and reported skipped', async () => {
    const job = isolatedJob(sandbox, 'ev-cap', {
      options: { events: true, mirror: true, maxDeletesPerRun: CAP },
    });
    forgetJobWhenDone(deps, job.jobId);
    const bodies = await copiedObjects(job, CAP + EXTRA);
    // The producer empties its prefix by mistake: one Object Deleted event per key.
    for (const key of bodies.keys())
      await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
    const log = captureLogger();

    for (const key of bodies.keys()) expect(await deliver(eventBody(job, key, 'deleted'), log)).toEqual([]);

    const outcomes = log.lines.filter((line) => line.message.startsWith('event '));
    expect(outcomes.filter((line) => line.message === 'event deleted')).toHaveLength(CAP);
    const skipped = outcomes.filter((line) => line.message === 'event skipped');
    expect(skipped).toHaveLength(EXTRA);
    for (const line of skipped)
      expect(String(line.fields.reason)).toMatch(/maxDeletesPerRun 3 deletions per/);
    // Once per batch, and each batch here is one record.
    expect(log.lines.filter((line) => line.message === 'event deletions capped')).toHaveLength(EXTRA);
    const left = await listKeys(consumer, DESTINATION, job.destination.prefix);
    expect(left).toHaveLength(EXTRA);
    for (const [key, body] of bodies) {
      const copy = destinationOf(job, key);
      if (left.includes(copy)) expect((await readObject(consumer, DESTINATION, copy)).toString()).toBe(body);
    }
  });

  it('grants more in a new window, and takes the allowance once for a change delivered twice', async () => {
    const job = isolatedJob(sandbox, 'ev-cap-window', {
      options: { events: true, mirror: true, maxDeletesPerRun: CAP, eventDeletionWindowMinutes: 60 },
    });
    forgetJobWhenDone(deps, job.jobId);
    const keys = [...(await copiedObjects(job, CAP + 1)).keys()];
    for (const key of keys) await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
    const deleted = keys.map((key) => ({ key, body: eventBody(job, key, 'deleted') }));
    const pick = (n: number) => deleted[n] ?? expect.fail(`no key ${n}`);
    const [first, twice, third, fourth] = [pick(0), pick(1), pick(2), pick(3)];
    // Mid-window, so that the whole test stays in it however slow the machine.
    const now = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 1_800_000);
    const nextWindow = new Date(now.getTime() + 3_600_000);

    expect(await handleAt(now, first.body)).toMatchObject([{ outcome: 'deleted' }]);
    // Two containers receive one message at once (SQS delivers at least once).
    const both = await Promise.all([handleAt(now, twice.body), handleAt(now, twice.body)]);
    expect(both.flat().map(({ outcome }) => outcome)).toContain('deleted');
    expect(await handleAt(now, third.body)).toMatchObject([{ outcome: 'deleted' }]);
    const capped = await handleAt(now, fourth.body);

    expect(capped).toMatchObject([
      { outcome: 'skipped', reason: expect.stringMatching(/options\.eventDeletionWindowMinutes 60 window/) },
    ]);
    const window = `${new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000).toISOString()}`;
    const { Item: count } = await doc.send(
      new GetCommand({
        TableName: deps.state.tableName,
        Key: { pk: `job#${job.jobId}`, sk: `event-deletions#${window}` },
      }),
    );
    expect(count).toMatchObject({ taken: CAP, purgeAt: expect.any(Number) });
    // The first change asked again (its event redelivered after a failed delete) is granted, not counted.
    const again = await allowance.reserve({
      jobId: job.jobId,
      key: first.key,
      sequencer: JSON.parse(first.body).event.detail.object.sequencer,
      max: CAP,
      windowMinutes: 60,
      now,
    });
    expect(again.granted).toBe(true);
    expect(await listKeys(consumer, DESTINATION, job.destination.prefix)).toEqual([
      destinationOf(job, fourth.key),
    ]);

    // The skipped event comes back in the next window (or a later one asks): this window grants it.
    expect(await handleAt(nextWindow, fourth.body)).toMatchObject([{ outcome: 'deleted' }]);
    expect(await listKeys(consumer, DESTINATION, job.destination.prefix)).toEqual([]);
  });
});
