/**
 * Where a pass's tasks go: one SQS queue per kind of task (docs/fan-out.md). Inline runs have none.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describeError, SyncError } from '../errors.js';
import { clientOf, type LazyClient } from '../lazy-client.js';
import type { CopyTask } from './copy-tasks.js';
import type { PartTask } from './part-tasks.js';
import type { PlanShardTask } from './shard-tasks.js';

/** Sends one task; resolves once the queue has it. */
export type TaskSender<T> = (task: T) => Promise<void>;

/** The queues a fan-out deployment has. */
export interface TaskQueues {
  planShard: TaskSender<PlanShardTask>;
  copy: TaskSender<CopyTask>;
  /** Parts of giant objects (options.fanOut.partTasksAbove); without it they go as copy tasks. */
  part?: TaskSender<PartTask>;
  /** Hides a received copy task for `seconds` more (SQS ChangeMessageVisibility), so it comes back later. */
  delayCopy?: (receiptHandle: string, seconds: number) => Promise<void>;
}

/** The queues' URLs, from the function's environment (template.yaml sets them). */
export interface TaskQueueUrls {
  planShard: string;
  copy: string;
  part?: string;
}

/**
 * The queues at `urls`, through `sqs`. The SQS package is loaded at the first send, not at start (an inline
 * run never sends; see lazy-client.ts).
 */
export function sqsTaskQueues(sqs: LazyClient<SQSClient>, urls: TaskQueueUrls): TaskQueues {
  return {
    planShard: sender(sqs, urls.planShard),
    copy: sender(sqs, urls.copy),
    ...(urls.part && { part: sender<PartTask>(sqs, urls.part) }),
    delayCopy: async (receiptHandle, seconds) => {
      const { ChangeMessageVisibilityCommand } = await import('@aws-sdk/client-sqs');
      await (await clientOf(sqs)).send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: urls.copy,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
    },
  };
}

function sender<T extends { kind: string; taskId: string }>(
  sqs: LazyClient<SQSClient>,
  queueUrl: string,
): TaskSender<T> {
  return async (task) => {
    try {
      const { SendMessageCommand } = await import('@aws-sdk/client-sqs');
      await (await clientOf(sqs)).send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(task) }),
      );
    } catch (error) {
      throw new TaskQueueError(
        `sending ${task.kind} task ${task.taskId} to ${queueUrl} failed: ${describeError(error)}. ` +
          'Check that the queue exists and the function may sqs:SendMessage to it',
        { cause: error },
      );
    }
  };
}

/** A task could not be handed to its queue. */
export class TaskQueueError extends SyncError {}
