/**
 * The reconciling pass of a job that follows S3 events, run as fan-out (issue 12), over real HTTP: moto's
 * S3 and SQS with auth enforced and DynamoDB Local, the workers in process. Every task batch is handled
 * twice at once (a second delivery SQS may make), so a copy counted per delivery would show here.
 */
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceCredentials } from '../../functions/core/access/source-credentials.js';
import { applyChange } from '../../functions/core/events/apply-change.js';
import { type ObjectChange, parseObjectChange } from '../../functions/core/events/object-change.js';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import type { Job } from '../../functions/core/job.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { forgetJobWhenDone } from './event-helpers.js';
import { isolatedJob, localFanOut, passEnded, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;
let fanOut: LocalFanOut;
const MiB = 1024 * 1024;

beforeAll(async () => {
  fanOut = await localFanOut(sandbox, deps, {
    workers: 2,
    worker: { log: consoleLogger('warn') },
    around: (_kind, handler) => async (event: SQSEvent, context) => {
      const [first] = await Promise.all([handler(event, context), handler(event, context)]);
      return first;
    },
  });
});
afterAll(async () => {
  await fanOut?.stop();
});

let counter = BigInt(Date.now()) << 12n;
function created(key: string): ObjectChange {
  counter += 1n;
  return parseObjectChange({
    id: randomUUID(),
    source: 'aws.s3',
    'detail-type': 'Object Created',
    time: new Date().toISOString(),
    detail: {
      bucket: { name: SOURCE },
      object: { key, sequencer: counter.toString(16).toUpperCase().padStart(18, '0') },
    },
  });
}

/** Runs one fan-out pass of `job` to its end and returns its run record. */
async function fanOutPass(job: Job, eventGraceMs?: number) {
  const started = (await handleEvent(fanOut.deps, job, {
    ...(eventGraceMs !== undefined && { eventGraceMs }),
  })) as PassStart;
  expect(started).toMatchObject({ mode: 'fan-out', status: 'started' });
  return passEnded(fanOut.deps, job, started.fence);
}

describe('a reconciling pass run as fan-out (moto S3/SQS + DynamoDB Local)', () => {
  it('counts the changes no event delivered, once each, and not those whose events may be on the way', async () => {
    const job = isolatedJob(sandbox, 'rec-fan', {
      options: { events: true, fanOut: { mode: 'always', keysPerShard: 2 } },
    });
    const sourceS3: S3Client = deps.sourceS3(sourceCredentials(deps.sts, job, 'reconcile-fan-test'));
    const change = { sourceS3, destinationS3: deps.destinationS3, state: deps.state };
    const prefix = job.source.prefix;
    await putObject(producer, SOURCE, `${prefix}backfill`, 'there before events');
    // A job's first pass is its backfill: nothing to judge.
    expect(await fanOutPass(job, 0)).toMatchObject({ copied: 1, missedByEvents: 0 });
    // S3's LastModified has one-second resolution: the changes below are stamped after that pass ended.
    await nextSecond();
    await putObject(producer, SOURCE, `${prefix}delivered`, 'its event came');
    expect(await applyChange(change, job, created(`${prefix}delivered`))).toMatchObject({
      outcome: 'copied',
    });
    await putObject(producer, SOURCE, `${prefix}dropped`, 'its event was lost');

    // With the default grace (15 minutes) the lost event may still be on the way: not counted yet.
    const graced = await fanOutPass(job);
    await nextSecond();
    await putObject(producer, SOURCE, `${prefix}dropped-too`, 'lost as well');
    await putObject(producer, SOURCE, `${prefix}dropped-three`, 'and this');
    const judged = await fanOutPass(job, 0);

    expect(graced).toMatchObject({ copied: 1, missedByEvents: 0 });
    expect(judged).toMatchObject({ copied: 2, missedByEvents: 2 });
    expect((await readObject(consumer, DESTINATION, `${job.destination.prefix}dropped-too`)).toString()).toBe(
      'lost as well',
    );
  });

  it('counts a giant object no event delivered, copied by part tasks, once', async () => {
    const job = isolatedJob(sandbox, 'rec-fan-giant', {
      options: { events: true, fanOut: { mode: 'always', partTasksAbove: 5 * MiB } },
    });
    forgetJobWhenDone(deps, job.jobId);
    const prefix = job.source.prefix;
    await putObject(producer, SOURCE, `${prefix}backfill`, 'there before events');
    expect(await fanOutPass(job, 0)).toMatchObject({ copied: 1, missedByEvents: 0 });
    await nextSecond();
    const giant = Buffer.alloc(6 * MiB, 7);
    await putObject(producer, SOURCE, `${prefix}giant.bin`, giant);

    // Every part task batch is delivered twice at once (see beforeAll): still counted once.
    const judged = await fanOutPass(job, 0);

    expect(judged).toMatchObject({ copied: 1, failed: 0, missedByEvents: 1 });
    expect(
      (await readObject(consumer, DESTINATION, `${job.destination.prefix}giant.bin`)).equals(giant),
    ).toBe(true);
  });

  it('reports no missedByEvents for a fan-out job that does not follow events', async () => {
    const job = isolatedJob(sandbox, 'rec-fan-none', { options: { fanOut: { mode: 'always' } } });
    await putObject(producer, SOURCE, `${job.source.prefix}a`, 'a');

    const record = await fanOutPass(job, 0);

    expect(record.copied).toBe(1);
    expect(record).not.toHaveProperty('missedByEvents');
  });
});

/** Waits for the next whole second, so an object written next is stamped after everything before. */
async function nextSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
}
