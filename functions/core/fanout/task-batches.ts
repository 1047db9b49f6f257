/**
 * The workers' side of the queues: an SQS batch from a Lambda event source mapping, each record one task,
 * handled with Powertools' batch processor so that only the records that failed come back
 * (`ReportBatchItemFailures`). What happens to a record:
 * - done, or a duplicate, or a task of a pass that is over: deleted;
 * - a message that is not a task (TaskValidationError): failed, and after the queue's receive limit in its
 *   dead-letter queue, where it can be read;
 * - anything else failed (a copy cut by the deadline, DynamoDB unreachable): comes back after the queue's
 *   visibility timeout; a copy task S3 throttled (503 SlowDown) comes back after a pause of its own. On its last receive, a copy task that fails again settles its objects as failed,
 *   so the pass still ends, with them named in its summary, before the message goes to the dead-letter queue.
 *   A part task's last receive aborts its object's upload and counts the object failed (part-task.ts).
 *
 * The copy queue also carries S3 events of jobs that follow them (docs/event-driven.md): such a record is
 * handled by the EventWorker, its failures coming back the same way; an event for no job is dropped.
 */
import { randomBytes } from 'node:crypto';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseCopyTask } from '../dispatch/copy-tasks.js';
import { parsePartTask } from '../dispatch/part-tasks.js';
import { parsePlanShardTask } from '../dispatch/shard-tasks.js';
import { describeError } from '../errors.js';
import type { DeletionBudget } from '../events/deletion-budget.js';
import { isEventMessage } from '../events/event-message.js';
import { type EventControl, EventWorker } from '../events/event-worker.js';
import { MAX_LISTED_KEYS } from '../report/run-tally.js';
import { deadlineMargins, deadlineSignal } from '../run/run-deadline.js';
import type { RunControl, SyncLogger } from '../run/sync-types.js';
import { runCopyTask, TaskThrottledError } from './copy-task.js';
import { type EndControl, settleTask } from './end-pass.js';
import { type FanOutDependencies, PassOpener, PassOverError } from './open-pass.js';
import { runPartTask, settlePartAsFailed } from './part-task.js';
import { planShard } from './plan-shard.js';

/** Receives before SQS moves a message to its dead-letter queue (the queues' redrive policy). */
export const MAX_RECEIVE_COUNT = 5;
/** The first pause of a task S3 throttled, doubled with each receive up to 15 minutes. */
const THROTTLE_DELAY_SECONDS = 30;
const MAX_THROTTLE_DELAY_SECONDS = 900;

export type TaskKind = 'plan-shard' | 'copy' | 'part';

/** What a worker's handler needs besides the event: where it logs, and the queues' receive limit. */
export interface WorkerSettings {
  log: SyncLogger;
  maxReceiveCount?: number;
  /** The first pause of a copy task S3 throttled (seconds; doubled with each receive). */
  throttleDelaySeconds?: number;
  objectRetry?: RunControl['objectRetry'];
  minPartSize?: number;
  /** How long a part's completion claim may be quiet before it is taken over (part-task.ts). */
  claimQuietMs?: number;
}

/**
 * A handler for batches of `kind` tasks. One per container: it keeps the passes it opened (the job as the
 * pass started it, the source role's session) for the tasks that follow.
 */
export function taskBatchHandler(
  deps: FanOutDependencies,
  kind: TaskKind,
  settings: WorkerSettings,
): (event: SQSEvent, context: Context, signal?: AbortSignal) => Promise<SQSBatchResponse> {
  const passes = new PassOpener(deps);
  const events = new EventWorker(deps);
  const { log } = settings;
  const maxReceiveCount = settings.maxReceiveCount ?? MAX_RECEIVE_COUNT;
  const throttleDelaySeconds = settings.throttleDelaySeconds ?? THROTTLE_DELAY_SECONDS;
  return async (event, context, outer) => {
    const margins = deadlineMargins(context.getRemainingTimeInMillis());
    const deadline = deadlineSignal(margins.abortMs, () => context.getRemainingTimeInMillis(), outer);
    const worker = `${context.awsRequestId || 'local'}-${randomBytes(3).toString('hex')}`;
    const control = {
      signal: deadline.signal,
      log,
      worker,
      deadlineAt: Date.now() + context.getRemainingTimeInMillis(),
      objectRetry: settings.objectRetry,
      minPartSize: settings.minPartSize,
      claimQuietMs: settings.claimQuietMs,
    };
    // S3 asked to slow down: the task comes back after a pause that doubles with each receive, instead of
    // after the queue's visibility timeout or at once.
    const delay = async (record: SQSRecord, receives: number) => {
      const seconds = Math.min(MAX_THROTTLE_DELAY_SECONDS, throttleDelaySeconds * 2 ** (receives - 1));
      await deps.queues.delayCopy?.(record.receiptHandle, seconds).catch((error: unknown) =>
        log.warn('could not delay a throttled task; it comes back with the queue timeout', {
          messageId: record.messageId,
          error: describeError(error),
        }),
      );
    };
    // One per batch, made by its first event: the deletion cap it logs once.
    let deletions: DeletionBudget | undefined;
    const handleRecord = async (record: SQSRecord): Promise<void> => {
      if (kind === 'copy' && isEventMessage(record.body)) {
        deletions ??= events.deletionBudget(log);
        await handleEventRecord(events, record, { signal: deadline.signal, log, deletions });
        return;
      }
      try {
        if (kind === 'plan-shard') await planShard(passes, parsePlanShardTask(record.body), control);
        else if (kind === 'part') await runPartTask(passes, parsePartTask(record.body), control);
        else await runCopyTask(passes, parseCopyTask(record.body), control);
      } catch (error) {
        if (error instanceof PassOverError) {
          log.info('task of a pass that is over; dropped', {
            messageId: record.messageId,
            reason: error.message,
          });
          return;
        }
        const receives = Number(record.attributes.ApproximateReceiveCount);
        log.warn('task failed; its message comes back', {
          kind,
          messageId: record.messageId,
          receives,
          error: describeError(error),
        });
        if (kind === 'copy' && receives >= maxReceiveCount)
          await settleAsFailed(passes, record, error, control);
        else if (kind === 'part' && receives >= maxReceiveCount)
          await settlePartAsFailed(passes, record, error, control);
        else if (error instanceof TaskThrottledError) await delay(record, receives);
        throw error;
      }
    };
    try {
      return await processPartialResponse(event, handleRecord, new BatchProcessor(EventType.SQS), {
        context,
        throwOnFullBatchFailure: false,
      });
    } finally {
      deadline.dispose();
    }
  };
}

/** An event record: handled, or failed with a log line (it comes back, then waits in the dead-letter queue). */
async function handleEventRecord(
  events: EventWorker,
  record: SQSRecord,
  control: EventControl,
): Promise<void> {
  try {
    await events.handle(record.body, control);
  } catch (error) {
    control.log.warn('event failed; its message comes back', {
      messageId: record.messageId,
      receives: Number(record.attributes.ApproximateReceiveCount),
      error: describeError(error),
    });
    throw error;
  }
}

/** The last receive of a copy task failed: its objects settle as failed, and the message goes to the DLQ. */
async function settleAsFailed(
  passes: PassOpener,
  record: SQSRecord,
  error: unknown,
  control: EndControl,
): Promise<void> {
  let task: ReturnType<typeof parseCopyTask>;
  try {
    task = parseCopyTask(record.body);
  } catch {
    return; // not a task: no pass counts it
  }
  const pass = await passes.open(task.jobId, task.fence).catch(() => undefined);
  if (!pass) return;
  const reason = `its copy task failed ${record.attributes.ApproximateReceiveCount} times and is in the dead-letter queue: ${describeError(error)}`;
  await settleTask(
    pass,
    task.taskId,
    { failed: task.objects.length, backlogObjects: task.objects.length },
    { failures: task.objects.slice(0, MAX_LISTED_KEYS).map(({ key }) => ({ key, reason })) },
    control,
  );
}
