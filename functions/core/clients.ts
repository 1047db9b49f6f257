import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { SyncError } from './errors.js';
import { StateStore } from './state-store.js';
import type { SyncDependencies, SyncLogger, SyncMetrics } from './sync-job.js';

/** The SDK retries throttling and 5xx with backoff; a few more tries than its default 3 ride out bursts. */
const MAX_ATTEMPTS = 5;

/**
 * Builds the sync's clients from the environment, once per Lambda container.
 *
 * Endpoints come from the SDK's own `AWS_ENDPOINT_URL_*` variables; when one points S3 somewhere
 * local (the sandbox), path-style addressing is used, as local S3 servers need it. With EVENT_BUS_NAME
 * set, each run publishes a "Sync Run Completed" event there.
 *
 * @param instrument wraps each client once built (the tracer's captureAWSv3Client in Lambda).
 */
export function dependenciesFromEnvironment(
  logger: SyncLogger,
  env: NodeJS.ProcessEnv = process.env,
  options: { metrics?: SyncMetrics; instrument?: <T>(client: T) => T } = {},
): SyncDependencies {
  const instrument = options.instrument ?? (<T>(client: T) => client);
  const tableName = env.STATE_TABLE_NAME;
  if (!tableName) {
    throw new SyncError(
      'STATE_TABLE_NAME is not set: point it at the DynamoDB table that template.yaml creates ' +
        '(or `npm run sandbox` prints one for local runs)',
    );
  }
  const s3Config: S3ClientConfig = {
    forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL),
    maxAttempts: MAX_ATTEMPTS,
  };
  const busName = env.EVENT_BUS_NAME;
  return {
    sts: instrument(new STSClient({ maxAttempts: MAX_ATTEMPTS })),
    destinationS3: instrument(new S3Client(s3Config)),
    state: new StateStore(instrument(new DynamoDBClient({ maxAttempts: MAX_ATTEMPTS })), tableName),
    sourceS3: (credentials, region) =>
      instrument(new S3Client({ ...s3Config, credentials, ...(region && { region }) })),
    ...(busName && {
      events: { client: instrument(new EventBridgeClient({ maxAttempts: MAX_ATTEMPTS })), busName },
    }),
    ...(options.metrics && { metrics: options.metrics }),
    logger,
  };
}
