import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import {
  CONTROL_TIMEOUTS,
  dependenciesFromEnvironment,
  httpHandlerOptions,
  S3_TIMEOUTS,
  stsEndpointOf,
} from '../functions/core/clients.js';
import type { DoctorDependencies } from '../functions/core/diagnose/diagnose-job.js';
import type { EventPathDependencies } from '../functions/core/diagnose/event-path.js';
import type { JobStatusDependencies } from '../functions/core/diagnose/read-job-status.js';
import type { SyncDependencies, SyncLogger } from '../functions/core/run/sync-job.js';
import { JobStore } from '../functions/core/state/job-store.js';
import { StateStore } from '../functions/core/state/state-store.js';
import type { StackDoctorDependencies } from './diagnose-stack-command.js';
import { UsageError } from './exit-codes.js';
import type { JobsDependencies } from './jobs-command.js';
import type { EventPathFlags } from './parse-arguments.js';
import type { StackReaderDependencies } from './read-stack.js';

// The clients below read region, credentials and AWS_ENDPOINT_URL_* from the process environment, as
// the function's do; --sandbox points that environment at the sandbox before they are built.

function requireTableName(env: NodeJS.ProcessEnv): string {
  const tableName = env.STATE_TABLE_NAME;
  if (!tableName) {
    throw new UsageError(
      "STATE_TABLE_NAME is not set: export the stack's StateTableName output (or use --sandbox)",
    );
  }
  return tableName;
}

/** The fix for the SDK's "Region is missing": every command says the same. */
export const REGION_FIX =
  "no AWS region is set: export AWS_REGION (e.g. AWS_REGION=eu-west-1, the stack's region), " +
  'or set region in your AWS profile';

/** Whether `error` is the SDK saying it found no region in the environment or the profile. */
export function isRegionMissing(error: unknown): boolean {
  return error instanceof Error && error.message === 'Region is missing';
}

/**
 * Resolves the region once, up front, as the clients will (AWS_REGION, AWS_DEFAULT_REGION, then the
 * profile), so a missing region is a usage error before any call instead of a different failure per
 * command (an STS, S3 or DynamoDB error that doctor would blame on credentials or permissions).
 */
export async function requireRegion(env: NodeJS.ProcessEnv): Promise<void> {
  if (env.AWS_REGION || env.AWS_DEFAULT_REGION) return;
  try {
    await new STSClient({}).config.region();
  } catch (error) {
    if (isRegionMissing(error)) throw new UsageError(REGION_FIX, { cause: error });
    throw error;
  }
}

function s3Config(env: NodeJS.ProcessEnv): S3ClientConfig {
  // Local S3 servers need path-style addressing, as in functions/core/clients.ts.
  return {
    forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL),
    requestHandler: httpHandlerOptions(S3_TIMEOUTS),
  };
}

/** STS and DynamoDB: the same timeouts as the function's, so no command hangs on a dead endpoint. */
function controlConfig() {
  return { requestHandler: httpHandlerOptions(CONTROL_TIMEOUTS) };
}

/** The function's own dependencies (publishing run events when EVENT_BUS_NAME is set). */
export function buildSyncDependencies(env: NodeJS.ProcessEnv, logger: SyncLogger): SyncDependencies {
  requireTableName(env);
  return dependenciesFromEnvironment(logger, env);
}

/** What `doctor` calls with; a missing table name is one of its findings, not a usage error. */
export function buildDoctorDependencies(env: NodeJS.ProcessEnv): DoctorDependencies {
  const config = s3Config(env);
  return {
    sts: new STSClient(controlConfig()),
    destinationS3: new S3Client(config),
    sourceS3: (credentials, region) => new S3Client({ ...config, credentials, ...(region && { region }) }),
    dynamodb: new DynamoDBClient(controlConfig()),
    tableName: env.STATE_TABLE_NAME || undefined,
    stsEndpoint: stsEndpointOf(env),
  };
}

/**
 * What `doctor` follows a job's event path with: the flags, else the stack's outputs. No bus, no event
 * path (undefined). AccountA's clients only with --source-profile: this shell is AccountB's identity, and
 * the sync's read-only role may not read A's rules or bucket configuration.
 */
export function buildEventPathDependencies(
  env: NodeJS.ProcessEnv,
  flags: EventPathFlags = {},
  stack: { bus?: string; queueUrl?: string } = {},
): EventPathDependencies | undefined {
  const busName = flags.bus ?? stack.bus;
  if (!busName) return undefined;
  const queueUrl = flags.queueUrl ?? stack.queueUrl;
  const profile = flags.sourceProfile;
  return {
    consumerEvents: new EventBridgeClient(controlConfig()),
    busName,
    ...(queueUrl && { queue: { sqs: new SQSClient(controlConfig()), url: queueUrl } }),
    ...(profile && {
      producer: {
        events: new EventBridgeClient({ ...controlConfig(), profile }),
        s3: new S3Client({ ...s3Config(env), profile }),
      },
    }),
  };
}

/** What `status` reads with. */
export function buildStatusDependencies(env: NodeJS.ProcessEnv): JobStatusDependencies {
  const tableName = requireTableName(env);
  return { state: new StateStore(new DynamoDBClient(controlConfig()), tableName) };
}

/** What `--stack` reads the deployed stack with (CloudFormation and EventBridge Scheduler). */
export function buildStackReaderDependencies(env: NodeJS.ProcessEnv): StackReaderDependencies {
  return {
    cloudformation: new CloudFormationClient(controlConfig()),
    scheduler: new SchedulerClient(controlConfig()),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION,
  };
}

/**
 * A doctor run inside the function answers after a cold start and a few calls, each bounded by its own
 * 10 s timeouts; nothing flows on the connection until then.
 */
const FUNCTION_DOCTOR_TIMEOUTS = { connectionMs: 5_000, requestMs: 90_000, idleMs: 90_000 };

/** `doctor --stack`: the caller's doctor, and Lambda to ask the function for its own. */
export function buildStackDoctorDependencies(env: NodeJS.ProcessEnv): StackDoctorDependencies {
  return {
    doctor: buildDoctorDependencies(env),
    // No retry: a doctor invocation is not free, and a failure is reported, not hidden.
    lambda: new LambdaClient({
      maxAttempts: 1,
      requestHandler: httpHandlerOptions(FUNCTION_DOCTOR_TIMEOUTS),
    }),
  };
}

/** What `jobs` works with: the job store of `tableName` and EventBridge Scheduler. */
export function buildJobsDependencies(tableName: string): JobsDependencies {
  return {
    store: new JobStore(new DynamoDBClient(controlConfig()), tableName),
    scheduler: new SchedulerClient(controlConfig()),
  };
}
