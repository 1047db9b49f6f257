/**
 * The fan-out workload (`npm run bench -- --workloads fan-out`): many small objects behind a per-request
 * latency like real S3's round trip, copied by the inline sync, by fan-out with 1, 2 and 4 copy workers,
 * and by rclone at the fan-out modes' total concurrency. Each mode is one process whose CPU the OS
 * counts. Writes bench/results/fan-out.json and fan-out.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { sandboxS3 } from '../../sandbox/clients.js';
import { startFaultProxy } from '../../sandbox/fault-proxy.js';
import {
  type FanOutMode,
  type FanOutReport,
  type FanOutRun,
  fanOutFigures,
  fanOutMarkdown,
  fanOutModes,
  scalingRatios,
} from './fan-out-report.js';
import type { FanOutOptions } from './options.js';
import { deletePrefix, type Listed, listPrefix, seedObjectsInServer } from './seed.js';
import { type BenchContext, lastJson, measureRun, runChild, runTool, type ToolRun, timing } from './tools.js';
import type { Say } from './workloads.js';

const OBJECT_KIB = 1;

/** Runs every mode once over the same seeded source; writes fan-out.{json,md} to `outDir`. */
export async function runFanOutWorkload(
  context: BenchContext,
  options: FanOutOptions & { rclone: boolean; outDir: string },
  say: Say,
): Promise<FanOutReport> {
  const { sandbox } = context;
  const producer = sandboxS3(sandbox, sandbox.accountA.admin);
  const consumer = sandboxS3(sandbox, sandbox.accountB.admin);
  const root = `bench/fan-out-${randomBytes(3).toString('hex')}/`;
  const sourcePrefix = `${root}src/`;
  say(`fan-out: seeding ${options.count} × ${OBJECT_KIB} KiB inside moto (untimed)`);
  await seedObjectsInServer(
    sandbox.motoEndpoint,
    { account: sandbox.accountA.id, bucket: sandbox.accountA.bucket, prefix: sourcePrefix },
    options.count,
    OBJECT_KIB * 1024,
  );
  const source = await listPrefix(producer, sandbox.accountA.bucket, sourcePrefix);
  // Only S3 is slowed: STS, SQS and DynamoDB stay direct (DynamoDB's and SQS's own round trips are shorter).
  const proxy = await startFaultProxy(sandbox);
  proxy.setRules([{ name: 'round-trip', service: 's3', fault: { type: 'latency', ms: options.latencyMs } }]);
  const proxied: BenchContext = { ...context, s3Endpoint: proxy.endpoints.s3 };
  const runs: FanOutRun[] = [];
  try {
    for (const mode of fanOutModes(options.workers, options.concurrency, options.rclone)) {
      const destinationPrefix = `${root}dst-${mode.mode.replace(/\W+/g, '-')}/`;
      const jobId = `bench-fan-out-${mode.mode.replace(/\W+/g, '-')}-${randomBytes(3).toString('hex')}`;
      const loadAverage = Math.round((loadavg()[0] ?? 0) * 100) / 100;
      const run = await runMode(proxied, mode, { sourcePrefix, destinationPrefix, jobId, source });
      const copied = await listPrefix(consumer, sandbox.accountB.destinationBucket, destinationPrefix);
      const destinationMatches = sameObjects(source, sourcePrefix, copied, destinationPrefix);
      runs.push({ ...mode, objects: source.length, loadAverage, destinationMatches, ...run });
      say(
        `  ${mode.mode.padEnd(12)} ${run.wallSeconds.toFixed(1)} s, ${(source.length / run.wallSeconds).toFixed(1)} obj/s, ` +
          `client ${run.cpuSeconds.tool?.toFixed(1)} CPU-s, moto ${run.cpuSeconds.moto.toFixed(1)} CPU-s, load ${loadAverage}` +
          (destinationMatches ? '' : ', DESTINATION DIFFERS'),
      );
      await deletePrefix(consumer, sandbox.accountB.destinationBucket, destinationPrefix);
    }
  } finally {
    await proxy.stop();
    await deletePrefix(producer, sandbox.accountA.bucket, sourcePrefix);
  }
  const modes = runs.map(fanOutFigures);
  const loads = runs.map((run) => run.loadAverage);
  const report: FanOutReport = {
    generatedAt: new Date().toISOString(),
    objects: source.length,
    objectKib: OBJECT_KIB,
    latencyMs: options.latencyMs,
    modes,
    scaling: scalingRatios(modes),
    environment: {
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}`,
      latency: `${options.latencyMs} ms before each S3 request is forwarded (sandbox/fault-proxy.ts, in the benchmark's process); STS, SQS (moto) and DynamoDB Local direct`,
      fanOut:
        'the scheduled function starts the pass; one shard planner and N copy workers work it from moto’s SQS through sandbox/fan-out.ts’s local event source mappings, all in the one measured process (bench/children/run-fan-out.ts)',
      clientCpu: 'user + system CPU seconds of the measured process, from GNU time',
      loadAverage: `1-minute load average at each run's start: ${Math.min(...loads)}–${Math.max(...loads)} on ${cpus().length} cores`,
    },
  };
  await mkdir(options.outDir, { recursive: true });
  await writeFile(join(options.outDir, 'fan-out.json'), `${JSON.stringify({ ...report, runs }, null, 2)}\n`);
  await writeFile(join(options.outDir, 'fan-out.md'), fanOutMarkdown(report));
  say(`wrote ${join(options.outDir, 'fan-out.json')} and fan-out.md`);
  return report;
}

interface ModeTask {
  sourcePrefix: string;
  destinationPrefix: string;
  jobId: string;
  source: Listed[];
}

function runMode(context: BenchContext, mode: FanOutMode, task: ModeTask): Promise<ToolRun> {
  const modeContext = { ...context, concurrency: mode.concurrency };
  if (mode.kind === 'rclone') {
    return runTool(modeContext, 'rclone', { ...task, objects: task.source });
  }
  if (mode.kind === 'inline') {
    return runTool(modeContext, 'cross-account-sync', { ...task, objects: task.source });
  }
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
    options: { concurrency: mode.concurrency, fanOut: { mode: 'always' } },
  };
  return measureRun(context, async () => {
    const measured = await runChild(context, 'run-fan-out', {
      job,
      workers: mode.workers,
      sandbox: {
        region: sandbox.region,
        motoEndpoint: sandbox.motoEndpoint,
        dynamodbEndpoint: sandbox.dynamodbEndpoint,
        admin: sandbox.accountB.admin,
        syncer: sandbox.accountB.syncer,
      },
    });
    const record = lastJson(measured);
    if (record.failed !== 0 || record.copied !== task.source.length) {
      throw new Error(`the fan-out pass did not copy every object: ${JSON.stringify(record).slice(0, 2000)}`);
    }
    return { ...timing(measured), reported: record };
  });
}

/** Same relative keys, sizes and ETags on both sides. */
function sameObjects(source: Listed[], sourcePrefix: string, copied: Listed[], destinationPrefix: string) {
  const shape = (objects: Listed[], prefix: string) =>
    objects.map((object) => `${object.key.slice(prefix.length)} ${object.size} ${object.etag}`).join('\n');
  return shape(source, sourcePrefix) === shape(copied, destinationPrefix);
}
