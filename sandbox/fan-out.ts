/**
 * Fan-out on the sandbox (docs/fan-out.md): the queues template.yaml declares (plan-shard, copy and part,
 * each with a dead-letter queue), created on moto's SQS, and local event source mappings that hand their batches
 * to the worker handlers in this process, as Lambda would hand them to the worker functions.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { sqsTaskQueues, type TaskQueueUrls } from '../functions/core/dispatch/task-queue.js';
import type { FanOutDependencies } from '../functions/core/fanout/open-pass.js';
import {
  MAX_RECEIVE_COUNT,
  type TaskKind,
  taskBatchHandler,
  type WorkerSettings,
} from '../functions/core/fanout/task-batches.js';
import { silentLogger } from '../functions/core/run/sync-job.js';
import type { SyncDependencies } from '../functions/core/run/sync-types.js';
import { EventSourceMapping, type SqsHandler } from './event-source-mapping.js';

/** A worker's handler as the mapping calls it, and with the signal a test may cut it short with. */
export type WorkerHandler = (event: SQSEvent, context: Context, signal?: AbortSignal) => Promise<unknown>;

export interface FanOutOptions {
  /** Copy batches handled at once: the copy mapping's MaximumConcurrency. */
  workers: number;
  /** Part tasks handled at once: the part mapping's MaximumConcurrency (default: `workers`). */
  partWorkers?: number;
  /** Seconds a received task stays hidden: longer than a task takes on a loaded machine. */
  visibilityTimeoutSeconds?: number;
  /**
   * The workers' timeout, which their deadline margins scale with (template.yaml: 900 s). Kept apart from
   * the visibility timeout, which a test may shorten to see tasks come back sooner.
   */
  functionTimeoutMs?: number;
  maxReceiveCount?: number;
  /**
   * Wraps each kind's handler (tests duplicate deliveries, or cut one short with `signal` as Lambda's
   * timeout would, here).
   */
  around?: (kind: TaskKind, handler: WorkerHandler) => SqsHandler;
  worker?: Omit<WorkerSettings, 'maxReceiveCount'>;
  /**
   * Runs each kind's batches elsewhere instead of in this process (sandbox/worker-processes.ts: the
   * bundled functions in child processes), given the queues' URLs the functions read from their
   * environment. `around` still wraps it.
   */
  workerHandler?: (kind: TaskKind, urls: TaskQueueUrls) => WorkerHandler;
}

/** The fan-out queues on the sandbox, and the mappings working them. */
export interface LocalFanOut {
  urls: TaskQueueUrls;
  deadLetterUrls: TaskQueueUrls;
  /** The dependencies with the queues: what the scheduled function and the workers use. */
  deps: FanOutDependencies;
  mappings: Record<TaskKind, EventSourceMapping>;
  /** Stops the mappings (waiting for the batches at work) and deletes the queues. */
  stop(): Promise<void>;
}

/**
 * Creates the queues (named `sync-<random>-…`, which the sandbox's syncer may use) and starts the
 * mappings. `sqs` acts as AccountB's admin, who creates queues; `deps` are the syncer's.
 */
export async function startLocalFanOut(
  sqs: SQSClient,
  region: string,
  deps: SyncDependencies,
  workerSqs: SQSClient,
  options: FanOutOptions,
): Promise<LocalFanOut> {
  const id = randomBytes(3).toString('hex');
  const visibility = options.visibilityTimeoutSeconds ?? 120;
  const maxReceiveCount = options.maxReceiveCount ?? MAX_RECEIVE_COUNT;
  const created: string[] = [];
  const queue = async (name: string, attributes: Record<string, string> = {}) => {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: `sync-${id}-${name}`, Attributes: attributes }),
    );
    if (!QueueUrl) throw new Error(`CreateQueue sync-${id}-${name} returned no URL`);
    created.push(QueueUrl);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    return { url: QueueUrl, arn: Attributes?.QueueArn ?? '' };
  };
  const workQueue = async (name: string) => {
    const dlq = await queue(`${name}-dlq`);
    const work = await queue(name, {
      VisibilityTimeout: String(visibility),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }),
    });
    return { work, dlq };
  };
  const [planShard, copy, part] = await Promise.all([
    workQueue('plan-shard'),
    workQueue('copy'),
    workQueue('part'),
  ]);
  const urls = { planShard: planShard.work.url, copy: copy.work.url, part: part.work.url };
  const fanOutDeps: FanOutDependencies = { ...deps, queues: sqsTaskQueues(workerSqs, urls) };
  const log = options.worker?.log ?? deps.logger ?? silentLogger;
  const handlerOf = (kind: TaskKind): SqsHandler => {
    const handle =
      options.workerHandler?.(kind, urls) ??
      taskBatchHandler(fanOutDeps, kind, { ...options.worker, log, maxReceiveCount });
    return options.around ? options.around(kind, handle) : (event, context) => handle(event, context);
  };
  const mappingOn = (queueOf: { work: { url: string; arn: string } }, kind: TaskKind, concurrency: number) =>
    new EventSourceMapping(
      workerSqs,
      {
        queueUrl: queueOf.work.url,
        queueArn: queueOf.work.arn,
        region,
        // One task per invocation: a copy task is already a batch of objects.
        batchSize: 1,
        maximumConcurrency: concurrency,
        reportBatchItemFailures: true,
        functionTimeoutMs: options.functionTimeoutMs ?? 900_000,
      },
      handlerOf(kind),
    ).start();
  const mappings = {
    'plan-shard': mappingOn(planShard, 'plan-shard', Math.max(1, Math.min(options.workers, 4))),
    copy: mappingOn(copy, 'copy', options.workers),
    part: mappingOn(part, 'part', options.partWorkers ?? options.workers),
  };
  return {
    urls,
    deadLetterUrls: { planShard: planShard.dlq.url, copy: copy.dlq.url, part: part.dlq.url },
    deps: fanOutDeps,
    mappings,
    async stop() {
      await Promise.all(Object.values(mappings).map((mapping) => mapping.stop()));
      await Promise.all(created.map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))));
    },
  };
}
