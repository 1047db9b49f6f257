/**
 * The event-lag workload (`npm run bench -- --workloads event-lag`, issue 12): a steady writer PUTs N
 * objects into AccountA at R per second while copy workers apply their S3 events through moto's real
 * event path (sandbox/event-path.ts) on local event source mappings (sandbox/fan-out.ts), as
 * `npm start`'s event step does. Per object, lag = the `copiedAt` the worker wrote to the ledger minus
 * the moment the PUT's response arrived (one machine clock; the worker takes `copiedAt` just before its
 * ledger write). Then one inline run copies the same objects, timed, for the scheduled mode's computed
 * lag. Writes bench/results/event-lag.{json,md}.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { parseJob } from '../../functions/core/job.js';
import type { SyncLogger } from '../../functions/core/run/sync-types.js';
import { sandboxS3, sandboxSqs } from '../../sandbox/clients.js';
import { provisionEventPath } from '../../sandbox/event-path.js';
import { startLocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  DEFAULT_SCHEDULE_SECONDS,
  type EventLagReport,
  eventLagMarkdown,
  lagFigures,
  scheduledLag,
} from './event-lag-report.js';
import type { EventLagOptions } from './options.js';
import { deletePrefix, forEachConcurrently, listPrefix, seedKey } from './seed.js';
import { type BenchContext, runTool } from './tools.js';
import type { Say } from './workloads.js';

/** A wait with no new copy for this long means the path is stuck: far above a copy's second or so here. */
const STALL_MS = 120_000;
/** Ledger reads and destination read-backs in flight after the run (untimed). */
const CHECK_CONCURRENCY = 16;

/** One written object: its key, its bytes' SHA-256, and when its PUT completed (epoch ms). */
interface Written {
  key: string;
  sha256: string;
  putAt: number;
}

/** Runs the workload once; writes event-lag.{json,md} to `outDir`. */
export async function runEventLagWorkload(
  context: BenchContext,
  options: EventLagOptions & { outDir: string },
  say: Say,
): Promise<EventLagReport> {
  const { sandbox } = context;
  // The workers act as AccountB's syncer, as the functions do: their clients read the environment.
  Object.assign(process.env, sandbox.env);
  const deps = dependenciesFromEnvironment(consoleLogger('error'));
  const producer = sandboxS3(sandbox, sandbox.accountA.admin);
  const consumer = sandboxS3(sandbox, sandbox.accountB.admin);
  const id = `bench-event-lag-${randomBytes(3).toString('hex')}`;
  const job = parseJob({
    jobId: id,
    source: {
      roleArn: sandbox.accountA.roleArn,
      externalId: sandbox.accountA.externalId,
      bucket: sandbox.accountA.bucket,
      prefix: `${id}/src/`,
    },
    destination: { bucket: sandbox.accountB.destinationBucket, prefix: `${id}/events/` },
    options: { events: true },
  });
  const copied = new Set<string>();
  let lastCopyAt = Date.now();
  const quiet = consoleLogger('error');
  const log: SyncLogger = {
    ...quiet,
    info(message, ...extra) {
      const fields = Object.assign({}, ...extra) as Record<string, unknown>;
      if (message === 'event copied' && typeof fields.key === 'string') {
        copied.add(fields.key);
        lastCopyAt = Date.now();
      }
    },
  };
  const admin = sandboxSqs(sandbox, sandbox.accountB.admin);
  const fanOut = await startLocalFanOut(
    admin,
    sandbox.region,
    deps,
    sandboxSqs(sandbox, sandbox.accountB.syncer),
    {
      workers: options.workers,
      worker: { log },
    },
  );
  const written: Written[] = [];
  try {
    const { Attributes } = await admin.send(
      new GetQueueAttributesCommand({ QueueUrl: fanOut.urls.copy, AttributeNames: ['QueueArn'] }),
    );
    const path = await provisionEventPath(
      sandbox,
      { jobId: job.jobId, source: job.source, destination: job.destination, options: job.options },
      { name: id, copyQueueUrl: fanOut.urls.copy, copyQueueArn: Attributes?.QueueArn ?? '' },
    );
    const loadAverage = Math.round((loadavg()[0] ?? 0) * 100) / 100;
    let writeStarted = 0;
    let writeEnded = 0;
    let lastIssued = 0;
    try {
      say(
        `event-lag: writing ${options.count} × ${options.bytes} B at ${options.rate}/s, ${options.workers} worker(s)`,
      );
      writeStarted = Date.now();
      await steadyWrites(options, async (index) => {
        lastIssued = Date.now();
        const key = seedKey(job.source.prefix, index);
        const body = randomBytes(options.bytes);
        await producer.send(new PutObjectCommand({ Bucket: job.source.bucket, Key: key, Body: body }));
        written.push({ key, sha256: sha256(body), putAt: Date.now() });
      });
      writeEnded = Date.now();
      say(`  written in ${((writeEnded - writeStarted) / 1000).toFixed(1)} s; ${copied.size} copied so far`);
      await untilCopied(written, copied, () => lastCopyAt, say);
    } finally {
      await path.remove();
    }
    say('  reading the ledger and every destination object back (untimed)');
    const lags: number[] = [];
    let matches = 0;
    let lastRecorded = 0;
    await forEachConcurrently(written.length, CHECK_CONCURRENCY, async (index) => {
      const object = written[index] as Written;
      const entry = await deps.state.ledgerEntry(job.jobId, object.key);
      if (!entry?.copiedAt || !entry.destinationKey) {
        throw new Error(`the ledger holds no copy of ${object.key}: ${JSON.stringify(entry)}`);
      }
      const recorded = Date.parse(entry.copiedAt);
      lags.push(recorded - object.putAt);
      lastRecorded = Math.max(lastRecorded, recorded);
      const { Body } = await consumer.send(
        new GetObjectCommand({ Bucket: job.destination.bucket, Key: entry.destinationKey }),
      );
      if (sha256(Buffer.from((await Body?.transformToByteArray()) ?? [])) === object.sha256) matches += 1;
    });
    const firstPutAt = Math.min(...written.map((object) => object.putAt));

    say('  one inline run over the same objects, timed, for the scheduled mode');
    const source = await listPrefix(producer, job.source.bucket, job.source.prefix);
    const inlinePrefix = `${id}/inline/`;
    const inline = await runTool(context, 'cross-account-sync', {
      sourcePrefix: job.source.prefix,
      destinationPrefix: inlinePrefix,
      objects: source,
      jobId: `${id}-inline`,
    });
    await deletePrefix(consumer, job.destination.bucket, inlinePrefix);

    const report: EventLagReport = {
      generatedAt: new Date().toISOString(),
      objects: written.length,
      objectBytes: options.bytes,
      targetRate: options.rate,
      issuedRate: (written.length - 1) / Math.max((lastIssued - writeStarted) / 1000, 0.001),
      achievedRate: written.length / ((writeEnded - writeStarted) / 1000),
      workers: options.workers,
      eventLagMs: lagFigures(lags),
      eventObjectsPerSecond: written.length / Math.max((lastRecorded - firstPutAt) / 1000, 0.001),
      destinationMatches: matches === written.length,
      scheduled: {
        intervalSeconds: DEFAULT_SCHEDULE_SECONDS,
        runSeconds: inline.wallSeconds,
        lagMs: scheduledLag(DEFAULT_SCHEDULE_SECONDS, inline.wallSeconds),
      },
      environment: {
        machine: `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}`,
        path: "moto 5.2.1's real S3 → EventBridge → EventBridge → SQS delivery; the copy workers on local event source mappings (long polling) in the benchmark's process, as npm start runs them",
        lag: 'measured per object: the copiedAt the worker writes to the ledger (taken just before that write) minus the moment PutObject returned, on one clock',
        scheduled: `computed from template.yaml's default interval (rate(15 minutes)) and D, the measured spawn-to-exit wall time of one inline run copying the same ${source.length} objects to a fresh prefix`,
        loadAverage: `1-minute load average at the start: ${loadAverage} on ${cpus().length} cores (above ${cpus().length}, other work competed for the CPU)`,
      },
    };
    await mkdir(options.outDir, { recursive: true });
    await writeFile(
      join(options.outDir, 'event-lag.json'),
      `${JSON.stringify({ ...report, lagsMs: lags }, null, 2)}\n`,
    );
    await writeFile(join(options.outDir, 'event-lag.md'), eventLagMarkdown(report));
    say(`wrote ${join(options.outDir, 'event-lag.json')} and event-lag.md`);
    return report;
  } finally {
    await fanOut.stop();
    await deletePrefix(producer, job.source.bucket, job.source.prefix);
    await deletePrefix(consumer, job.destination.bucket, job.destination.prefix);
  }
}

/**
 * Starts write `index` at `index / rate` seconds from now, without waiting for earlier ones to finish,
 * so a slow PUT does not slow the rate; resolves when every write has.
 */
async function steadyWrites(
  options: EventLagOptions,
  write: (index: number) => Promise<void>,
): Promise<void> {
  const start = Date.now();
  const pending: Promise<void>[] = [];
  for (let index = 0; index < options.count; index += 1) {
    const wait = start + (index * 1000) / options.rate - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(write(index));
  }
  await Promise.all(pending);
}

/** Waits until every written key was copied; fails naming the missing keys when copies stall. */
async function untilCopied(written: Written[], copied: Set<string>, lastCopyAt: () => number, say: Say) {
  let reported = 0;
  while (written.some((object) => !copied.has(object.key))) {
    if (Date.now() - lastCopyAt() > STALL_MS) {
      const missing = written.filter((object) => !copied.has(object.key)).map((object) => object.key);
      throw new Error(
        `event-lag: no copy for ${STALL_MS / 1000} s and ${missing.length} object(s) not copied, e.g. ${missing.slice(0, 3).join(', ')}`,
      );
    }
    if (copied.size - reported >= 500) {
      reported = copied.size;
      say(`  ${copied.size} of ${written.length} copied`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
