import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SandboxInfo } from './sandbox.js';

/** A run event as the sandbox bus's rule delivers it: an EventBridge envelope around the run summary. */
export interface DeliveredRunEvent {
  source: string;
  'detail-type': string;
  detail: { jobId: string; runId: string; copied: number } & Record<string, unknown>;
}

/**
 * Reads the queue behind the sandbox bus's rule, as a pipeline would, until the event of `runId`
 * arrives or `seconds` pass. Every message read is deleted, so earlier runs' events drain as it goes.
 */
export async function receiveRunEvent(
  info: SandboxInfo,
  runId: string,
  seconds = 10,
): Promise<DeliveredRunEvent | undefined> {
  const sqs = new SQSClient({
    region: info.region,
    endpoint: info.motoEndpoint,
    credentials: { ...info.accountB.admin },
  });
  const queue = info.accountB.eventsQueueUrl;
  const giveUpAt = Date.now() + seconds * 1000;
  while (Date.now() < giveUpAt) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    let found: DeliveredRunEvent | undefined;
    for (const message of Messages) {
      const event = JSON.parse(message.Body ?? '{}') as DeliveredRunEvent;
      if (event.detail?.runId === runId) found = event;
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: message.ReceiptHandle }));
    }
    if (found) return found;
  }
  return undefined;
}
