/**
 * A worker function as Lambda runs it: clients from the environment once per container, then middy with
 * Powertools' logger, metrics and tracer around the batch handler. timeoutEarly is off for the reason
 * sync.ts gives: the tasks watch the deadline themselves.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { dependenciesFromEnvironment } from '../clients.js';
import { SyncError } from '../errors.js';
import { logger, metrics, tracer } from '../report/observability.js';
import { type TaskKind, taskBatchHandler } from './task-batches.js';

export function lambdaWorker(kind: TaskKind, env: NodeJS.ProcessEnv = process.env) {
  const dependencies = dependenciesFromEnvironment(logger, env, {
    metrics,
    instrument: (client) => tracer.captureAWSv3Client(client),
  });
  if (!dependencies.queues) {
    throw new SyncError(
      'PLAN_SHARD_QUEUE_URL and COPY_QUEUE_URL are not set: template.yaml sets them for the workers',
    );
  }
  const handleBatch = taskBatchHandler({ ...dependencies, queues: dependencies.queues }, kind, {
    log: logger,
    maxReceiveCount: Number(env.TASK_MAX_RECEIVE_COUNT) || undefined,
  });
  return middy<SQSEvent, SQSBatchResponse, Error, Context>({ timeoutEarlyInMillis: 0 })
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics))
    .handler((event, context, { signal }) => handleBatch(event, context, signal));
}
