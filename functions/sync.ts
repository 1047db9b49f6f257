import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { dependenciesFromEnvironment } from './core/clients.js';
import { logger, metrics, tracer } from './core/observability.js';
import { syncFromEvent } from './core/sync-job.js';

/** Abort in-flight uploads this long before Lambda's hard timeout, so aborts and state writes land. */
const ABORT_BEFORE_TIMEOUT_MS = 15_000;

const dependencies = dependenciesFromEnvironment(logger, process.env, {
  metrics,
  instrument: (client) => tracer.captureAWSv3Client(client),
});

/** Scheduled sync: the EventBridge Scheduler input is the job. */
export const handler = middy<unknown, unknown, Error, Context>({
  timeoutEarlyInMillis: ABORT_BEFORE_TIMEOUT_MS,
})
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler((event, context, { signal }) =>
    syncFromEvent(dependencies, event, { signal, remainingTimeMs: () => context.getRemainingTimeInMillis() }),
  );
