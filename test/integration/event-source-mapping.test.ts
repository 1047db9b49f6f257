import { randomBytes } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { sandboxSqs } from '../../sandbox/clients.js';
import {
  EventSourceMapping,
  type MappingSettings,
  type SqsHandler,
} from '../../sandbox/event-source-mapping.js';

const sandbox = inject('sandbox');
const sqs: SQSClient = sandboxSqs(sandbox, sandbox.accountB.admin);
const queues: string[] = [];
let mapping: EventSourceMapping | undefined;

afterEach(async () => {
  await mapping?.stop();
  mapping = undefined;
  await Promise.all(queues.splice(0).map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))));
});

async function queue(name: string, attributes: Record<string, string> = {}) {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${name}-${randomBytes(4).toString('hex')}`,
      Attributes: attributes,
    }),
  );
  if (!QueueUrl) throw new Error('CreateQueue returned no URL');
  queues.push(QueueUrl);
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  return { url: QueueUrl, arn: Attributes?.QueueArn ?? '' };
}

/**
 * A work queue with a DLQ after `maxReceiveCount` receives and a visibility timeout of `visibilityTimeout`
 * seconds: short where a test waits for redelivery, long enough that a slow machine does not see a message
 * come back while it is still being handled.
 */
async function workQueue(maxReceiveCount: number, visibilityTimeout = 1) {
  const dlq = await queue('dlq');
  const work = await queue('work', {
    VisibilityTimeout: String(visibilityTimeout),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }),
  });
  return { work, dlq };
}

/** A mapping on `work` with these settings, not started. */
const mapOn = (work: { url: string; arn: string }, settings: Partial<MappingSettings>, handler: SqsHandler) =>
  new EventSourceMapping(
    sqs,
    { queueUrl: work.url, queueArn: work.arn, region: sandbox.region, ...settings },
    handler,
  );

async function send(url: string, bodies: string[]) {
  for (let at = 0; at < bodies.length; at += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: bodies.slice(at, at + 10).map((body, index) => ({
          Id: String(index),
          MessageBody: body,
          MessageAttributes: { job: { DataType: 'String', StringValue: 'docs' } },
        })),
      }),
    );
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) {
      const { stats, lastPollError } = mapping ?? {};
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify(stats)} ${String(lastPollError ?? '')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function bodiesIn(url: string): Promise<string[]> {
  const found: string[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) return found.sort();
    found.push(...Messages.map((message) => message.Body ?? ''));
  }
}

describe('EventSourceMapping: the sandbox polls SQS for a handler as Lambda does (moto SQS, real HTTP)', () => {
  it('hands over every message once in batches of at most batchSize, in the shape Lambda gives, and deletes them', async () => {
    const { work } = await workQueue(3, 30);
    const bodies = Array.from({ length: 23 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    await send(work.url, bodies);
    const seen: string[] = [];
    const sizes: number[] = [];
    let first: SQSEvent['Records'][number] | undefined;

    mapping = mapOn(work, { batchSize: 5, maximumConcurrency: 2 }, async (event) => {
      sizes.push(event.Records.length);
      first ??= event.Records[0];
      seen.push(...event.Records.map((record) => record.body));
    }).start();
    await until(() => mapping?.stats.deleted === bodies.length, 'every message deleted');

    expect(seen.sort()).toEqual(bodies);
    expect(mapping.stats).toMatchObject({ received: bodies.length, pollErrors: 0 });
    expect(Math.max(...sizes)).toBeLessThanOrEqual(5);
    expect(first).toMatchObject({
      eventSource: 'aws:sqs',
      eventSourceARN: work.arn,
      awsRegion: sandbox.region,
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: { job: { dataType: 'String', stringValue: 'docs' } },
    });
    expect(await bodiesIn(work.url)).toEqual([]);
  });

  it('deletes the rest of a batch and hands the failed items again after the visibility timeout', async () => {
    const { work } = await workQueue(5, 3);
    await send(work.url, ['a', 'b', 'c']);
    const attempts = new Map<string, number>();
    const handler: SqsHandler = async (event) => {
      const batchItemFailures = [];
      for (const record of event.Records) {
        const count = (attempts.get(record.body) ?? 0) + 1;
        attempts.set(record.body, count);
        if (record.body === 'b' && count === 1) batchItemFailures.push({ itemIdentifier: record.messageId });
      }
      return { batchItemFailures };
    };

    mapping = mapOn(work, {}, handler).start();
    await until(() => mapping?.stats.deleted === 3, 'all three deleted');

    expect(Object.fromEntries(attempts)).toEqual({ a: 1, b: 2, c: 1 });
    expect(mapping.stats.returned).toBe(1);
  });

  it('returns a whole batch whose handler throws, and moves a message that always fails to the DLQ', async () => {
    const { work, dlq } = await workQueue(2);
    await send(work.url, ['poison']);
    let calls = 0;

    mapping = mapOn(work, { maximumConcurrency: 1 }, async () => {
      calls += 1;
      throw new Error('cannot handle this');
    }).start();
    await until(() => calls >= 2, 'two receives');
    // After its second receive the message is due for the DLQ on the next one.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await mapping.stop();

    expect(calls).toBe(2);
    expect(mapping.stats).toMatchObject({ deleted: 0, failedBatches: 2 });
    expect(await bodiesIn(dlq.url)).toEqual(['poison']);
  });

  it('fails the whole batch when the response names a message that is not in it, as Lambda does', async () => {
    const { work } = await workQueue(5, 3);
    await send(work.url, ['x', 'y']);
    let calls = 0;

    mapping = mapOn(work, { maximumConcurrency: 1 }, async () => {
      calls += 1;
      return calls === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] } : undefined;
    }).start();
    await until(() => mapping?.stats.deleted === 2, 'both deleted on the second delivery');

    expect(mapping.stats).toMatchObject({ failedBatches: 1, returned: 2 });
  });

  it('handles at most maximumConcurrency batches at once', async () => {
    const { work } = await workQueue(5, 30);
    await send(
      work.url,
      Array.from({ length: 12 }, (_, i) => `n${i}`),
    );
    let running = 0;
    let most = 0;

    mapping = mapOn(work, { batchSize: 2, maximumConcurrency: 3 }, async () => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 100));
      running -= 1;
    }).start();
    await until(() => mapping?.stats.deleted === 12, 'all deleted');

    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThan(1);
  });
});
