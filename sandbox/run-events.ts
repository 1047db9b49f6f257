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
 * arrives (or about `seconds` pass). Messages read along the way are deleted.
 */
export async function receiveRunEvent(
  info: SandboxInfo,
  runId: string,
  seconds = 5,
): Promise<DeliveredRunEvent | undefined> {
  const sqs = new SQSClient({
    region: info.region,
    endpoint: info.motoEndpoint,
    credentials: { ...info.accountB.admin },
  });
  const queue = info.accountB.eventsQueueUrl;
  for (let waited = 0; waited < seconds; waited += 1) {
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
