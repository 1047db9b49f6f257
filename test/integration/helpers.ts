import { randomBytes } from 'node:crypto';
import { CreateRoleCommand, type IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { expect, inject } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import type { FanOutDependencies } from '../../functions/core/fanout/open-pass.js';
import { type Job, type JobInput, parseJob } from '../../functions/core/job.js';
import type { SyncDependencies } from '../../functions/core/run/sync-job.js';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import { sandboxIam, sandboxS3, sandboxSqs } from '../../sandbox/clients.js';
import { type FanOutOptions, type LocalFanOut, startLocalFanOut } from '../../sandbox/fan-out.js';
import { type FaultProxy, startFaultProxy } from '../../sandbox/fault-proxy.js';
import { faultProxyEnv, SANDBOX, type SandboxInfo, sandboxEnv } from '../../sandbox/sandbox.js';
import { buildWorkerFunctions, WorkerProcesses } from '../../sandbox/worker-processes.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';

/** The shared sandbox, with the process environment pointed at it as AccountB's syncer. */
export function useSandbox(): {
  sandbox: SandboxInfo;
  deps: SyncDependencies;
  producer: S3Client;
  consumer: S3Client;
} {
  const sandbox = inject('sandbox');
  Object.assign(process.env, sandboxEnv(sandbox), {
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  return {
    sandbox,
    deps: dependenciesFromEnvironment(consoleLogger('error')),
    producer: sandboxS3(sandbox, sandbox.accountA.admin),
    consumer: sandboxS3(sandbox, sandbox.accountB.admin),
  };
}

/**
 * A job over its own prefix of the sandbox's buckets, so tests sharing the sandbox never see each
 * other's objects or state.
 */
export function isolatedJob(sandbox: SandboxInfo, name: string, overrides: Partial<JobInput> = {}): Job {
  const id = `${name}-${randomBytes(3).toString('hex')}`;
  return parseJob({
    jobId: id,
    source: {
      roleArn: sandbox.accountA.roleArn,
      externalId: sandbox.accountA.externalId,
      bucket: sandbox.accountA.bucket,
      prefix: `${id}/`,
    },
    destination: { bucket: sandbox.accountB.destinationBucket, prefix: `${id}/` },
    ...overrides,
  });
}

export async function putObject(
  s3: S3Client,
  bucket: string,
  key: string,
  body: string | Buffer,
  extra: Partial<PutObjectCommandInput> = {},
) {
  // The length is stated because the SDK measures only a truthy body: an empty string would leave
  // without Content-Length, and the SDK would print its "Stream of unknown length" hint on console.warn.
  return s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
      ContentLength: Buffer.byteLength(body),
      ...extra,
    }),
  );
}

/** A bucket (created if absent) whose objects are encrypted with SSE-KMS under `keyArn` by default. */
export async function createKmsBucket(s3: S3Client, bucket: string, keyArn: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => {});
  await s3.send(
    new PutBucketEncryptionCommand({
      Bucket: bucket,
      ServerSideEncryptionConfiguration: {
        Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn } }],
      },
    }),
  );
}

export async function readObject(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (object.Body?.transformToByteArray() ?? new Uint8Array()));
}

export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((object) => object.Key ?? ''));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

export const randomText = (bytes: number) => randomBytes(bytes).toString('base64').slice(0, bytes);

/**
 * An AccountA role the syncer may call AssumeRole on (its policy allows sync-test-*), built to break one
 * link: trusting another account, without the ExternalId condition (`externalId: null`), or missing an
 * action; narrowed to some AccountB roles (`principalArns`, as ConsumerPrincipalArns does); or granting its
 * actions on another bucket of AccountA's.
 */
export async function createSourceRole(
  sandbox: SandboxInfo,
  name: string,
  {
    trustAccount = sandbox.accountB.id,
    externalId = sandbox.accountA.externalId as string | null,
    actions = ['s3:ListBucket', 's3:GetObject'],
    principalArns = [] as string[],
    bucket = sandbox.accountA.bucket,
  } = {},
): Promise<string> {
  const trust = {
    Effect: 'Allow',
    Principal: { AWS: `arn:aws:iam::${trustAccount}:root` },
    Action: 'sts:AssumeRole',
    ...((externalId || principalArns.length > 0) && {
      Condition: {
        ...(externalId && { StringEquals: { 'sts:ExternalId': externalId } }),
        ...(principalArns.length > 0 && { ArnLike: { 'aws:PrincipalArn': principalArns } }),
      },
    }),
  };
  const statements = actions.map((action) => ({
    Effect: 'Allow',
    Action: action,
    Resource: action === 's3:ListBucket' ? `arn:aws:s3:::${bucket}` : `arn:aws:s3:::${bucket}/*`,
  }));
  const roleName = `${SANDBOX.accountA.testRolePrefix}${name}-${randomBytes(3).toString('hex')}`;
  return createRole(sandboxIam(sandbox, sandbox.accountA.admin), roleName, trust, statements);
}

/** Creates a role with one trust statement and an inline policy of `statements`; returns its ARN. */
export async function createRole(
  iam: IAMClient,
  roleName: string,
  trust: object,
  statements: object[],
): Promise<string> {
  const document = (statement: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statement });
  const { Role } = await iam.send(
    new CreateRoleCommand({ RoleName: roleName, AssumeRolePolicyDocument: document([trust]) }),
  );
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: roleName,
      PolicyName: 'policy',
      PolicyDocument: document(statements),
    }),
  );
  return Role?.Arn ?? expect.fail('CreateRole returned no ARN');
}

/** A Lambda context whose deadline is `timeoutMs` from now, as the runtime gives the handler. */
export function lambdaContext(timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'SyncFunction',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:222222222222:function:SyncFunction',
    memoryLimitInMB: '1024',
    awsRequestId: 'handler-test',
    logGroupName: '/aws/lambda/SyncFunction',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * The fan-out queues on the sandbox (sandbox/fan-out.ts), created by AccountB's admin and worked by the
 * workers with `deps` (the syncer's keys) as the functions would.
 */
export function localFanOut(
  sandbox: SandboxInfo,
  deps: SyncDependencies,
  options: FanOutOptions,
): Promise<LocalFanOut> {
  return startLocalFanOut(
    sandboxSqs(sandbox, sandbox.accountB.admin),
    sandbox.region,
    deps,
    sandboxSqs(sandbox, sandbox.accountB.syncer),
    options,
  );
}

/**
 * Waits for pass `fence` of `job` to end (within `timeoutMs`), and returns its run record.
 */
export async function passEnded(
  fanOutDeps: FanOutDependencies,
  job: Job,
  fence: number,
  timeoutMs = 120_000,
) {
  const { state } = fanOutDeps;
  const pass = new PassTally(state.client, state.tableName, job.jobId, fence);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stored = await pass.read();
    if (stored.state === 'ended') break;
    if (Date.now() > deadline) throw new Error(`pass ${fence} did not end: ${JSON.stringify(stored)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const [record] = await state.recentRuns(job.jobId, 1);
  return record as Record<string, unknown> & {
    copied: number;
    skipped: number;
    failed: number;
    runId: string;
  };
}

/** A local fan-out whose workers are the bundled worker functions in child processes. */
export interface ProcessFanOut {
  fanOut: LocalFanOut;
  processes: WorkerProcesses;
  /** Between the children and S3 / STS / DynamoDB: a test holds a worker at a request with a rule. */
  proxy: FaultProxy;
  stop(): Promise<void>;
}

/**
 * {@link localFanOut} with the worker functions bundled as `sam build` would and run in warm child
 * processes (sandbox/worker-processes.ts), so a test can SIGKILL one mid-task; their S3, STS and DynamoDB
 * requests go through a fault proxy of their own.
 */
export async function processFanOut(
  sandbox: SandboxInfo,
  deps: SyncDependencies,
  options: FanOutOptions,
): Promise<ProcessFanOut> {
  const proxy = await startFaultProxy(sandbox);
  const built = await buildWorkerFunctions(['plan-shard', 'copy', 'part']);
  const processes = new WorkerProcesses(built.functions);
  const fanOut = await localFanOut(sandbox, deps, {
    ...options,
    workerHandler: (kind, urls) =>
      processes.handler(kind, {
        ...faultProxyEnv(sandbox, proxy.endpoints),
        PLAN_SHARD_QUEUE_URL: urls.planShard,
        COPY_QUEUE_URL: urls.copy,
        ...(urls.part && { PART_QUEUE_URL: urls.part }),
        ...(options.maxReceiveCount && { TASK_MAX_RECEIVE_COUNT: String(options.maxReceiveCount) }),
        POWERTOOLS_LOG_LEVEL: process.env.SANDBOX_WORKER_OUTPUT === '1' ? 'INFO' : 'ERROR',
      }),
  });
  return {
    fanOut,
    processes,
    proxy,
    async stop() {
      await fanOut.stop();
      processes.stop();
      await proxy.stop();
      await built.remove();
    },
  };
}

/** Polls until `test` holds; fails naming `what` after a minute. */
export async function until<T>(
  what: string,
  read: () => Promise<T>,
  test: (value: T) => boolean,
): Promise<T> {
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    const value = await read();
    if (test(value)) return value;
    if (Date.now() > giveUpAt) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Run events of `runId` on the sandbox bus's queue, read until it has been quiet for a few seconds. */
export async function runEvents(sandbox: SandboxInfo, runId: string): Promise<number> {
  const sqs = sandboxSqs(sandbox, sandbox.accountB.admin);
  let found = 0;
  for (let quiet = 0; quiet < 3; ) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: sandbox.accountB.eventsQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    quiet = Messages.length === 0 ? quiet + 1 : 0;
    for (const message of Messages) {
      if (JSON.parse(message.Body ?? '{}').detail?.runId === runId) found += 1;
      await sqs.send(
        new DeleteMessageCommand({
          QueueUrl: sandbox.accountB.eventsQueueUrl,
          ReceiptHandle: message.ReceiptHandle,
        }),
      );
    }
  }
  return found;
}

/** How many versions each key under `prefix` has (a versioned bucket): an object written twice shows 2. */
export async function versionCounts(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<Map<string, number>> {
  const { Versions = [] } = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
  const counts = new Map<string, number>();
  for (const version of Versions) counts.set(version.Key ?? '', (counts.get(version.Key ?? '') ?? 0) + 1);
  return counts;
}
