import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { dependenciesFromEnvironment } from './core/clients.js';
import { handleEvent } from './core/handle-event.js';
import { logger, metrics, tracer } from './core/report/observability.js';

const dependencies = dependenciesFromEnvironment(logger, process.env, {
  metrics,
  instrument: (client) => tracer.captureAWSv3Client(client),
});

/**
 * Scheduled sync: the EventBridge Scheduler input is the job. `{"doctor": <job>}` returns the doctor's
 * report for the job instead, checked as this function's role (core/handle-event.ts).
 *
 * middy's timeoutEarly is off (0): it would reject the invocation while the run is still ending (lease
 * held, metrics lost, the errors alarm and the failed-runs queue triggered). The run watches the deadline
 * itself (run-deadline.ts) and returns `status: 'partial'` in time; the time left when the handler starts
 * is the function's Timeout, which its margins scale with.
 */
export const handler = middy<unknown, unknown, Error, Context>({ timeoutEarlyInMillis: 0 })
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler((event, context, { signal }) =>
    handleEvent(dependencies, event, {
      signal,
      remainingTimeMs: () => context.getRemainingTimeInMillis(),
      timeoutMs: context.getRemainingTimeInMillis(),
    }),
  );
