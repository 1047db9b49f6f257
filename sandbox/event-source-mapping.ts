/**
 * A local stand-in for a Lambda SQS event source mapping: no npm package runs one, so the sandbox polls the
 * queue itself and invokes the handler as Lambda would.
 *
 * What it keeps of Lambda's behaviour (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html):
 * - up to `maximumConcurrency` batches at once, each of up to `batchSize` messages;
 * - the event's shape (`Records` with `messageId`, `receiptHandle`, `body`, `attributes`,
 *   `messageAttributes`, `eventSource: "aws:sqs"`, `eventSourceARN`);
 * - success deletes the batch; a thrown error deletes nothing (every message comes back once its
 *   visibility timeout passes, and goes to the dead-letter queue after the queue's `maxReceiveCount`);
 * - with `ReportBatchItemFailures`, only the messages not named in `batchItemFailures` are deleted, and a
 *   response naming a message that is not in the batch (or none) fails the whole batch.
 * What it leaves out: Lambda's scaling of pollers, batching windows, and retries of its own.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';

/**
 * A function as Lambda would invoke it for one batch. With ReportBatchItemFailures it returns an
 * `SQSBatchResponse`; anything else it returns counts as success for the whole batch.
 */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<unknown>;

export interface MappingSettings {
  queueUrl: string;
  queueArn: string;
  region: string;
  /** Messages per batch (Lambda: 1 to 10,000; SQS hands out at most 10 per receive). */
  batchSize?: number;
  /** Batches handled at once (Lambda's `ScalingConfig.MaximumConcurrency`). */
  maximumConcurrency?: number;
  /** Whether the handler's `batchItemFailures` are honoured (`FunctionResponseTypes`). */
  reportBatchItemFailures?: boolean;
  /** The function's timeout, for `context.getRemainingTimeInMillis()`. */
  functionTimeoutMs?: number;
  /** Seconds a receive waits for messages (long polling); short, so `stop()` is prompt. */
  waitTimeSeconds?: number;
}

/** What the mapping has done so far. */
export interface MappingStats {
  batches: number;
  received: number;
  deleted: number;
  /** Messages left on the queue for redelivery: named in batchItemFailures, or in a batch that failed. */
  returned: number;
  /** Batches whose handler threw or whose response Lambda would reject. */
  failedBatches: number;
  /** Receives or deletes that failed (the poller went on). */
  pollErrors: number;
}

/** How long a poller waits after a failed receive or delete. */
const POLL_ERROR_PAUSE_MS = 200;

export class EventSourceMapping {
  readonly stats: MappingStats = {
    batches: 0,
    received: 0,
    deleted: 0,
    returned: 0,
    failedBatches: 0,
    pollErrors: 0,
  };
  /** The last receive or delete that failed, for a test or a person to look at. */
  lastPollError: unknown;
  readonly #sqs: SQSClient;
  readonly #settings: Required<MappingSettings>;
  readonly #handler: SqsHandler;
  readonly #stop = new AbortController();
  #pollers: Promise<void>[] = [];

  constructor(sqs: SQSClient, settings: MappingSettings, handler: SqsHandler) {
    this.#sqs = sqs;
    this.#settings = {
      batchSize: 10,
      maximumConcurrency: 2,
      reportBatchItemFailures: true,
      functionTimeoutMs: 60_000,
      waitTimeSeconds: 1,
      ...settings,
    };
    if (this.#settings.batchSize < 1 || this.#settings.maximumConcurrency < 1) {
      throw new RangeError('batchSize and maximumConcurrency are at least 1');
    }
    this.#handler = handler;
  }

  /** Starts `maximumConcurrency` pollers. */
  start(): this {
    for (let i = 0; i < this.#settings.maximumConcurrency; i += 1) this.#pollers.push(this.#poll(i));
    return this;
  }

  /** Stops receiving, and waits for the batches being handled to finish. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#pollers);
    this.#pollers = [];
  }

  /**
   * One poller: receive a batch, hand it over, delete what succeeded; until stopped. A failed receive or
   * delete is counted and the poller goes on after a pause, as Lambda's pollers do (a message whose
   * delete failed comes back after its visibility timeout).
   */
  async #poll(poller: number): Promise<void> {
    const { signal } = this.#stop;
    while (!signal.aborted) {
      try {
        const messages = await this.#receive(signal);
        if (messages.length > 0) await this.#handle(messages, poller);
      } catch (error) {
        if (signal.aborted) return;
        this.stats.pollErrors += 1;
        this.lastPollError = error;
        await new Promise((resolve) => setTimeout(resolve, POLL_ERROR_PAUSE_MS));
      }
    }
  }

  async #receive(signal: AbortSignal): Promise<Message[]> {
    const { queueUrl, batchSize, waitTimeSeconds } = this.#settings;
    const messages: Message[] = [];
    // SQS gives at most 10 per receive; a larger batch takes several, as Lambda's pollers do.
    while (messages.length < batchSize && !signal.aborted) {
      const page = await this.#sqs
        .send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, batchSize - messages.length),
            WaitTimeSeconds: messages.length === 0 ? waitTimeSeconds : 0,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: signal },
        )
        .catch((error: unknown) => {
          if (signal.aborted) return { Messages: [] };
          throw error;
        });
      if (!page.Messages?.length) break;
      messages.push(...page.Messages);
    }
    return messages;
  }

  async #handle(messages: Message[], poller: number): Promise<void> {
    this.stats.batches += 1;
    this.stats.received += messages.length;
    const event: SQSEvent = { Records: messages.map((message) => this.#record(message)) };
    let failedIds: Set<string>;
    try {
      const response = await this.#handler(event, this.#context(poller));
      failedIds = this.#failures(response, event);
    } catch {
      failedIds = new Set(event.Records.map((record) => record.messageId));
      this.stats.failedBatches += 1;
    }
    const done = messages.filter((message) => !failedIds.has(message.MessageId ?? ''));
    this.stats.returned += messages.length - done.length;
    for (let at = 0; at < done.length; at += 10) {
      const slice = done.slice(at, at + 10);
      await this.#sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.#settings.queueUrl,
          Entries: slice.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle,
          })),
        }),
      );
      this.stats.deleted += slice.length;
    }
  }

  /** The message ids to leave on the queue, as Lambda reads the handler's response. */
  #failures(response: unknown, event: SQSEvent): Set<string> {
    const all = new Set(event.Records.map((record) => record.messageId));
    const failures = (response as Partial<SQSBatchResponse> | undefined)?.batchItemFailures;
    if (!this.#settings.reportBatchItemFailures || !Array.isArray(failures)) return new Set();
    const named = failures.map((failure) => failure?.itemIdentifier);
    // Lambda: an empty or unknown itemIdentifier fails the whole batch.
    if (named.some((id) => !id || !all.has(id))) {
      this.stats.failedBatches += 1;
      return all;
    }
    return new Set(named);
  }

  #record(message: Message): SQSRecord {
    const system = message.Attributes ?? {};
    return {
      messageId: message.MessageId ?? '',
      receiptHandle: message.ReceiptHandle ?? '',
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: system.ApproximateReceiveCount ?? '1',
        SentTimestamp: system.SentTimestamp ?? String(Date.now()),
        SenderId: system.SenderId ?? '',
        ApproximateFirstReceiveTimestamp: system.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        ...(system.MessageGroupId && { MessageGroupId: system.MessageGroupId }),
        ...(system.MessageDeduplicationId && { MessageDeduplicationId: system.MessageDeduplicationId }),
      },
      messageAttributes: lambdaAttributes(message.MessageAttributes),
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: this.#settings.queueArn,
      awsRegion: this.#settings.region,
    };
  }

  #context(poller: number): Context {
    const deadline = Date.now() + this.#settings.functionTimeoutMs;
    const name = `local-sqs-mapping-${poller}`;
    return {
      callbackWaitsForEmptyEventLoop: false,
      functionName: name,
      functionVersion: '$LATEST',
      invokedFunctionArn: `arn:aws:lambda:${this.#settings.region}:000000000000:function:${name}`,
      memoryLimitInMB: '1024',
      awsRequestId: crypto.randomUUID(),
      logGroupName: `/aws/lambda/${name}`,
      logStreamName: 'local',
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };
  }
}

/** SQS's message attributes in the shape Lambda hands them to a function (lower-case keys, list fields). */
function lambdaAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): SQSMessageAttributes {
  return Object.fromEntries(
    Object.entries(attributes ?? {}).map(([name, value]) => [
      name,
      {
        dataType: value.DataType ?? 'String',
        ...(value.StringValue !== undefined && { stringValue: value.StringValue }),
        ...(value.BinaryValue !== undefined && {
          binaryValue: Buffer.from(value.BinaryValue).toString('base64'),
        }),
        stringListValues: value.StringListValues ?? [],
        binaryListValues: (value.BinaryListValues ?? []).map((item) => Buffer.from(item).toString('base64')),
      },
    ]),
  );
}
