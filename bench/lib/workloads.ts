import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { destinationKeyFor } from '../../functions/core/plan/keys.js';
import { listSource, type SourceObject } from '../../functions/core/plan/list-source.js';
import { copiedLedgerEntry } from '../../functions/core/run/sync-job.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { writeLedgerEntries } from './ledger.js';
import type { BenchOptions } from './options.js';
import {
  deletePrefix,
  forEachConcurrently,
  type Listed,
  listPrefix,
  seedBigObject,
  seedBody,
  seedObjects,
  seedObjectsInServer,
} from './seed.js';
import { type BenchContext, type CopyTask, runTool, type Tool, type ToolRun } from './tools.js';

const KiB = 1024;
/**
 * Workload 4's untimed first copy runs at the job schema's highest concurrency: the sync is bound by
 * round-trip latency on moto, and at 16 the 20,000-object first copy alone would take minutes.
 */
const FIRST_COPY_CONCURRENCY = 64;
const MiB = 1024 * KiB;

/** One measured run of one tool. */
export interface RunRecord extends ToolRun {
  tool: Tool;
  run: number;
  objects: number;
  bytes: number;
  /** The machine's 1-minute load average when the run started: other work on the box skews timings. */
  loadAverage: number;
}

/** Everything one workload measured. */
export interface WorkloadOutcome {
  id: number;
  name: string;
  description: string;
  objects: number;
  bytes: number;
  tools: Tool[];
  runs: RunRecord[];
  /** Untimed preparation, for the record: seeding, and workload 4's first copy. */
  setup: Record<string, number | string>;
  notes: string[];
}

/** Prints progress lines. */
export type Say = (line: string) => void;

interface Shared {
  context: BenchContext;
  options: BenchOptions;
  /** The tools to run in copy workloads: the sync, the available peers, the ceiling. */
  copyTools: Tool[];
  /** The tools to run in the no-change workload: the sync, the available peers, the bare listing. */
  noChangeTools: Tool[];
  say: Say;
  /** Nothing runs after this workload: the sandbox goes away with its objects, so they are not deleted. */
  last?: boolean;
}

/** Runs workload `id` with the given sizes. */
export function runWorkload(id: number, shared: Shared): Promise<WorkloadOutcome> {
  const { options } = shared;
  switch (id) {
    case 1:
      return copyWorkload(shared, {
        id,
        name: 'many-small',
        description: `${options.smallCount.toLocaleString('en-US')} × ${options.smallKib} KiB, cross-account`,
        seed: (s3, bucket, prefix) =>
          seedObjects(s3, bucket, prefix, options.smallCount, options.smallKib * KiB),
      });
    case 2:
      return copyWorkload(shared, {
        id,
        name: 'large',
        description: `${options.largeCount} × ${options.largeMib} MiB`,
        seed: (s3, bucket, prefix) =>
          seedObjects(s3, bucket, prefix, options.largeCount, options.largeMib * MiB),
      });
    case 3:
      return copyWorkload(shared, {
        id,
        name: 'one-big',
        description: `1 × ${options.bigMib.toLocaleString('en-US')} MiB, generated on the fly`,
        seed: (s3, bucket, prefix) => seedBigObject(s3, bucket, `${prefix}big-object`, options.bigMib * MiB),
      });
    case 4:
      return noChangeWorkload(shared, id);
    default:
      throw new Error(`no workload ${id}`);
  }
}

interface CopySpec {
  id: number;
  name: string;
  description: string;
  seed: (s3: S3Client, bucket: string, prefix: string) => Promise<void>;
}

/** Seeds the source once, then copies it with every tool, each run into a fresh destination prefix. */
async function copyWorkload(shared: Shared, spec: CopySpec): Promise<WorkloadOutcome> {
  const { context, options, copyTools, say } = shared;
  const { sandbox } = context;
  const producer = sandboxS3(sandbox, sandbox.accountA.admin);
  const root = workloadRoot(spec.id);
  const sourcePrefix = `${root}src/`;
  const seedStarted = Date.now();
  say(`w${spec.id} ${spec.name}: seeding ${spec.description} as AccountA (untimed)`);
  await spec.seed(producer, sandbox.accountA.bucket, sourcePrefix);
  const objects = await listPrefix(producer, sandbox.accountA.bucket, sourcePrefix);
  const seedSeconds = (Date.now() - seedStarted) / 1000;
  say(`  seeded ${objects.length} objects in ${seedSeconds.toFixed(1)} s`);

  const outcome = newOutcome(spec, objects, copyTools, { seedSeconds });
  try {
    for (let run = 1; run <= options.runs; run += 1) {
      for (const tool of copyTools) {
        const destinationPrefix = `${root}dst-${tool}-${run}/`;
        const task: CopyTask = { sourcePrefix, destinationPrefix, objects, jobId: jobId(spec.id, tool, run) };
        const record = await measuredRun(shared, outcome, tool, run, task);
        await checkDestination(context, destinationPrefix, objects, tool);
        await deletePrefix(consumer(context), sandbox.accountB.destinationBucket, destinationPrefix);
        outcome.runs.push(record);
      }
    }
  } finally {
    await deletePrefix(producer, sandbox.accountA.bucket, sourcePrefix);
  }
  return outcome;
}

/**
 * Workload 4, the incremental cost: seeds the source, lets the sync copy it once (untimed, and the same
 * destination serves every peer), gives the AWS CLI the local copy its first download would have left,
 * then times passes that find nothing to copy, against a bare listing of the same objects.
 */
async function noChangeWorkload(shared: Shared, id: number): Promise<WorkloadOutcome> {
  const { context, options, noChangeTools, say } = shared;
  const { sandbox } = context;
  const producer = sandboxS3(sandbox, sandbox.accountA.admin);
  const root = workloadRoot(id);
  const sourcePrefix = `${root}src/`;
  const destinationPrefix = `${root}dst/`;
  const spec = {
    id,
    name: 'no-change-rerun',
    description: `${options.noChangeCount.toLocaleString('en-US')} × ${options.noChangeKib} KiB already copied; nothing changed`,
  };
  const seedStarted = Date.now();
  say(`w${id} ${spec.name}: seeding ${options.noChangeCount} objects inside moto (untimed)`);
  const objectBytes = options.noChangeKib * KiB;
  await seedObjectsInServer(
    sandbox.motoEndpoint,
    { account: sandbox.accountA.id, bucket: sandbox.accountA.bucket, prefix: sourcePrefix },
    options.noChangeCount,
    objectBytes,
  );
  const objects = await listPrefix(producer, sandbox.accountA.bucket, sourcePrefix);
  const seedSeconds = (Date.now() - seedStarted) / 1000;
  say(`  seeded ${objects.length} objects in ${seedSeconds.toFixed(1)} s`);

  const job = jobId(id, 'cross-account-sync', 0);
  const localDir = join(context.scratch, `w${id}-aws-cli-local`);
  const outcome = newOutcome(spec, objects, noChangeTools, { seedSeconds });
  try {
    if (options.firstCopy) {
      say(`  first copy by the sync (untimed, concurrency ${FIRST_COPY_CONCURRENCY})`);
      const prime = await runTool({ ...context, concurrency: FIRST_COPY_CONCURRENCY }, 'cross-account-sync', {
        sourcePrefix,
        destinationPrefix,
        objects,
        jobId: job,
      });
      outcome.setup.firstCopySeconds = round(prime.wallSeconds);
      outcome.setup.firstCopyObjectsPerSecond = round(objects.length / prime.wallSeconds);
      outcome.setup.firstCopyConcurrency = FIRST_COPY_CONCURRENCY;
      outcome.setup.firstCopyWriteCapacityUnits = round(prime.dynamodb?.writeCapacityUnits ?? 0);
      say(`  first copy: ${prime.wallSeconds.toFixed(1)} s`);
    } else {
      const primeStarted = Date.now();
      say('  building the state a first copy leaves (untimed): destination objects and ledger records');
      await primeAsCopied(context, { sourcePrefix, destinationPrefix, objectBytes, job }, objects.length);
      outcome.setup.primeSeconds = round((Date.now() - primeStarted) / 1000);
    }
    await checkDestination(context, destinationPrefix, objects, 'cross-account-sync');

    if (noChangeTools.includes('aws-cli')) {
      // What `aws s3 sync` leaves after a download: the files, with the objects' LastModified as mtime.
      await mkdir(localDir, { recursive: true });
      await forEachConcurrently(objects.length, 16, async (index) => {
        const object = objects[index] as Listed;
        const name = object.key.slice(sourcePrefix.length);
        const path = join(localDir, name);
        await writeFile(path, seedBody(name, objectBytes));
        await utimes(path, object.lastModified, object.lastModified);
      });
    }

    for (let run = 1; run <= options.runs; run += 1) {
      for (const tool of noChangeTools) {
        const task: CopyTask = { sourcePrefix, destinationPrefix, objects, jobId: job, localDir };
        const record = await measuredRun(shared, outcome, tool, run, task);
        const writes = record.requests.PUT + record.requests.POST;
        // The sync's preflight reads one byte of one listed object (proof of s3:GetObject) every run.
        const expectedGets = tool === 'cross-account-sync' ? 1 : 0;
        if (writes > 0 || (tool !== 'bare-listing' && record.requests.GET > expectedGets)) {
          const what = `${tool} run ${run} was not a no-change pass: ${record.requests.GET} GET, ${writes} PUT/POST`;
          // The sync's passes are what this workload measures: one that copies means a wrong start state.
          if (tool === 'cross-account-sync') throw new Error(what);
          outcome.notes.push(what);
        }
        outcome.runs.push(record);
      }
    }
  } finally {
    await rm(localDir, { recursive: true, force: true });
    if (!shared.last) {
      await deletePrefix(consumer(context), sandbox.accountB.destinationBucket, destinationPrefix);
      await deletePrefix(producer, sandbox.accountA.bucket, sourcePrefix);
    }
  }
  return outcome;
}

/**
 * Builds what a complete first copy of workload 4 leaves, without making it: the same objects under the
 * destination prefix (stored inside moto; a seeded name holds the same bytes under every prefix, so the
 * ETags match), and for each one the ledger record the sync writes after a verified copy
 * (copiedLedgerEntry, through StateStore.putLedgerEntry), from the source listing as the sync lists it.
 * A real first copy of 20,000 objects costs ~100 s of moto's one core (`--first-copy` makes one); the
 * measured passes are the same either way, and a sync pass that copies anything fails the benchmark.
 */
async function primeAsCopied(
  context: BenchContext,
  where: { sourcePrefix: string; destinationPrefix: string; objectBytes: number; job: string },
  count: number,
): Promise<void> {
  const { sandbox } = context;
  await seedObjectsInServer(
    sandbox.motoEndpoint,
    {
      account: sandbox.accountB.id,
      bucket: sandbox.accountB.destinationBucket,
      prefix: where.destinationPrefix,
    },
    count,
    where.objectBytes,
  );
  const source = listSource(
    sandboxS3(sandbox, sandbox.accountA.admin),
    sandbox.accountA.bucket,
    where.sourcePrefix,
  );
  const listed: SourceObject[] = [];
  for await (const object of source) listed.push(object);
  const entries = listed.map((object) => {
    const body = seedBody(object.key.slice(where.sourcePrefix.length), where.objectBytes);
    return copiedLedgerEntry(
      object,
      destinationKeyFor(object.key, where.sourcePrefix, where.destinationPrefix),
      {
        sha256: createHash('sha256').update(body).digest('base64'),
        destinationEtag: createHash('md5').update(body).digest('hex'),
        verifiedBy: 'etag-md5',
      },
      'bench-prime',
    );
  });
  await writeLedgerEntries(sandbox, where.job, entries);
}

async function measuredRun(
  shared: Shared,
  outcome: WorkloadOutcome,
  tool: Tool,
  run: number,
  task: CopyTask,
): Promise<RunRecord> {
  const loadAverage = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const result = await runTool(shared.context, tool, task);
  const record: RunRecord = {
    tool,
    run,
    objects: outcome.objects,
    bytes: outcome.bytes,
    loadAverage,
    ...result,
  };
  const mb = outcome.bytes / 1e6;
  shared.say(
    `  w${outcome.id} ${tool.padEnd(18)} run ${run}/${shared.options.runs}: ${result.wallSeconds.toFixed(2)} s, ` +
      `${(outcome.objects / result.wallSeconds).toFixed(0)} obj/s, ${(mb / result.wallSeconds).toFixed(1)} MB/s, ` +
      `peak RSS ${result.peakRssMb.toFixed(0)} MB`,
  );
  return record;
}

/** The copy must be complete and the right size: a tool that copied nothing would look fast. */
async function checkDestination(
  context: BenchContext,
  prefix: string,
  expected: Listed[],
  tool: Tool,
): Promise<void> {
  const copied = await listPrefix(consumer(context), context.sandbox.accountB.destinationBucket, prefix);
  const bytes = (objects: Listed[]) => objects.reduce((sum, object) => sum + object.size, 0);
  if (copied.length !== expected.length || bytes(copied) !== bytes(expected)) {
    throw new Error(
      `${tool} left ${copied.length} objects (${bytes(copied)} B) under ${prefix}; ` +
        `expected ${expected.length} (${bytes(expected)} B)`,
    );
  }
}

function newOutcome(
  spec: { id: number; name: string; description: string },
  objects: Listed[],
  tools: Tool[],
  setup: Record<string, number>,
): WorkloadOutcome {
  return {
    ...spec,
    objects: objects.length,
    bytes: objects.reduce((sum, object) => sum + object.size, 0),
    tools,
    runs: [],
    setup: Object.fromEntries(Object.entries(setup).map(([key, value]) => [key, round(value)])),
    notes: [],
  };
}

function consumer(context: BenchContext): S3Client {
  return sandboxS3(context.sandbox, context.sandbox.accountB.admin);
}

/** A fresh key space per workload and bench run, so no run sees another's objects or state. */
function workloadRoot(id: number): string {
  return `bench/w${id}-${randomBytes(3).toString('hex')}/`;
}

function jobId(workload: number, tool: Tool, run: number): string {
  return `bench-w${workload}-${tool === 'cross-account-sync' ? 'sync' : tool}-${run}-${randomBytes(3).toString('hex')}`;
}

const round = (value: number) => Math.round(value * 100) / 100;
