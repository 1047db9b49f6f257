import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { dependenciesFromEnvironment } from './core/clients.js';
import { logger } from './core/logger.js';
import { syncFromEvent } from './core/sync-job.js';

/** Abort in-flight uploads this long before Lambda's hard timeout, so aborts and state writes land. */
const ABORT_BEFORE_TIMEOUT_MS = 15_000;

const dependencies = dependenciesFromEnvironment(logger);

/** Scheduled sync: the EventBridge Scheduler input is the job. */
export const handler = middy<unknown, unknown, Error, Context>({
  timeoutEarlyInMillis: ABORT_BEFORE_TIMEOUT_MS,
})
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event, context, { signal }) =>
    syncFromEvent(dependencies, event, { signal, remainingTimeMs: () => context.getRemainingTimeInMillis() }),
  );
