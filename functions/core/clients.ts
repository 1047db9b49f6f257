import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { SyncError } from './errors.js';
import { StateStore } from './state-store.js';
import type { SyncDependencies, SyncLogger } from './sync-job.js';

/** The SDK retries throttling and 5xx with backoff; a few more tries than its default 3 ride out bursts. */
const MAX_ATTEMPTS = 5;

/**
 * Builds the sync's clients from the environment, once per Lambda container.
 *
 * Endpoints come from the SDK's own `AWS_ENDPOINT_URL_*` variables; when one points S3 somewhere
 * local (the sandbox), path-style addressing is used, as local S3 servers need it.
 */
export function dependenciesFromEnvironment(
  logger: SyncLogger,
  env: NodeJS.ProcessEnv = process.env,
): SyncDependencies {
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
  return {
    sts: new STSClient({ maxAttempts: MAX_ATTEMPTS }),
    destinationS3: new S3Client(s3Config),
    state: new StateStore(new DynamoDBClient({ maxAttempts: MAX_ATTEMPTS }), tableName),
    sourceS3: (credentials, region) => new S3Client({ ...s3Config, credentials, ...(region && { region }) }),
    logger,
  };
}
