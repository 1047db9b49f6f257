/**
 * The cost model (`npm run cost-model`): what a 50-million-object backfill and a 10-million-key bucket kept
 * in sync every 5 minutes cost and take on AWS, per component and per account, from request counts and CPU
 * measured by the benchmark and AWS's list prices; and what the peers charge for the same work. Pure: the
 * inputs are arguments, so every figure is checked by hand in test/unit/cost-model.test.ts.
 */

/** AWS list prices, in USD. */
export interface Prices {
  region: string;
  /** When these were written down (they change; check before budgeting). */
  asOf: string;
  s3: { listPer1000: number; getPer1000: number; putPer1000: number };
  /** S3 to another region, per GB; the same region is free. */
  interRegionPerGb: number;
  lambda: { perGbSecond: number; perMillionRequests: number };
  dynamodb: { perMillionWriteUnits: number; perMillionReadUnits: number };
  sqs: { perMillionRequests: number };
  dataSync: { perGb: number };
  batchReplication: { perJob: number; perMillionObjects: number };
  /** The EC2 instance Data Transfer Hub's workers and finder are assumed to run on, per hour. */
  ec2PerHour: number;
}

/** us-east-1 list prices (S3 Standard, Lambda arm64, DynamoDB on-demand, SQS standard, DataSync Enhanced). */
export const US_EAST_1: Prices = {
  region: 'us-east-1',
  asOf: '2026-12-03',
  s3: { listPer1000: 0.005, getPer1000: 0.0004, putPer1000: 0.005 },
  interRegionPerGb: 0.02,
  lambda: { perGbSecond: 0.0000133334, perMillionRequests: 0.2 },
  dynamodb: { perMillionWriteUnits: 0.625, perMillionReadUnits: 0.125 },
  sqs: { perMillionRequests: 0.4 },
  dataSync: { perGb: 0.015 },
  batchReplication: { perJob: 0.25, perMillionObjects: 1 },
  ec2PerHour: 0.068,
};

/** What the benchmark measured, per object, key or MB; `sources` says where each came from. */
export interface Measured {
  /** ListObjectsV2 pages per 1,000 keys a pass lists. */
  listsPer1000Keys: number;
  /** S3 GETs and PUTs per object copied (PUT counts manifest parts and markers too). */
  getsPerObject: number;
  putsPerObject: number;
  /** DynamoDB write units per object copied (ledger record, upload intents, run items). */
  writeUnitsPerObject: number;
  /** DynamoDB read units per key of a pass that finds nothing to copy (the ledger Query). */
  readUnitsPerKey: number;
  /** Client CPU seconds per object copied, beside the bytes (SigV4, HTTP, ledger write). */
  cpuSecondsPerObject: number;
  /** Client CPU seconds per MB copied (hashing and streaming). */
  cpuSecondsPerMb: number;
  /** Client CPU seconds per key listed and merged when nothing changed. */
  cpuSecondsPerKeyListed: number;
  sources: Record<string, string>;
}

/** Assumptions about AWS the sandbox cannot measure. */
export interface Deployment {
  /** Copy workers at once (CopyWorkerConcurrency). */
  copyWorkers: number;
  /** Shard planners at once (PlannerConcurrency). */
  planners: number;
  copyWorkerMemoryMb: number;
  plannerMemoryMb: number;
  /** Objects per copy task (dispatch/copy-tasks.ts). */
  objectsPerTask: number;
  /** Share of its vCPU a worker keeps busy: below 1, it also waits on S3. */
  cpuUtilization: number;
  /** One ListObjectsV2 page of 1,000 keys from S3, seconds. */
  listPageSeconds: number;
  /** Writes a second one ledger partition (one job) takes before DynamoDB throttles or splits it. */
  ledgerWritesPerSecond: number;
  /** Source and destination in different regions: A pays S3's transfer out. */
  crossRegion: boolean;
}

/** Lambda gives one full vCPU at 1,769 MB and a proportional share below. */
export const FULL_VCPU_MB = 1769;
/** A planner is one Lambda invocation (template.yaml: Timeout 900), and does not resume a listing it is cut in. */
export const PLANNER_TIMEOUT_MINUTES = 15;
/** SQS requests per task: SendMessage, the mapping's ReceiveMessage, DeleteMessage. */
export const SQS_REQUESTS_PER_TASK = 3;
const GB = 1e9;
const MB = 1e6;

/** One priced component. */
export interface CostLine {
  component: string;
  /** Who pays: A (the source owner), B (the consumer). */
  payer: 'A' | 'B';
  quantity: number;
  unit: string;
  usd: number;
}

/** A priced piece of work. */
export interface Estimate {
  lines: CostLine[];
  usd: number;
  /** Wall time: of the whole backfill, or of one pass. */
  hours: number;
  notes: string[];
}

/** A peer's price for the same work. */
export interface PeerEstimate {
  tool: string;
  usd: number | undefined;
  basis: string;
}

/** Lambda GB-seconds billed for `cpuSeconds` of work at `memoryMb`, when the work is CPU-bound. */
export function lambdaGbSeconds(cpuSeconds: number, memoryMb: number, utilization: number): number {
  const share = Math.min(1, memoryMb / FULL_VCPU_MB);
  return ((cpuSeconds / share) * (memoryMb / 1024)) / utilization;
}

/** The first copy of `objects` objects of `bytes` in all, by fan-out. */
export function backfillCost(
  work: { objects: number; bytes: number },
  measured: Measured,
  deployment: Deployment,
  prices: Prices,
): Estimate {
  const { objects, bytes } = work;
  const lists = (objects / 1000) * measured.listsPer1000Keys;
  const gets = objects * measured.getsPerObject;
  const puts = objects * measured.putsPerObject;
  const writeUnits = objects * measured.writeUnitsPerObject;
  const tasks = Math.ceil(objects / deployment.objectsPerTask);
  const cpuSeconds = objects * measured.cpuSecondsPerObject + (bytes / MB) * measured.cpuSecondsPerMb;
  const gbSeconds = lambdaGbSeconds(cpuSeconds, deployment.copyWorkerMemoryMb, deployment.cpuUtilization);
  const gigabytes = bytes / GB;
  const lines: CostLine[] = [
    s3Line('S3 LIST (source)', 'A', lists, prices.s3.listPer1000),
    s3Line('S3 GET (source)', 'A', gets, prices.s3.getPer1000),
    {
      component: `data transfer (${deployment.crossRegion ? 'another region' : 'same region: free'})`,
      payer: 'A',
      quantity: gigabytes,
      unit: 'GB',
      usd: deployment.crossRegion ? gigabytes * prices.interRegionPerGb : 0,
    },
    s3Line('S3 PUT (destination)', 'B', puts, prices.s3.putPer1000),
    {
      component: 'DynamoDB writes',
      payer: 'B',
      quantity: writeUnits,
      unit: 'write units',
      usd: (writeUnits / 1e6) * prices.dynamodb.perMillionWriteUnits,
    },
    {
      component: 'SQS requests',
      payer: 'B',
      quantity: tasks * SQS_REQUESTS_PER_TASK,
      unit: 'requests',
      usd: ((tasks * SQS_REQUESTS_PER_TASK) / 1e6) * prices.sqs.perMillionRequests,
    },
    {
      component: 'Lambda duration',
      payer: 'B',
      quantity: gbSeconds,
      unit: 'GB-s',
      usd: gbSeconds * prices.lambda.perGbSecond,
    },
    {
      component: 'Lambda requests',
      payer: 'B',
      quantity: tasks,
      unit: 'invocations',
      usd: (tasks / 1e6) * prices.lambda.perMillionRequests,
    },
  ];
  const perWorker = workerObjectsPerSecond(bytes / objects, measured, deployment);
  const ledgerCap = deployment.ledgerWritesPerSecond / measured.writeUnitsPerObject;
  const rate = Math.min(perWorker * deployment.copyWorkers, ledgerCap);
  const listingHours = (lists * deployment.listPageSeconds) / 3600;
  const notes = [
    `${fixed(perWorker, 1)} objects/s per copy worker (CPU-bound at ${deployment.copyWorkerMemoryMb} MB), ` +
      `${deployment.copyWorkers} workers: ${fixed(rate, 0)} objects/s` +
      (rate === ledgerCap
        ? `, capped by the ledger partition's ${deployment.ledgerWritesPerSecond} writes/s`
        : ''),
    `listing the source takes ${fixed(lists, 0)} pages, ${fixed(listingHours, 1)} h in one sequence` +
      (listingHours * 60 > PLANNER_TIMEOUT_MINUTES
        ? `, longer than a planner's ${PLANNER_TIMEOUT_MINUTES}-minute timeout: a first pass is therefore cut from the source (delimiter listings and StartAfter probes, at most 50 requests and 1,000 cuts: docs/fan-out.md) so each planner lists its own range; where the probes cannot split the key space finely (most keys in one narrow range), start the backfill as several jobs, one per top-level prefix`
        : ''),
  ];
  return { lines, usd: total(lines), hours: Math.max(objects / rate / 3600, listingHours), notes };
}

/** A month of passes over `keys` keys every `intervalMinutes`, with nothing to copy. */
export function keepInSyncCost(
  work: { keys: number; intervalMinutes: number; keysPerShard: number; daysPerMonth: number },
  measured: Measured,
  deployment: Deployment,
  prices: Prices,
): Estimate {
  const passes = (work.daysPerMonth * 24 * 60) / work.intervalMinutes;
  const shards = Math.ceil(work.keys / work.keysPerShard);
  const lists = passes * (work.keys / 1000) * measured.listsPer1000Keys;
  const readUnits = passes * work.keys * measured.readUnitsPerKey;
  // A planner waits on its pages or on its CPU, whichever is longer (pages are fetched a page ahead).
  const plannerCpu = work.keysPerShard * measured.cpuSecondsPerKeyListed;
  const share = Math.min(1, deployment.plannerMemoryMb / FULL_VCPU_MB);
  const plannerSeconds = Math.max(
    plannerCpu / share / deployment.cpuUtilization,
    (work.keysPerShard / 1000) * measured.listsPer1000Keys * deployment.listPageSeconds,
  );
  const gbSeconds = passes * shards * plannerSeconds * (deployment.plannerMemoryMb / 1024);
  const sqsRequests = passes * shards * SQS_REQUESTS_PER_TASK;
  const invocations = passes * (shards + 1);
  const lines: CostLine[] = [
    s3Line('S3 LIST (source)', 'A', lists, prices.s3.listPer1000),
    {
      component: 'DynamoDB reads (ledger Query)',
      payer: 'B',
      quantity: readUnits,
      unit: 'read units',
      usd: (readUnits / 1e6) * prices.dynamodb.perMillionReadUnits,
    },
    {
      component: 'SQS requests',
      payer: 'B',
      quantity: sqsRequests,
      unit: 'requests',
      usd: (sqsRequests / 1e6) * prices.sqs.perMillionRequests,
    },
    {
      component: 'Lambda duration (planners)',
      payer: 'B',
      quantity: gbSeconds,
      unit: 'GB-s',
      usd: gbSeconds * prices.lambda.perGbSecond,
    },
    {
      component: 'Lambda requests',
      payer: 'B',
      quantity: invocations,
      unit: 'invocations',
      usd: (invocations / 1e6) * prices.lambda.perMillionRequests,
    },
  ];
  const passHours = (Math.ceil(shards / deployment.planners) * plannerSeconds) / 3600;
  const notes = [
    `${fixed(passes, 0)} passes a month; each: ${shards} shards of ${work.keysPerShard.toLocaleString('en-US')} keys, ` +
      `${fixed(plannerSeconds, 1)} s a shard, ${deployment.planners} planners at once: ${fixed(passHours * 3600, 0)} s a pass` +
      (passHours * 60 > work.intervalMinutes ? ' — longer than the interval: more planners needed' : ''),
  ];
  return { lines, usd: total(lines), hours: passHours, notes };
}

/** What a changed object adds to a pass, in USD (GET, PUT, ledger write, its share of a task). */
export function costPerChangedObject(
  objectBytes: number,
  measured: Measured,
  deployment: Deployment,
  prices: Prices,
): number {
  return backfillCost({ objects: 1, bytes: objectBytes }, measured, deployment, prices)
    .lines.filter((line) => !line.component.startsWith('S3 LIST') && line.component !== 'SQS requests')
    .reduce((sum, line) => sum + line.usd, 0);
}

/** DataSync, Data Transfer Hub and S3 Batch Replication for the same backfill. */
export function peerBackfillCosts(
  work: { objects: number; bytes: number },
  deployment: Deployment,
  prices: Prices,
  dthInstanceMbPerSecond: number,
): PeerEstimate[] {
  const { objects, bytes } = work;
  const transfer = deployment.crossRegion ? (bytes / GB) * prices.interRegionPerGb : 0;
  const copyRequests = (objects / 1000) * (prices.s3.getPer1000 + prices.s3.putPer1000);
  // One LIST page per 1,000 keys, priced per 1,000 requests.
  const lists = (objects / 1000 / 1000) * prices.s3.listPer1000;
  const dthHours = bytes / MB / dthInstanceMbPerSecond / 3600;
  return [
    {
      tool: 'DataSync (Enhanced mode)',
      usd: (bytes / GB) * prices.dataSync.perGb + copyRequests + 2 * lists + transfer,
      basis: `$${prices.dataSync.perGb}/GB copied, plus the S3 requests it makes (LIST both buckets, GET, PUT)`,
    },
    {
      tool: 'Data Transfer Hub',
      usd:
        copyRequests +
        2 * lists +
        transfer +
        (objects * SQS_REQUESTS_PER_TASK * prices.sqs.perMillionRequests) / 1e6 +
        (objects * 2 * prices.dynamodb.perMillionWriteUnits) / 1e6 +
        dthHours * prices.ec2PerHour,
      basis:
        `its S3 plugin: LIST both buckets, GET, PUT, one SQS message and two DynamoDB writes per object, and EC2 ` +
        `workers at $${prices.ec2PerHour}/h moving ${dthInstanceMbPerSecond} MB/s each (an assumption)`,
    },
    {
      tool: 'S3 Batch Replication',
      usd:
        prices.batchReplication.perJob +
        (objects / 1e6) * prices.batchReplication.perMillionObjects +
        (objects / 1000) * prices.s3.putPer1000 +
        transfer,
      basis: `$${prices.batchReplication.perJob} a job, $${prices.batchReplication.perMillionObjects} per million objects, a replication PUT each; AccountA must set it up (versioning on both buckets, a replication rule): push, not pull`,
    },
  ];
}

/** The peers for a bucket of `keys` keys kept in sync every `intervalMinutes`, a month, nothing changing. */
export function peerKeepInSyncCosts(
  work: { keys: number; intervalMinutes: number; daysPerMonth: number },
  prices: Prices,
  dthFinderKeysPerSecond: number,
): PeerEstimate[] {
  const minutes = work.daysPerMonth * 24 * 60;
  // Both buckets listed, one page per 1,000 keys, priced per 1,000 requests.
  const listsBoth = (passes: number) => passes * 2 * (work.keys / 1000 / 1000) * prices.s3.listPer1000;
  const hourly = minutes / 60;
  const passes = minutes / work.intervalMinutes;
  const finderHours = (passes * work.keys) / dthFinderKeysPerSecond / 3600;
  return [
    {
      tool: 'DataSync (Enhanced mode)',
      usd: work.intervalMinutes >= 60 ? listsBoth(minutes / work.intervalMinutes) : undefined,
      basis: `schedules run at most hourly, so not every ${work.intervalMinutes} min; hourly, it lists both buckets: $${fixed(listsBoth(hourly), 0)} a month, plus $${prices.dataSync.perGb}/GB changed`,
    },
    {
      tool: 'Data Transfer Hub',
      usd: listsBoth(passes) + finderHours * prices.ec2PerHour,
      basis: `its finder lists both buckets each pass and compares them on EC2 at ${dthFinderKeysPerSecond.toLocaleString('en-US')} keys/s (an assumption)`,
    },
    {
      tool: 'S3 Replication (live)',
      usd: 0,
      basis:
        'nothing for unchanged keys; a replication PUT per change. AccountA sets it up (versioning on both buckets): push, not pull. Batch Replication is for existing objects, a backfill',
    },
  ];
}

function s3Line(component: string, payer: 'A' | 'B', requests: number, per1000: number): CostLine {
  return { component, payer, quantity: requests, unit: 'requests', usd: (requests / 1000) * per1000 };
}

function workerObjectsPerSecond(objectBytes: number, measured: Measured, deployment: Deployment): number {
  const share = Math.min(1, deployment.copyWorkerMemoryMb / FULL_VCPU_MB);
  const cpuPerObject = measured.cpuSecondsPerObject + (objectBytes / MB) * measured.cpuSecondsPerMb;
  return (share * deployment.cpuUtilization) / cpuPerObject;
}

function total(lines: CostLine[]): number {
  return lines.reduce((sum, line) => sum + line.usd, 0);
}

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}
