import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import type { DoctorDependencies } from './diagnose/diagnose-job.js';
import { sqsTaskQueues } from './dispatch/task-queue.js';
import { SyncError } from './errors.js';
import { buildOnce } from './lazy-client.js';
import { type SdkLogger, sdkLogger } from './report/sdk-logger.js';
import type { SyncDependencies, SyncLogger, SyncMetrics } from './run/sync-job.js';
import { StateStore } from './state/state-store.js';

/** The SDK retries throttling and 5xx with backoff; a few more tries than its default 3 ride out bursts. */
const MAX_ATTEMPTS = 5;

/**
 * How long a client waits before it gives up on one HTTP attempt (the SDK then retries it, and a copy
 * whose body stalls is retried by retry.ts). Without these a stalled connection hangs the run forever,
 * with the lease heartbeat keeping the job locked.
 */
export interface ClientTimeouts {
  /** TCP connect. */
  connectionMs: number;
  /** Request sent to response headers received: bounds a whole upload part, so it is the longest. */
  requestMs: number;
  /**
   * No byte in either direction for this long fails the attempt. This is what judges a streamed body:
   * by progress, not total time, so a 5 GiB GET may take minutes while a stalled one fails in seconds.
   */
  idleMs: number;
}

/**
 * S3: an 8 MiB part at a slow 100 KiB/s takes ~80 s to send before S3 answers, so 2 minutes to the
 * response; S3 sends a first byte well within 20 s of a GET or the end of a PUT body.
 */
export const S3_TIMEOUTS: ClientTimeouts = { connectionMs: 5_000, requestMs: 120_000, idleMs: 20_000 };
/** STS, DynamoDB, EventBridge: small JSON calls answered in milliseconds; 10 s is a dead endpoint. */
export const CONTROL_TIMEOUTS: ClientTimeouts = { connectionMs: 5_000, requestMs: 10_000, idleMs: 10_000 };

/**
 * The SDK's NodeHttpHandler settings for `timeouts`. In @smithy/node-http-handler 4.x `requestTimeout`
 * only warns unless `throwOnRequestTimeout` is set, and `socketTimeout` is the idle timer that also
 * covers the response body while it is read. With `logger`, the handler's warnings (a socket pool at
 * capacity) are lines of it rather than of the console (report/sdk-logger.ts).
 */
export function httpHandlerOptions(timeouts: ClientTimeouts, logger?: SdkLogger) {
  return {
    connectionTimeout: timeouts.connectionMs,
    requestTimeout: timeouts.requestMs,
    throwOnRequestTimeout: true,
    socketTimeout: timeouts.idleMs,
    ...(logger && { logger }),
  };
}

/**
 * Builds the sync's clients from the environment, once per Lambda container.
 *
 * Endpoints come from the SDK's own `AWS_ENDPOINT_URL_*` variables; when one points S3 somewhere
 * local (the sandbox), path-style addressing is used, as local S3 servers need it. With EVENT_BUS_NAME
 * set, each run publishes a "Sync Run Completed" event there. With PLAN_SHARD_QUEUE_URL and
 * COPY_QUEUE_URL set (both, or neither), large jobs fan out over the workers (docs/fan-out.md). The
 * EventBridge and SQS clients are built, and their SDK packages loaded, when first sent to (lazy-client.ts).
 *
 * @param instrument wraps each client once built (the tracer's captureAWSv3Client in Lambda).
 * @param timeouts replaces every client's timeouts (tests make a stall fail fast).
 */
export function dependenciesFromEnvironment(
  logger: SyncLogger,
  env: NodeJS.ProcessEnv = process.env,
  options: { metrics?: SyncMetrics; instrument?: <T>(client: T) => T; timeouts?: ClientTimeouts } = {},
): SyncDependencies {
  const instrument = options.instrument ?? (<T>(client: T) => client);
  const tableName = env.STATE_TABLE_NAME;
  if (!tableName) {
    throw new SyncError(
      'STATE_TABLE_NAME is not set: point it at the DynamoDB table that template.yaml creates ' +
        '(or `npm run sandbox` prints one for local runs)',
    );
  }
  const warnings = sdkLogger(logger);
  const s3Config: S3ClientConfig = {
    forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL),
    // A bucket in another region answers 301 with x-amz-bucket-region; the request is sent again there.
    // The source client is built in its bucket's region (openSourceAccess), so this is a safety net there;
    // a destination bucket outside the function's region pays one redirect per request.
    followRegionRedirects: true,
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: httpHandlerOptions(options.timeouts ?? S3_TIMEOUTS, warnings),
  };
  const control = {
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: httpHandlerOptions(options.timeouts ?? CONTROL_TIMEOUTS, warnings),
  };
  const busName = env.EVENT_BUS_NAME;
  const planShardQueue = env.PLAN_SHARD_QUEUE_URL;
  const copyQueue = env.COPY_QUEUE_URL;
  if (Boolean(planShardQueue) !== Boolean(copyQueue)) {
    throw new SyncError(
      'PLAN_SHARD_QUEUE_URL and COPY_QUEUE_URL go together: set both (fan-out) or neither (inline runs only)',
    );
  }
  return {
    sts: instrument(new STSClient(control)),
    destinationS3: instrument(new S3Client(s3Config)),
    destinationS3In: (region) => instrument(new S3Client({ ...s3Config, region })),
    state: new StateStore(instrument(new DynamoDBClient(control)), tableName),
    sourceS3: (credentials, region) =>
      // Stryker disable next-line ConditionalExpression: with no region, `{ region: undefined }` leaves the SDK to its default region as leaving the key out does
      instrument(new S3Client({ ...s3Config, credentials, ...(region && { region }) })),
    ...(busName && {
      events: {
        client: buildOnce(async () => {
          const { EventBridgeClient } = await import('@aws-sdk/client-eventbridge');
          return instrument(new EventBridgeClient(control));
        }),
        busName,
      },
    }),
    ...(planShardQueue &&
      copyQueue && {
        queues: sqsTaskQueues(
          buildOnce(async () => {
            const { SQSClient } = await import('@aws-sdk/client-sqs');
            return instrument(new SQSClient(control));
          }),
          {
            planShard: planShardQueue,
            copy: copyQueue,
            part: env.PART_QUEUE_URL || undefined,
          },
        ),
      }),
    ...(options.metrics && { metrics: options.metrics }),
    logger,
  };
}

/** Where STS is called from `env` (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else AWS's regional one). */
export function stsEndpointOf(env: NodeJS.ProcessEnv): string {
  return (
    env.AWS_ENDPOINT_URL_STS ||
    env.AWS_ENDPOINT_URL ||
    `https://sts.${env.AWS_REGION || env.AWS_DEFAULT_REGION || '<region>'}.amazonaws.com`
  );
}

/**
 * The doctor's dependencies made of the sync's own clients, so a doctor event run by the function checks
 * every link with exactly the identity, endpoints and table a scheduled run uses.
 */
export function doctorDependenciesOf(deps: SyncDependencies, env: NodeJS.ProcessEnv): DoctorDependencies {
  return {
    sts: deps.sts,
    destinationS3: deps.destinationS3,
    sourceS3: (credentials, region) => deps.sourceS3(async () => credentials, region),
    dynamodb: deps.state.client,
    tableName: deps.state.tableName,
    stsEndpoint: stsEndpointOf(env),
    callerIsFunction: true,
  };
}
