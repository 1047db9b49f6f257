import { join } from 'node:path';
import { SandboxError } from './errors.js';
import { type FaultProxy, type ProxiedService, startFaultProxy } from './fault-proxy.js';
import { checkPrerequisites } from './prerequisites.js';
import {
  freePort,
  killService,
  type Service,
  startService,
  stopService,
  waitUntilServing,
} from './processes.js';
import { provisionSandbox } from './provision.js';

/** Long-term access keys of an IAM user in the sandbox. */
export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Everything a test or demo needs to reach the sandbox. Plain data: it crosses vitest's provide/inject. */
export interface SandboxInfo {
  region: string;
  /** moto: S3, STS, IAM, EventBridge, SQS, CloudFormation, Scheduler and Lambda on one port. */
  motoEndpoint: string;
  dynamodbEndpoint: string;
  /** The producer: owns the source bucket and the read-only role B assumes. */
  accountA: { id: string; bucket: string; roleArn: string; externalId: string; admin: AwsKeys };
  /**
   * The consumer: runs the sync as `syncer`, writes `destinationBucket`, keeps state in `tableName`, and
   * publishes run events to `eventBusName`, whose rule forwards `source: cross-account-sync` events to
   * the SQS queue at `eventsQueueUrl` (read it with the admin keys).
   */
  accountB: {
    id: string;
    destinationBucket: string;
    tableName: string;
    eventBusName: string;
    eventBusArn: string;
    eventsQueueUrl: string;
    syncer: AwsKeys;
    admin: AwsKeys;
  };
}

/** Where the sandbox's services listen: all a client needs. A {@link SandboxInfo} is one. */
export type SandboxEndpoints = Pick<SandboxInfo, 'region' | 'motoEndpoint' | 'dynamodbEndpoint'>;

/** A running sandbox. Call {@link Sandbox.stop} when done; its processes also exit if this process dies. */
export interface Sandbox extends SandboxInfo {
  /**
   * Environment that points the SDK and the AWS CLI at the sandbox, acting as AccountB's syncer: the
   * AWS_ENDPOINT_URL_* variables, region, the syncer's keys, STATE_TABLE_NAME, EVENT_BUS_NAME, IMDS off, and
   * AWS_SESSION_TOKEN / AWS_PROFILE emptied so nothing from the developer's own setup leaks in.
   */
  env: Record<string, string>;
  /**
   * With `faultProxy: true`: the fault-injecting proxy in front of moto and DynamoDB Local, and `env`
   * points S3, STS and DynamoDB at it (rules are empty until set, so it only forwards).
   */
  faultProxy?: FaultProxy;
  /** Stop moto and DynamoDB Local (SIGTERM, then SIGKILL after a grace period). Safe to call twice. */
  stop(): Promise<void>;
}

/** The sandbox's fixed names; the job events, tests and demo use them too. */
export const SANDBOX = {
  region: 'us-east-1',
  accountA: {
    id: '111111111111',
    bucket: 'gautamtest-assume-role',
    roleName: 'S3GetListRole',
    externalId: 'gautamtest-external-id',
    adminUser: 'producer-admin',
    /** The syncer may assume AccountA roles named so; tests create them with broken trust or permissions. */
    testRolePrefix: 'sync-test-',
  },
  accountB: {
    id: '222222222222',
    destinationBucket: 'accountb-sync-destination',
    tableName: 'cross-account-sync-state',
    syncerUser: 'syncer',
    adminUser: 'consumer-admin',
    eventBusName: 'cross-account-sync-events',
    eventsRuleName: 'sync-run-events',
    eventsQueueName: 'sync-run-events',
  },
} as const;

/** See {@link Sandbox.env}. */
export function sandboxEnv(info: SandboxInfo): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: info.motoEndpoint,
    AWS_ENDPOINT_URL_STS: info.motoEndpoint,
    AWS_ENDPOINT_URL_IAM: info.motoEndpoint,
    AWS_ENDPOINT_URL_EVENTBRIDGE: info.motoEndpoint,
    AWS_ENDPOINT_URL_SQS: info.motoEndpoint,
    AWS_ENDPOINT_URL_CLOUDFORMATION: info.motoEndpoint,
    AWS_ENDPOINT_URL_SCHEDULER: info.motoEndpoint,
    AWS_ENDPOINT_URL_LAMBDA: info.motoEndpoint,
    AWS_ENDPOINT_URL_DYNAMODB: info.dynamodbEndpoint,
    AWS_REGION: info.region,
    AWS_DEFAULT_REGION: info.region,
    AWS_ACCESS_KEY_ID: info.accountB.syncer.accessKeyId,
    AWS_SECRET_ACCESS_KEY: info.accountB.syncer.secretAccessKey,
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    STATE_TABLE_NAME: info.accountB.tableName,
    EVENT_BUS_NAME: info.accountB.eventBusName,
  };
}

/**
 * {@link sandboxEnv} with S3, STS and DynamoDB going through a fault proxy's endpoints, the way production
 * clients are pointed anywhere: the SDK's own `AWS_ENDPOINT_URL_*` variables.
 */
export function faultProxyEnv(
  info: SandboxInfo,
  endpoints: Record<ProxiedService, string>,
): Record<string, string> {
  return {
    ...sandboxEnv(info),
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_STS: endpoints.sts,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
  };
}

/**
 * DynamoDB Local is a short-lived JVM here: the C1 compiler alone and the serial collector cut its CPU
 * per conditional PutItem on 2 cores from 3.0 ms cold / 1.0 ms warm (JVM defaults: C2 and G1) to
 * 1.3 ms / 0.65 ms, measured over 2,000-write rounds at 16 in flight. Both are stock HotSpot flags.
 */
const DYNAMODB_LOCAL_JVM_FLAGS = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];

/**
 * Start moto (S3, STS, IAM) and DynamoDB Local on loopback, provision AccountA and AccountB, switch on
 * moto's auth enforcement and check that it refuses what AWS would refuse. Takes about 3 s.
 */
export async function startSandbox(
  options: {
    log?: (message: string) => void;
    /** Also start the fault proxy (see {@link Sandbox.faultProxy}). */
    faultProxy?: boolean;
  } = {},
): Promise<Sandbox> {
  const log = options.log ?? (() => {});
  const started = Date.now();
  const elapsed = () => `${Date.now() - started} ms`;

  const tools = await checkPrerequisites();
  log(`prerequisites found: Java, moto ${tools.motoVersion}, DynamoDB Local (${elapsed()})`);
  const [motoPort, dynamodbPort] = await Promise.all([freePort(), freePort()]);
  // 127.0.0.1, not localhost: the SDK then addresses S3 path-style, and no IPv6 lookup can miss the server.
  const moto = startService('moto', `http://127.0.0.1:${motoPort}`, tools.python, [
    tools.motoServerScript,
    '--port',
    String(motoPort),
  ]);
  const dynamodb = startService('DynamoDB Local', `http://127.0.0.1:${dynamodbPort}`, tools.python, [
    tools.parentWatchScript,
    '--',
    tools.java,
    ...DYNAMODB_LOCAL_JVM_FLAGS,
    `-Djava.library.path=${join(tools.dynamodbLocalDir, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(tools.dynamodbLocalDir, 'DynamoDBLocal.jar'),
    '-inMemory',
    '-sharedDb',
    '-disableTelemetry',
    '-port',
    String(dynamodbPort),
  ]);
  const services: Service[] = [moto, dynamodb];
  // A parent that exits without stop() (process.exit, an uncaught error) still takes the services along.
  const killAll = () => {
    for (const service of services) killService(service);
  };
  process.once('exit', killAll);
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= Promise.all(services.map(stopService)).then(() => {
      process.removeListener('exit', killAll);
    });
    return stopped;
  };

  try {
    await Promise.all(services.map(waitUntilServing));
    log(`moto at ${moto.endpoint}, DynamoDB Local at ${dynamodb.endpoint} (${elapsed()})`);
    const info = await provisionSandbox({
      region: SANDBOX.region,
      motoEndpoint: moto.endpoint,
      dynamodbEndpoint: dynamodb.endpoint,
    });
    log(`sandbox provisioned, auth enforced and self-checked (${elapsed()})`);
    if (!options.faultProxy) return { ...info, env: sandboxEnv(info), stop };
    // Started after provisioning, so setting up the accounts never meets a fault.
    const faultProxy = await startFaultProxy(info);
    const stopServices = stop;
    const stopAll = () => faultProxy.stop().then(stopServices);
    log(
      `fault proxy: S3 ${faultProxy.endpoints.s3}, STS ${faultProxy.endpoints.sts}, DynamoDB ${faultProxy.endpoints.dynamodb}`,
    );
    return { ...info, env: faultProxyEnv(info, faultProxy.endpoints), faultProxy, stop: stopAll };
  } catch (error) {
    await stop();
    if (error instanceof SandboxError) throw error;
    throw new SandboxError(
      `local sandbox failed to start: ${(error as Error).message}\n` +
        services.map((service) => `--- ${service.name} output ---\n${service.outputTail()}`).join('\n'),
      { cause: error },
    );
  }
}
