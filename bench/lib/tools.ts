import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { PART_SIZE, QUEUE_SIZE } from '../../functions/core/copy/copy-object.js';
import { SMALL_OBJECT_BYTES } from '../../functions/core/run/sync-job.js';
import { sandboxSts } from '../../sandbox/clients.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import type { Child } from './bundle.js';
import { type Measured, measureCommand, processCpuSeconds } from './measure.js';
import { type RequestCounts, takeS3RequestCounts } from './request-counts.js';
import type { Listed } from './seed.js';

/** The tools compared. */
export const TOOLS = ['cross-account-sync', 'rclone', 'aws-cli', 'ceiling', 'bare-listing'] as const;
export type Tool = (typeof TOOLS)[number];

/** Where the peers live: rclone from Debian's package, AWS CLI v2 from Debian's `awscli`. */
export const RCLONE = '/usr/bin/rclone';
export const AWS_CLI_V2 = '/usr/bin/aws';

/** What every tool run needs. */
export interface BenchContext {
  sandbox: Sandbox;
  children: Record<Child, string>;
  /** Scratch directory for config files, task files and the AWS CLI's local copies. */
  scratch: string;
  /** Objects in flight, for every tool alike. */
  concurrency: number;
  /** The sandbox's server processes, whose CPU time each run is charged with. */
  servers: { moto: number[]; dynamodb: number[] };
  /** Where the tools send S3 requests instead of moto itself (the fan-out workload's latency proxy). */
  s3Endpoint?: string;
}

/** CPU seconds one run cost, per process: on two cores the servers compete with the tool. */
export interface CpuSeconds {
  /** The measured tool's own processes (user + system). */
  tool?: number;
  moto: number;
  dynamodb: number;
  /** The benchmark's own process, which waits for the tool. */
  bench: number;
}

/** One copy (or no-change pass) to perform. */
export interface CopyTask {
  sourcePrefix: string;
  destinationPrefix: string;
  objects: Listed[];
  /** The sync's job id: fresh for a first copy, the primed one for a no-change pass. */
  jobId: string;
  /** The AWS CLI's local directory; a fresh one is made and removed when absent. */
  localDir?: string;
}

/** What one run of one tool measured. */
export interface ToolRun {
  wallSeconds: number;
  peakRssMb: number;
  requests: RequestCounts;
  cpuSeconds: CpuSeconds;
  /** Steps timed separately (the AWS CLI's download and upload). */
  steps?: { step: string; wallSeconds: number; peakRssMb: number }[];
  dynamodb?: { readCapacityUnits: number; writeCapacityUnits: number };
  /** What the tool itself reported, for the record. */
  reported?: Record<string, unknown>;
}

/** The settings that make the peers comparable with the sync, as the report states them. */
export function toolSettings(concurrency: number): Record<Tool, string> {
  const mib = (bytes: number) => `${bytes / (1024 * 1024)} MiB`;
  return {
    'cross-account-sync': `options.concurrency ${concurrency}; objects over ${mib(SMALL_OBJECT_BYTES)} multipart in ${mib(PART_SIZE)} parts, ${QUEUE_SIZE} in flight (core constants)`,
    rclone: `rclone copy ${rcloneFlags(concurrency).join(' ')}`,
    'aws-cli': `aws s3 sync twice (source → local disk, local disk → destination); s3.max_concurrent_requests ${concurrency}, multipart_threshold ${mib(SMALL_OBJECT_BYTES)}, multipart_chunksize ${mib(PART_SIZE)}`,
    ceiling: `raw SDK v3, ${concurrency} objects at once from a key list (no LIST): GetObject + PutObject up to ${mib(SMALL_OBJECT_BYTES)}; above, one GetObject cut into ${mib(PART_SIZE)} UploadParts, ${QUEUE_SIZE} in flight`,
    'bare-listing': 'raw SDK v3: paginated ListObjectsV2 (1,000 keys a page) with the assumed role',
  };
}

function rcloneFlags(concurrency: number): string[] {
  return [
    `--transfers=${concurrency}`,
    `--checkers=${concurrency}`,
    // The same multipart shape as the sync, so neither gets a bigger buffer or more parts in flight.
    // rclone reads a bare number as KiB: the unit must be spelled out.
    `--s3-upload-cutoff=${SMALL_OBJECT_BYTES / 1024}Ki`,
    `--s3-chunk-size=${PART_SIZE / 1024}Ki`,
    `--s3-upload-concurrency=${QUEUE_SIZE}`,
    // The role cannot create buckets, and the sync compares ETag and size, not modification times.
    '--s3-no-check-bucket',
    '--checksum',
    '--quiet',
  ];
}

/** Runs `tool` once over `task`, counting the S3 requests moto served meanwhile. */
export function runTool(context: BenchContext, tool: Tool, task: CopyTask): Promise<ToolRun> {
  return measureRun(context, () => RUNNERS[tool](context, task));
}

/** Runs `run` once, charging it with the S3 requests moto served and the CPU the servers spent meanwhile. */
export async function measureRun(
  context: BenchContext,
  run: () => Promise<OwnMeasurement>,
): Promise<ToolRun> {
  const cpuBefore = await serverCpu(context);
  await takeS3RequestCounts(context.sandbox.motoEndpoint);
  const measured = await run();
  const requests = await takeS3RequestCounts(context.sandbox.motoEndpoint);
  const cpuAfter = await serverCpu(context);
  const { cpuSeconds: toolCpu, ...rest } = measured;
  return {
    ...rest,
    requests,
    cpuSeconds: {
      tool: toolCpu,
      moto: cpuAfter.moto - cpuBefore.moto,
      dynamodb: cpuAfter.dynamodb - cpuBefore.dynamodb,
      bench: cpuAfter.bench - cpuBefore.bench,
    },
  };
}

async function serverCpu(context: BenchContext): Promise<Omit<CpuSeconds, 'tool'>> {
  const total = async (pids: number[]) =>
    (await Promise.all(pids.map(processCpuSeconds))).reduce((sum, value) => sum + value, 0);
  const self = process.cpuUsage();
  return {
    moto: await total(context.servers.moto),
    dynamodb: await total(context.servers.dynamodb),
    bench: (self.user + self.system) / 1e6,
  };
}

/** What a runner measured itself; {@link measureRun} adds the requests and the servers' CPU. */
export type OwnMeasurement = Omit<ToolRun, 'requests' | 'cpuSeconds'> & { cpuSeconds?: number };

type Runner = (context: BenchContext, task: CopyTask) => Promise<OwnMeasurement>;

const RUNNERS: Record<Tool, Runner> = {
  'cross-account-sync': async (context, task) => {
    const { sandbox } = context;
    const job = {
      jobId: task.jobId,
      source: {
        roleArn: sandbox.accountA.roleArn,
        externalId: sandbox.accountA.externalId,
        bucket: sandbox.accountA.bucket,
        prefix: task.sourcePrefix,
      },
      destination: { bucket: sandbox.accountB.destinationBucket, prefix: task.destinationPrefix },
      options: { concurrency: context.concurrency },
    };
    const measured = await runChild(context, 'run-sync', { job });
    const summary = lastJson(measured);
    if (summary.failed !== 0 || summary.status !== 'complete') {
      throw new Error(`the sync did not complete cleanly: ${JSON.stringify(summary).slice(0, 2000)}`);
    }
    return {
      ...timing(measured),
      dynamodb: {
        readCapacityUnits: Number(summary.readCapacityUnits),
        writeCapacityUnits: Number(summary.writeCapacityUnits),
      },
      reported: pick(summary, [
        'copied',
        'skipped',
        'bytes',
        'listRequests',
        'durationMs',
        'memoryMb',
        'cpuWaitSeconds',
      ]),
    };
  },

  ceiling: async (context, task) => {
    const { sandbox } = context;
    const measured = await runChild(context, 'run-ceiling', {
      roleArn: sandbox.accountA.roleArn,
      externalId: sandbox.accountA.externalId,
      sourceBucket: sandbox.accountA.bucket,
      sourcePrefix: task.sourcePrefix,
      destinationBucket: sandbox.accountB.destinationBucket,
      destinationPrefix: task.destinationPrefix,
      objects: task.objects.map(({ key, size }) => ({ key, size })),
      concurrency: context.concurrency,
    });
    return { ...timing(measured), reported: lastJson(measured) };
  },

  'bare-listing': async (context, task) => {
    const { sandbox } = context;
    const measured = await runChild(context, 'list-objects', {
      roleArn: sandbox.accountA.roleArn,
      externalId: sandbox.accountA.externalId,
      bucket: sandbox.accountA.bucket,
      prefix: task.sourcePrefix,
    });
    return { ...timing(measured), reported: lastJson(measured) };
  },

  rclone: async (context, task) => {
    const { sandbox, scratch } = context;
    const role = await assumeSourceRole(sandbox);
    const config = join(scratch, 'rclone.conf');
    const remote = (name: string, keys: Keys) =>
      [
        `[${name}]`,
        'type = s3',
        'provider = Other',
        `endpoint = ${context.s3Endpoint ?? sandbox.motoEndpoint}`,
        `region = ${sandbox.region}`,
        'force_path_style = true',
        `access_key_id = ${keys.accessKeyId}`,
        `secret_access_key = ${keys.secretAccessKey}`,
        ...(keys.sessionToken ? [`session_token = ${keys.sessionToken}`] : []),
        '',
      ].join('\n');
    await writeFile(config, remote('source', role) + remote('destination', sandbox.accountB.syncer), {
      mode: 0o600,
    });
    // Debian's rclone fails to start with AWS_CA_BUNDLE set on these machines; the endpoint is plain HTTP.
    const measured = await measureCommand(
      RCLONE,
      [
        'copy',
        `source:${sandbox.accountA.bucket}/${task.sourcePrefix}`,
        `destination:${sandbox.accountB.destinationBucket}/${task.destinationPrefix}`,
        `--config=${config}`,
        ...rcloneFlags(context.concurrency),
      ],
      baseEnv(),
    );
    return timing(measured);
  },

  'aws-cli': async (context, task) => {
    const { sandbox, scratch } = context;
    const role = await assumeSourceRole(sandbox);
    const configFile = join(scratch, 'aws-cli.config');
    await writeFile(
      configFile,
      [
        '[default]',
        `region = ${sandbox.region}`,
        's3 =',
        `  max_concurrent_requests = ${context.concurrency}`,
        `  multipart_threshold = ${SMALL_OBJECT_BYTES}`,
        `  multipart_chunksize = ${PART_SIZE}`,
        '  addressing_style = path',
        '',
      ].join('\n'),
    );
    const localDir = task.localDir ?? join(scratch, `aws-cli-${Date.now()}`);
    await mkdir(localDir, { recursive: true });
    const cliEnv = (keys: Keys) => ({
      ...baseEnv(),
      AWS_CONFIG_FILE: configFile,
      AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'no-credentials-file'),
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
      ...(keys.sessionToken ? { AWS_SESSION_TOKEN: keys.sessionToken } : {}),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    });
    const common = ['--endpoint-url', sandbox.motoEndpoint, '--only-show-errors', '--no-progress'];
    try {
      const download = await measureCommand(
        AWS_CLI_V2,
        ['s3', 'sync', `s3://${sandbox.accountA.bucket}/${task.sourcePrefix}`, localDir, ...common],
        cliEnv(role),
      );
      const upload = await measureCommand(
        AWS_CLI_V2,
        [
          's3',
          'sync',
          localDir,
          `s3://${sandbox.accountB.destinationBucket}/${task.destinationPrefix}`,
          ...common,
        ],
        cliEnv(sandbox.accountB.syncer),
      );
      return {
        wallSeconds: download.wallSeconds + upload.wallSeconds,
        peakRssMb: Math.max(download.peakRssMb, upload.peakRssMb),
        cpuSeconds: (download.cpuSeconds ?? 0) + (upload.cpuSeconds ?? 0),
        steps: [
          { step: 'source → local disk', wallSeconds: download.wallSeconds, peakRssMb: download.peakRssMb },
          { step: 'local disk → destination', wallSeconds: upload.wallSeconds, peakRssMb: upload.peakRssMb },
        ],
      };
    } finally {
      if (task.localDir === undefined) await rm(localDir, { recursive: true, force: true });
    }
  },
};

type Keys = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** Temporary keys for the source role, as a user of rclone or the AWS CLI would fetch before running it. */
export async function assumeSourceRole(sandbox: Sandbox): Promise<Keys> {
  const { Credentials } = await sandboxSts(sandbox, sandbox.accountB.syncer).send(
    new AssumeRoleCommand({
      RoleArn: sandbox.accountA.roleArn,
      ExternalId: sandbox.accountA.externalId,
      RoleSessionName: 'bench-peer',
    }),
  );
  if (!Credentials?.AccessKeyId || !Credentials.SecretAccessKey) throw new Error('AssumeRole gave no keys');
  return {
    accessKeyId: Credentials.AccessKeyId,
    secretAccessKey: Credentials.SecretAccessKey,
    sessionToken: Credentials.SessionToken,
  };
}

/** A clean environment: nothing from the developer's own AWS setup leaks into a measured tool. */
function baseEnv(): NodeJS.ProcessEnv {
  const { PATH, HOME, LANG, TMPDIR } = process.env;
  return Object.fromEntries(
    Object.entries({ PATH, HOME, LANG, TMPDIR }).filter(([, value]) => value !== undefined),
  );
}

/** Runs one bundled child on `task` (a JSON file), pointed at the sandbox (S3 at `s3Endpoint` when set). */
export async function runChild(context: BenchContext, child: Child, task: object): Promise<Measured> {
  const taskFile = join(context.scratch, `${child}-task.json`);
  await writeFile(taskFile, JSON.stringify(task));
  return measureCommand(process.execPath, [...nodeFlags(child), context.children[child], taskFile], {
    ...baseEnv(),
    ...context.sandbox.env,
    ...(context.s3Endpoint && { AWS_ENDPOINT_URL_S3: context.s3Endpoint }),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
}

/**
 * Extra `node` flags for one child, from BENCH_NODE_FLAGS_<CHILD> (e.g. BENCH_NODE_FLAGS_RUN_SYNC=
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the sync). NODE_OPTIONS cannot carry --cpu-prof.
 */
function nodeFlags(child: Child): string[] {
  const flags = process.env[`BENCH_NODE_FLAGS_${child.toUpperCase().replaceAll('-', '_')}`];
  return flags ? flags.split(' ').filter(Boolean) : [];
}

/** The timing figures of a measured process. */
export function timing(measured: Measured): { wallSeconds: number; peakRssMb: number; cpuSeconds?: number } {
  return {
    wallSeconds: measured.wallSeconds,
    peakRssMb: measured.peakRssMb,
    cpuSeconds: measured.cpuSeconds,
  };
}

/** The child's result: the JSON of its last stdout line. */
export function lastJson(measured: Measured): Record<string, unknown> {
  const line = measured.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`expected a JSON result line, got: ${measured.stdout.slice(-500)}\n${measured.stderr}`);
  }
}

function pick(record: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((key) => key in record).map((key) => [key, record[key]]));
}
