/**
 * `npm run cost-model`: prices a 50-million-object / 200 TB backfill and a 10-million-key bucket kept in
 * sync every 5 minutes (bench/lib/cost-model.ts), from the figures the committed benchmark runs measured
 * (bench/results/latest.json, fan-out.json), next to DataSync, Data Transfer Hub and S3 Batch Replication.
 * Prints the tables and writes bench/results/cost-model.md.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_COPY_TASK_LIMITS } from '../functions/core/dispatch/copy-tasks.js';
import { RESULTS_DIR } from './lib/bundle.js';
import {
  backfillCost,
  costPerChangedObject,
  type Deployment,
  type Estimate,
  keepInSyncCost,
  type Measured,
  type PeerEstimate,
  type Prices,
  peerBackfillCosts,
  peerKeepInSyncCosts,
  US_EAST_1,
} from './lib/cost-model.js';
import {
  EVENTBRIDGE_CROSS_ACCOUNT_PER_MILLION,
  eventDrivenComparison,
  PER_CHANGE,
} from './lib/events-cost-model.js';
import type { FanOutFigures } from './lib/fan-out-report.js';
import type { WorkloadFigures } from './lib/report.js';

const BACKFILL = { objects: 50_000_000, bytes: 200e12 };
const KEEP_IN_SYNC = { keys: 10_000_000, intervalMinutes: 5, keysPerShard: 100_000, daysPerMonth: 30 };
/** Event-driven against listing (README "Event-driven sync"): 1 % of the keys change a day, 1 MB each. */
const EVENT_DRIVEN = { dailyChangeRate: 0.01, objectBytes: 1e6, keysPerShard: 100_000, daysPerMonth: 30 };
const EVENT_DRIVEN_KEYS = [1_000_000, 10_000_000];
const LISTING_INTERVALS = [5, 15];
/**
 * Write units a copy task adds beyond its objects' ledger records, not in the measured figure (the
 * sandbox's fan-out record does not sum capacity): the planner's announcement (1), the settlement
 * transaction of the task item and the pass item (2 items × 2 units in a transaction), the upload intent (1).
 */
const TASK_WRITE_UNITS = 6;
/** Assumptions about Data Transfer Hub's EC2 work (not measured here). */
const DTH_MB_PER_SECOND = 100;
const DTH_FINDER_KEYS_PER_SECOND = 20_000;

const averageObjectBytes = BACKFILL.bytes / BACKFILL.objects;
const DEPLOYMENT: Deployment = {
  copyWorkers: 100,
  planners: 20,
  copyWorkerMemoryMb: 1024,
  plannerMemoryMb: 512,
  objectsPerTask: Math.min(
    DEFAULT_COPY_TASK_LIMITS.maxObjects,
    Math.floor(DEFAULT_COPY_TASK_LIMITS.maxTaskBytes / averageObjectBytes),
  ),
  cpuUtilization: 0.75,
  listPageSeconds: 0.15,
  ledgerWritesPerSecond: 1000,
  crossRegion: false,
};

async function measuredFigures(): Promise<Measured> {
  const latest = JSON.parse(await readFile(join(RESULTS_DIR, 'latest.json'), 'utf8')) as {
    generatedAt: string;
    workloads: WorkloadFigures[];
  };
  const fanOut = JSON.parse(await readFile(join(RESULTS_DIR, 'fan-out.json'), 'utf8')) as {
    generatedAt: string;
    objects: number;
    modes: FanOutFigures[];
    runs: { kind: string; dynamodb?: { writeCapacityUnits: number } }[];
  };
  const sync = (id: number) => {
    const workload = latest.workloads.find((item) => item.id === id);
    const figures = workload?.tools.find((tool) => tool.tool === 'cross-account-sync');
    if (!workload || !figures)
      throw new Error(`bench/results/latest.json has no sync figures for workload ${id}`);
    return { workload, figures };
  };
  const noChange = sync(4);
  const large = sync(2);
  const widest = fanOut.modes
    .filter((mode) => mode.kind === 'fan-out')
    .sort((a, b) => b.workers - a.workers)[0];
  const inlineWrites = fanOut.runs.find((run) => run.kind === 'inline')?.dynamodb?.writeCapacityUnits;
  if (!widest || inlineWrites === undefined) {
    throw new Error('bench/results/fan-out.json needs an inline and a fan-out mode');
  }
  const keys = noChange.workload.objects;
  return {
    listsPer1000Keys: (noChange.figures.requests.LIST.median / keys) * 1000,
    getsPerObject: widest.requestsPer1000.GET / 1000,
    putsPerObject: widest.requestsPer1000.PUT / 1000,
    writeUnitsPerObject: inlineWrites / fanOut.objects + TASK_WRITE_UNITS / DEPLOYMENT.objectsPerTask,
    readUnitsPerKey: (noChange.figures.dynamodb?.readCapacityUnits.median ?? 0) / keys,
    cpuSecondsPerObject: widest.clientCpuSecondsPer1000 / 1000,
    cpuSecondsPerMb: large.figures.cpuSeconds.tool.median / large.workload.megabytes,
    cpuSecondsPerKeyListed: noChange.figures.cpuSeconds.tool.median / keys,
    sources: {
      'LIST per 1,000 keys, read units per key, CPU per key listed': `workload 4 (${keys.toLocaleString('en-US')} unchanged keys), bench/results/latest.json of ${latest.generatedAt}`,
      'CPU per MB': `workload 2 (${large.workload.description}), the same run`,
      'GET, PUT and CPU per object': `fan-out ×${widest.workers} in bench/results/fan-out.json of ${fanOut.generatedAt} (its GETs include the manifest parts the ending worker reads back from B's bucket, one a task, priced here as A's)`,
      'write units per object': `the inline mode's ledger writes in that run, plus ${TASK_WRITE_UNITS} per task of ${DEPLOYMENT.objectsPerTask} objects (pass items, not measured)`,
    },
  };
}

function usd(value: number | undefined): string {
  if (value === undefined) return 'n/a';
  return value >= 100 ? `$${Math.round(value).toLocaleString('en-US')}` : `$${value.toFixed(2)}`;
}

function quantity(value: number): string {
  return value >= 1000 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

function estimateTable(title: string, estimate: Estimate, peers: PeerEstimate[], time: string): string[] {
  const lines = [`## ${title}`, '', '| component | paid by | quantity | cost |', '|---|---|---|---|'];
  for (const line of estimate.lines) {
    lines.push(
      `| ${line.component} | ${line.payer} | ${quantity(line.quantity)} ${line.unit} | ${usd(line.usd)} |`,
    );
  }
  lines.push(`| **cross-account-sync, total** | | ${time} | **${usd(estimate.usd)}** |`, '');
  for (const note of estimate.notes) lines.push(`- ${note}`);
  lines.push('', '| the same work by | cost | basis |', '|---|---|---|');
  for (const peer of peers) lines.push(`| ${peer.tool} | ${usd(peer.usd)} | ${peer.basis} |`);
  lines.push('');
  return lines;
}

function markdown(measured: Measured, prices: Prices): string {
  const backfill = backfillCost(BACKFILL, measured, DEPLOYMENT, prices);
  const keep = keepInSyncCost(KEEP_IN_SYNC, measured, DEPLOYMENT, prices);
  const perChange = costPerChangedObject(averageObjectBytes, measured, DEPLOYMENT, prices);
  const lines = [
    '# Cost model',
    '',
    `Generated by \`npm run cost-model\` with ${prices.region} list prices as of ${prices.asOf}: S3 Standard ` +
      `LIST/PUT $${prices.s3.listPer1000}/1,000, GET $${prices.s3.getPer1000}/1,000; Lambda arm64 $${prices.lambda.perGbSecond}/GB-s, ` +
      `$${prices.lambda.perMillionRequests}/million requests; DynamoDB on-demand $${prices.dynamodb.perMillionWriteUnits}/million write units, ` +
      `$${prices.dynamodb.perMillionReadUnits}/million read units; SQS $${prices.sqs.perMillionRequests}/million requests; ` +
      `data between regions $${prices.interRegionPerGb}/GB. Free tiers left out.`,
    '',
    ...estimateTable(
      `Backfill: ${BACKFILL.objects.toLocaleString('en-US')} objects, ${BACKFILL.bytes / 1e12} TB (${(averageObjectBytes / 1e6).toFixed(0)} MB each), one fan-out pass`,
      backfill,
      peerBackfillCosts(BACKFILL, DEPLOYMENT, prices, DTH_MB_PER_SECOND),
      `${backfill.hours.toFixed(1)} h`,
    ),
    ...estimateTable(
      `Kept in sync: ${KEEP_IN_SYNC.keys.toLocaleString('en-US')} keys every ${KEEP_IN_SYNC.intervalMinutes} minutes, a ${KEEP_IN_SYNC.daysPerMonth}-day month, nothing changed`,
      keep,
      peerKeepInSyncCosts(KEEP_IN_SYNC, prices, DTH_FINDER_KEYS_PER_SECOND),
      `${Math.round(keep.hours * 3600)} s a pass`,
    ),
    `Each changed object adds ${usd(perChange * 1e6)} per million (its GET, PUT, ledger write and Lambda time at ` +
      `${(averageObjectBytes / 1e6).toFixed(0)} MB), the same in a backfill.`,
    '',
    ...eventDrivenTables(measured, prices),
    '## Measured here',
    '',
    `- LIST pages per 1,000 keys ${measured.listsPer1000Keys.toFixed(3)}; GET ${measured.getsPerObject.toFixed(3)} and PUT ` +
      `${measured.putsPerObject.toFixed(3)} per object; ${measured.writeUnitsPerObject.toFixed(3)} write units per object; ` +
      `${measured.readUnitsPerKey.toFixed(4)} read units per unchanged key; client CPU ${(measured.cpuSecondsPerObject * 1000).toFixed(2)} ms ` +
      `per object, ${(measured.cpuSecondsPerMb * 1000).toFixed(2)} ms per MB, ${(measured.cpuSecondsPerKeyListed * 1e6).toFixed(1)} µs per key listed.`,
    ...Object.entries(measured.sources).map(([what, where]) => `- ${what}: ${where}.`),
    '',
    '## Assumed',
    '',
    `- ${DEPLOYMENT.copyWorkers} copy workers (CopyWorkerConcurrency; the template's default is 10) at ${DEPLOYMENT.copyWorkerMemoryMb} MB, ` +
      `${DEPLOYMENT.planners} planners at ${DEPLOYMENT.plannerMemoryMb} MB, ${DEPLOYMENT.objectsPerTask} objects a task (256 MiB a task); ` +
      `Lambda's vCPU share is memory / ${1769} MB, kept ${DEPLOYMENT.cpuUtilization * 100}% busy, as fast as this machine's.`,
    `- A ListObjectsV2 page from S3 takes ${DEPLOYMENT.listPageSeconds} s; one job's ledger partition takes ${DEPLOYMENT.ledgerWritesPerSecond} writes/s.`,
    `- Same region (no transfer charge); across regions A pays $${prices.interRegionPerGb}/GB, ` +
      `${usd((BACKFILL.bytes / 1e9) * prices.interRegionPerGb)} for the backfill, whichever tool copies.`,
    `- DataSync: Enhanced mode (Basic mode's quotas stop short of 50 million objects a task), $${prices.dataSync.perGb}/GB, schedules at most hourly.`,
    `- Data Transfer Hub: workers on EC2 at $${prices.ec2PerHour}/h moving ${DTH_MB_PER_SECOND} MB/s each, a finder comparing ${DTH_FINDER_KEYS_PER_SECOND.toLocaleString('en-US')} keys/s; its Secrets Manager key and ECS/Lambda control plane are left out.`,
    `- S3 Batch Replication: $${prices.batchReplication.perJob} a job and $${prices.batchReplication.perMillionObjects} per million objects, plus a PUT per object; the manifest is generated by the job.`,
    '',
  ];
  return lines.join('\n');
}

/** Event-driven plus a daily pass against listing every 5 and 15 minutes, per account. */
function eventDrivenTables(measured: Measured, prices: Prices): string[] {
  const lines = [
    `## Event-driven with a daily pass, or listing every ${LISTING_INTERVALS.join(' / ')} minutes (a 30-day month, ` +
      `${EVENT_DRIVEN.dailyChangeRate * 100} % of the keys changed a day, ${EVENT_DRIVEN.objectBytes / 1e6} MB each)`,
    '',
    '| keys | mode | AccountA pays | AccountB pays | total |',
    '|---|---|---|---|---|',
  ];
  for (const keys of EVENT_DRIVEN_KEYS) {
    for (const mode of eventDrivenComparison(
      { ...EVENT_DRIVEN, keys },
      LISTING_INTERVALS,
      measured,
      DEPLOYMENT,
      prices,
    )) {
      lines.push(
        `| ${keys.toLocaleString('en-US')} | ${mode.mode} | ${usd(mode.accountA)} | ${usd(mode.accountB)} | **${usd(mode.usd)}** |`,
      );
    }
  }
  lines.push(
    '',
    '- AccountA pays the requests made on its bucket (LIST, HEAD, GET: S3 bills the bucket owner, whoever ' +
      "signs, unless the bucket is Requester Pays) and EventBridge's " +
      `$${EVENTBRIDGE_CROSS_ACCOUNT_PER_MILLION}/million for events put on another account's bus (S3's events on its own default ` +
      'bus and rule matching are free). AccountB pays the PUTs, DynamoDB, SQS and Lambda.',
    `- Per change the event path adds ${PER_CHANGE.heads} HEAD, ${PER_CHANGE.consistentReads} consistent GetItems and ` +
      `${PER_CHANGE.sqsRequests} SQS requests to the copy a pass would make (applyChange's calls; one event a worker ` +
      "invocation at worst, batches share the receive, delete and invocation); the SQS event source mapping's own " +
      'empty polls are left out.',
    '- A listing pass copies a key changed several times between passes once; events copy each change.',
    '',
  );
  return lines;
}

const text = markdown(await measuredFigures(), US_EAST_1);
await writeFile(join(RESULTS_DIR, 'cost-model.md'), text);
process.stdout.write(`${text}\n`);
process.stderr.write(`wrote ${join(RESULTS_DIR, 'cost-model.md')}\n`);
