/**
 * The event path over real HTTP (docs/event-driven.md): moto delivers S3 events from AccountA's bucket to
 * A's default bus, across to AccountB's S3-event bus and on to the copy queue, wrapped with the job by the
 * rule's InputTransformer; the local event source mapping hands them to the copy worker's batch handler,
 * which copies with the assumed role into moto's S3 and records in DynamoDB Local. No scheduled run is
 * started anywhere in this file. moto gives every real event the same sequencer, so the ordering cases put
 * synthetic S3 events with real, increasing sequencers on B's bus (moto's PutEvents takes `aws.s3`).
 */
import { randomBytes } from 'node:crypto';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import type { Job, JobInput } from '../../functions/core/job.js';
import { JobStore } from '../../functions/core/state/job-store.js';
import { sandboxEvents, sandboxSqs } from '../../sandbox/clients.js';
import { busAdmits, type EventPath, provisionEventPath } from '../../sandbox/event-path.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { captureLogger } from '../support/capture-logger.js';
import { nextSequencer } from './event-helpers.js';
import { isolatedJob, localFanOut, putObject, randomText, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;
const log = captureLogger();
const sqs = sandboxSqs(sandbox, sandbox.accountB.admin);
let fanOut: LocalFanOut;
let copyQueueArn: string;
const paths: EventPath[] = [];

/** How long an event may take from the PUT to its outcome here: far above the ~1 s seen, for a loaded machine. */
const WAIT_MS = 60_000;

beforeAll(async () => {
  // A short visibility timeout and receive limit, so the malformed message reaches the DLQ within seconds.
  fanOut = await localFanOutFor();
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: fanOut.urls.copy, AttributeNames: ['QueueArn'] }),
  );
  copyQueueArn = Attributes?.QueueArn ?? '';
});
afterAll(async () => {
  await Promise.all(paths.map((path) => path.remove()));
  await fanOut?.stop();
});

function localFanOutFor(): Promise<LocalFanOut> {
  return localFanOut(sandbox, deps, {
    workers: 2,
    visibilityTimeoutSeconds: 5,
    maxReceiveCount: 2,
    worker: { log },
  });
}

/** A job that follows events, with its event path provisioned to the copy queue. */
async function eventJob(
  name: string,
  options: JobInput['options'] = {},
): Promise<{ job: Job; path: EventPath }> {
  const job = isolatedJob(sandbox, name, { options: { events: true, ...options } });
  const input: JobInput = {
    jobId: job.jobId,
    source: job.source,
    destination: job.destination,
    options: job.options,
  };
  const path = await provisionEventPath(sandbox, input, {
    name: job.jobId,
    copyQueueUrl: fanOut.urls.copy,
    copyQueueArn,
  });
  paths.push(path);
  return { job, path };
}

/** Polls `check` until it holds (the event's outcome is in), failing after WAIT_MS with `what`. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The n-th (1-based) outcome the worker logged for `key` of `job`, once it is logged. */
function outcome(job: Job, key: string, n = 1) {
  return eventually(`outcome ${n} of ${key}`, async () => {
    const lines = log.lines.filter(
      (line) =>
        line.message.startsWith('event ') && line.fields.jobId === job.jobId && line.fields.key === key,
    );
    return lines[n - 1];
  });
}

const destinationBody = (job: Job, key: string) =>
  readObject(consumer, DESTINATION, `${job.destination.prefix}${key.slice(job.source.prefix.length)}`)
    .then((body) => body.toString())
    .catch(() => undefined);

describe('the real moto event path: AccountA default bus → AccountB S3-event bus → copy queue → copy worker', () => {
  it('copies an object written in AccountA with no scheduled run, then its overwrite, and keeps it when deleted (no mirror)', async () => {
    const { job } = await eventJob('ev-path');
    const key = `${job.source.prefix}reports/x y+z.csv`;
    const first = randomText(2_000);

    await putObject(producer, SOURCE, key, first);
    const copied = await outcome(job, key);
    expect(copied.message).toBe('event copied');
    expect(await destinationBody(job, key)).toBe(first);
    expect(copied.fields.lagMs).toBeGreaterThanOrEqual(0);
    expect(await deps.state.recentRuns(job.jobId, 1)).toEqual([]);
    const sequencer = (await deps.state.ledgerEntry(job.jobId, key))?.sequencer;
    expect(sequencer).toMatch(/^[0-9A-F]{64}$/);

    const second = randomText(3_000);
    await putObject(producer, SOURCE, key, second);
    expect((await outcome(job, key, 2)).message).toBe('event copied');
    expect(await destinationBody(job, key)).toBe(second);
    // The sandbox gives each of moto's events a sequencer of its own (sandbox/moto_server.py): it grew.
    expect((await deps.state.ledgerEntry(job.jobId, key))?.sequencer?.localeCompare(sequencer ?? '')).toBe(1);

    await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
    expect(await outcome(job, key, 3)).toMatchObject({
      message: 'event skipped',
      fields: { reason: expect.stringMatching(/not mirrored/) },
    });
    expect(await destinationBody(job, key)).toBe(second);
  });

  it('deletes the copy of a mirror job when the key is deleted in AccountA', async () => {
    const { job } = await eventJob('ev-mirror', { mirror: true });
    const key = `${job.source.prefix}gone.txt`;
    const body = randomText(500);

    await putObject(producer, SOURCE, key, body);
    expect((await outcome(job, key)).message).toBe('event copied');
    expect(await destinationBody(job, key)).toBe(body);
    await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));

    expect((await outcome(job, key, 2)).message).toBe('event deleted');
    expect(await destinationBody(job, key)).toBeUndefined();
  });

  it('admits only AccountA’s forwarding rule on B’s bus (checked by the sandbox: moto does not enforce it)', async () => {
    const { job, path } = await eventJob('ev-policy');
    const busName = `s3-events-${job.jobId}`;
    const admits = (account: string, ruleArn: string) => busAdmits(sandbox, busName, { account, ruleArn });

    expect(await admits(sandbox.accountA.id, path.sourceRuleArn)).toBe(true);
    expect(await admits(sandbox.accountA.id, path.sourceRuleArn.replace(/rule\/.*/, 'rule/another'))).toBe(
      false,
    );
    expect(await admits('333333333333', path.sourceRuleArn)).toBe(false);
  });
});

describe('synthetic S3 events with real sequencers, through B’s bus, the queue and the worker', () => {
  /** Puts an S3 event on the job's S3-event bus, as A's rule would forward it. */
  async function sendEvent(job: Job, key: string, change: 'created' | 'deleted', sequencer: string) {
    const { FailedEntryCount } = await sandboxEvents(sandbox, sandbox.accountB.admin).send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: `s3-events-${job.jobId}`,
            Source: 'aws.s3',
            DetailType: change === 'created' ? 'Object Created' : 'Object Deleted',
            Detail: JSON.stringify({ bucket: { name: SOURCE }, object: { key, sequencer } }),
          },
        ],
      }),
    );
    expect(FailedEntryCount).toBe(0);
  }

  it('applies duplicated and reordered events so that the key never moves backwards (mirror)', async () => {
    // No forwarding rule in A: the key's only events are the ones put on B's bus here, one at a time.
    const job = isolatedJob(sandbox, 'ev-order', { options: { events: true, mirror: true } });
    paths.push(
      await provisionEventPath(
        sandbox,
        { jobId: job.jobId, source: job.source, destination: job.destination, options: job.options },
        { name: job.jobId, copyQueueUrl: fanOut.urls.copy, copyQueueArn, fromAccountA: false },
      ),
    );
    const key = `${job.source.prefix}k.txt`;
    const [s1, s2, s3, s4] = [nextSequencer(), nextSequencer(), nextSequencer(), nextSequencer()];
    let applied = 0;
    const apply = async (change: 'created' | 'deleted', sequencer: string) => {
      await sendEvent(job, key, change, sequencer);
      applied += 1;
      return (await outcome(job, key, applied)).message;
    };
    const ledgerSequencer = async () => (await deps.state.ledgerEntry(job.jobId, key))?.sequencer;

    await putObject(producer, SOURCE, key, randomText(400));
    expect(await apply('created', s1)).toBe('event copied');
    await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
    expect(await apply('deleted', s3)).toBe('event deleted');
    expect(await destinationBody(job, key)).toBeUndefined();
    expect(await ledgerSequencer()).toBe(storedSequencer(s3));

    // A late Object Created made before the delete: the key stays deleted and the ledger where it was.
    expect(await apply('created', s2)).toBe('event stale');
    // The delete delivered again: already applied.
    expect(await apply('deleted', s3)).toBe('event up-to-date');
    expect(await ledgerSequencer()).toBe(storedSequencer(s3));

    const v2 = randomText(600);
    await putObject(producer, SOURCE, key, v2);
    expect(await apply('created', s4)).toBe('event copied');
    // The late s2 once more, and s4 twice: what the ledger records is the source's current version.
    expect(await apply('created', s2)).toBe('event up-to-date');
    expect(await apply('created', s4)).toBe('event up-to-date');
    expect(await destinationBody(job, key)).toBe(v2);
    expect(await ledgerSequencer()).toBe(storedSequencer(s4));
    const head = await consumer.send(
      new HeadObjectCommand({ Bucket: DESTINATION, Key: `${job.destination.prefix}k.txt` }),
    );
    expect(head.ContentLength).toBe(600);
  });
});

describe('messages for no job, and messages that are no event', () => {
  const bareEvent = (bucket: string, key: string) => ({
    id: randomBytes(8).toString('hex'),
    source: 'aws.s3',
    'detail-type': 'Object Created',
    time: new Date().toISOString(),
    detail: { bucket: { name: bucket }, object: { key, sequencer: nextSequencer() } },
  });

  it('matches a bare event against the stored jobs that follow events, and copies it', async () => {
    const job = isolatedJob(sandbox, 'ev-stored', { options: { events: true } });
    const store = new JobStore(deps.state.client, deps.state.tableName);
    await store.add({
      jobId: job.jobId,
      source: job.source,
      destination: job.destination,
      options: { events: true },
    });
    // The sandbox's table is every test file's: a job left stored here would be listed by status --stack
    // in stack-commands (the clean-clone run at 4298f1c failed so).
    onTestFinished(async () => {
      await store.remove(job.jobId);
    });
    const key = `${job.source.prefix}stored.txt`;
    const body = randomText(100);
    await putObject(producer, SOURCE, key, body);

    await sqs.send(
      new SendMessageCommand({
        QueueUrl: fanOut.urls.copy,
        MessageBody: JSON.stringify(bareEvent(SOURCE, key)),
      }),
    );

    expect((await outcome(job, key)).message).toBe('event copied');
    expect(await destinationBody(job, key)).toBe(body);
  });

  it('drops an event for no job with a log line saying why, and deletes its message', async () => {
    const key = `nobody-${randomBytes(3).toString('hex')}/a.txt`;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: fanOut.urls.copy,
        MessageBody: JSON.stringify({ jobId: 'no-such-job', event: bareEvent(SOURCE, key) }),
      }),
    );

    const dropped = await eventually('the drop', async () =>
      log.lines.find((line) => line.message === 'event for no job; dropped' && line.fields.key === key),
    );
    expect(dropped.fields.reason).toMatch(/no job "no-such-job" in the job store/);
  });

  it('fails a malformed event, naming the field, until it waits in the dead-letter queue', async () => {
    const body = JSON.stringify({ jobId: 'x', event: { ...bareEvent(SOURCE, 'k'), source: 'aws.ec2' } });
    await sqs.send(new SendMessageCommand({ QueueUrl: fanOut.urls.copy, MessageBody: body }));

    const inDlq = await eventually('the dead-letter queue', async () => {
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: fanOut.deadLetterUrls.copy,
          WaitTimeSeconds: 1,
          MaxNumberOfMessages: 10,
        }),
      );
      return Messages?.find((message) => message.Body === body);
    });
    expect(inDlq.Body).toBe(body);
    expect(
      log.lines.some(
        (line) =>
          line.message === 'event failed; its message comes back' &&
          /event\.source/.test(String(line.fields.error)),
      ),
    ).toBe(true);
  });
});
