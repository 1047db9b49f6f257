/**
 * Property, for fan-out passes (docs/fan-out.md): whatever the producer does between passes, and however
 * SQS delivers the tasks (twice at once, late, or to a worker cut short mid-copy), one final pass leaves the
 * destination equal to the source, no source version was uploaded twice, and the ledger agrees.
 *
 * The whole sandbox: moto's S3 and SQS (auth enforced), DynamoDB Local, the workers in-process through local
 * event source mappings. A history is a few seconds, so few run here; FANOUT_PROPERTY_RUNS (npm run
 * test:sweep) runs more, and FANOUT_PROPERTY_SEED replays one.
 *
 * Killed histories (FANOUT_KILL_RUNS, 2 here, 20 in test:sweep): the worker functions run bundled in child
 * processes (sandbox/worker-processes.ts) and random ones are SIGKILLed mid-task, the worker ending a pass
 * among them; every history kills at least one. Their destination is versioned, so an object uploaded
 * twice shows as two versions, and no multipart upload may be left open.
 */
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
} from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { PART_SIZE } from '../../functions/core/copy/copy-object.js';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import { type PassState, PassTally } from '../../functions/core/state/pass-tally.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  isolatedJob,
  listKeys,
  localFanOut,
  type ProcessFanOut,
  processFanOut,
  putObject,
  readObject,
  useSandbox,
} from './helpers.js';

const { sandbox, producer, consumer } = useSandbox();
const RUNS = Number(process.env.FANOUT_PROPERTY_RUNS ?? 8);
const SEED =
  process.env.FANOUT_PROPERTY_SEED === undefined ? undefined : Number(process.env.FANOUT_PROPERTY_SEED);
const KEYS = ['a', 'b', 'a b', 'dir/ü', 'a😀', 'a！', '+%2B', 'z/long', 'c', 'd'];

/** How the next deliveries go: set per history from its seed; off for the final pass. */
const chaos = { on: false, random: Math.random };
/** Successful PutObjects at the destination, by key and body MD5: a source version uploaded twice shows here. */
const puts = new Map<string, number>();
let fanOut: LocalFanOut;

beforeAll(async () => {
  const deps = dependenciesFromEnvironment(consoleLogger('error'));
  deps.destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'PutObjectCommand') {
        const input = args.input as { Key?: string; ContentMD5?: string };
        const id = `${input.Key} ${input.ContentMD5}`;
        puts.set(id, (puts.get(id) ?? 0) + 1);
      }
      return result;
    },
    { step: 'initialize', name: 'countPuts' },
  );
  fanOut = await localFanOut(sandbox, deps, {
    workers: 3,
    // Short, so tasks cut short come back within a history; a redelivery while one is at work is harmless.
    visibilityTimeoutSeconds: 3,
    around: (kind, handler) => async (event: SQSEvent, context) => {
      if (!chaos.on) return handler(event, context);
      const roll = chaos.random();
      if (roll < 0.25) {
        const [first] = await Promise.all([handler(event, context), handler(event, context)]);
        return first;
      }
      if (roll < 0.45) {
        await new Promise((resolve) => setTimeout(resolve, chaos.random() * 300));
        return handler(event, context);
      }
      if (roll < 0.6 && kind === 'copy') {
        const stop = new AbortController();
        setTimeout(() => stop.abort(new Error('cut short by the history')), chaos.random() * 200);
        return handler(event, context, stop.signal);
      }
      return handler(event, context);
    },
  });
});
afterAll(() => fanOut?.stop());

type Step = { op: 'put'; key: string } | { op: 'delete'; key: string } | { op: 'pass' };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('put' as const), key: fc.constantFrom(...KEYS) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'pass' as const }) },
);

let version = 0;

async function runPass(
  job: Job,
  on: LocalFanOut = fanOut,
  watch?: (state: PassState) => void,
): Promise<void> {
  const started = (await handleEvent(on.deps, job)) as PassStart;
  expect(started.status).toBe('started');
  if (started.status !== 'started') return;
  const { state } = on.deps;
  const pass = new PassTally(state.client, state.tableName, job.jobId, started.fence);
  const deadline = Date.now() + 90_000;
  for (;;) {
    const stored = await pass.read();
    if (stored.state === 'ended') return;
    watch?.(stored);
    if (Date.now() > deadline)
      throw new Error(`pass ${started.fence} did not end: ${JSON.stringify(stored)}`);
    await new Promise((resolve) => setTimeout(resolve, watch ? 25 : 100));
  }
}

const md5 = (body: Buffer) => createHash('md5').update(body).digest('base64');

describe('fan-out histories (the whole sandbox)', () => {
  it('ends every history with destination = source, no version uploaded twice, and the ledger agreeing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 3, maxLength: 10 }),
        fc.boolean(),
        fc.integer(),
        async (steps, mirror, seed) => {
          const job = isolatedJob(sandbox, 'fan-out-history', {
            options: {
              mirror,
              maxDeletesPerRun: 1000,
              concurrency: 4,
              fanOut: { mode: 'always', keysPerShard: 3 },
            },
          });
          const at = (key: string) => `${job.source.prefix}${key}`;
          let state = seed;
          chaos.random = () => {
            state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
            return state / 2 ** 32;
          };
          chaos.on = true;
          for (const { op, ...rest } of steps) {
            if (op === 'put')
              await putObject(
                producer,
                job.source.bucket,
                at((rest as { key: string }).key),
                `v${version++}`,
              );
            if (op === 'delete') {
              await producer.send(
                new DeleteObjectCommand({
                  Bucket: job.source.bucket,
                  Key: at((rest as { key: string }).key),
                }),
              );
            }
            if (op === 'pass') await runPass(job);
          }
          chaos.on = false;
          await runPass(job);

          const sourceKeys = (await listKeys(producer, job.source.bucket, job.source.prefix)).sort();
          const destinationKeys = (
            await listKeys(consumer, job.destination.bucket, job.destination.prefix)
          ).sort();
          if (mirror) expect(destinationKeys).toEqual(sourceKeys);
          else expect(destinationKeys).toEqual(expect.arrayContaining(sourceKeys));
          const ledger = new Map<string, { etag?: string; destinationEtag?: string }>();
          for await (const entry of fanOut.deps.state.ledger(job.jobId)) ledger.set(entry.key, entry);
          for (const key of sourceKeys) {
            const [source, copy] = await Promise.all([
              readObject(producer, job.source.bucket, key),
              readObject(consumer, job.destination.bucket, key),
            ]);
            expect(copy.toString(), key).toBe(source.toString());
            // Each version is a new body, so one PUT of it at most, however often its task was delivered.
            expect(puts.get(`${key} ${md5(source)}`), key).toBe(1);
            expect(ledger.get(key)?.destinationEtag, key).toBeDefined();
          }
          if (mirror) expect([...ledger.keys()].sort()).toEqual(sourceKeys);
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  }, 600_000);
});

const KILL_RUNS = Number(process.env.FANOUT_KILL_RUNS ?? 2);
/** Versioned: every upload that completed leaves a version, so a source version uploaded twice shows. */
const KILL_DESTINATION = 'accountb-fan-out-kill';
/**
 * The workers' timeout: a pass's end claimed by a worker that was killed is taken over once the claimer's
 * deadline has passed, so a short one keeps the histories short. It leaves a task 15 s, which it needs on a
 * loaded 2-core machine with children starting cold (12 s was seen to cut copies).
 */
const KILL_FUNCTION_TIMEOUT_MS = 20_000;
/** The first forced kill waits up to this long into a task; halved after each that finished first. */
const FIRST_FORCED_KILL_MS = 300;

type KillStep = { op: 'put'; key: string; big: boolean } | { op: 'delete'; key: string } | { op: 'pass' };
const killStep: fc.Arbitrary<KillStep> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      key: fc.constantFrom(...KEYS),
      // Over one part now and then, so a kill can land in a multipart upload.
      big: fc.oneof(
        { weight: 4, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'pass' as const }) },
);

describe('fan-out histories with workers killed outright (worker functions in child processes)', () => {
  let local: ProcessFanOut;
  /** Kills this history: how many invocations died mid-task, and when the next forced one comes. */
  const kills = { history: 0, total: 0, ending: 0, forcedWithinMs: FIRST_FORCED_KILL_MS };

  beforeAll(async () => {
    await consumer.send(new CreateBucketCommand({ Bucket: KILL_DESTINATION })).catch(() => {});
    await consumer.send(
      new PutBucketVersioningCommand({
        Bucket: KILL_DESTINATION,
        VersioningConfiguration: { Status: 'Enabled' },
      }),
    );
    local = await processFanOut(sandbox, dependenciesFromEnvironment(consoleLogger('error')), {
      workers: 3,
      // Short, so killed tasks come back within a history; many receives, as kills spend them.
      visibilityTimeoutSeconds: 2,
      maxReceiveCount: 20,
      functionTimeoutMs: KILL_FUNCTION_TIMEOUT_MS,
      // No deliveries made twice at once here (the in-process histories make them): two processes PUTting
      // one key at the same instant were once seen both to pass If-None-Match on moto's threaded server,
      // which S3 refuses (one gets 412 or 409). Kills and redeliveries after the visibility timeout remain.
    });
    local.processes.onInvoke = (invocation) => {
      if (!chaos.on) return;
      const land = () => {
        if (!invocation.kill()) return false;
        kills.history += 1;
        return true;
      };
      if (kills.history === 0 && invocation.kind === 'copy') {
        // At least one kill per history: this task dies within `forcedWithinMs`, or the next one sooner.
        const within = kills.forcedWithinMs;
        setTimeout(() => {
          if (!land()) kills.forcedWithinMs = Math.floor(kills.forcedWithinMs / 2);
        }, chaos.random() * within);
      } else if (chaos.random() < 0.15) {
        setTimeout(land, chaos.random() * 300);
      }
    };
  });
  afterAll(() => local?.stop());

  /** While the pass is ending, sometimes kills every worker at work: the one writing the end among them. */
  const killEnder = () => {
    let tried = false;
    return (state: PassState) => {
      if (!chaos.on || tried || state.state !== 'ending') return;
      tried = true;
      if (chaos.random() < 0.5) return;
      const landed = local.processes.busy().filter((invocation) => invocation.kill()).length;
      kills.history += landed;
      kills.ending += landed;
    };
  };

  it('ends every killed history with destination = source, no version uploaded twice, the ledger agreeing, no upload open', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(killStep, { minLength: 2, maxLength: 8 }),
        fc.boolean(),
        fc.integer(),
        async (steps, mirror, seed) => {
          const isolated = isolatedJob(sandbox, 'fan-out-killed', {
            options: {
              mirror,
              maxDeletesPerRun: 1000,
              concurrency: 4,
              fanOut: { mode: 'always', keysPerShard: 3 },
            },
          });
          const job = parseJob({
            ...isolated,
            destination: { ...isolated.destination, bucket: KILL_DESTINATION },
          });
          const at = (key: string) => `${job.source.prefix}${key}`;
          let state = seed;
          chaos.random = () => {
            state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
            return state / 2 ** 32;
          };
          Object.assign(kills, { history: 0, forcedWithinMs: FIRST_FORCED_KILL_MS });
          const put = (key: string, big: boolean) => {
            const stamp = `v${version++}|`;
            return putObject(
              producer,
              job.source.bucket,
              at(key),
              big ? Buffer.concat([Buffer.from(stamp), Buffer.alloc(PART_SIZE + 4096, 46)]) : stamp,
            );
          };
          chaos.on = true;
          // Copies in the first pass, so the history has a task to kill.
          const history: KillStep[] = [{ op: 'put', key: 'a', big: false }, { op: 'pass' }, ...steps];
          for (const each of history) {
            if (each.op === 'put') await put(each.key, each.big);
            if (each.op === 'delete')
              await producer.send(new DeleteObjectCommand({ Bucket: job.source.bucket, Key: at(each.key) }));
            if (each.op === 'pass') await runPass(job, local.fanOut, killEnder());
          }
          // Every forced kill so far found its task done: passes with a fresh version until one lands (its
          // wait halves each time, so one does).
          while (kills.history === 0) {
            await put('a', false);
            await runPass(job, local.fanOut, killEnder());
          }
          chaos.on = false;
          await runPass(job, local.fanOut);
          kills.total += kills.history;
          expect(kills.history).toBeGreaterThan(0);
          await assertKilledHistory(job, mirror);
        },
      ),
      { numRuns: KILL_RUNS, seed: SEED, endOnFailure: true },
    );
    expect(kills.total).toBeGreaterThanOrEqual(KILL_RUNS);
  }, 900_000);

  async function assertKilledHistory(job: Job, mirror: boolean): Promise<void> {
    // Stragglers of earlier passes (a duplicate still copying) finish before the buckets are compared.
    while (local.processes.busy().length > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    const sourceKeys = (await listKeys(producer, job.source.bucket, job.source.prefix)).sort();
    const destinationKeys = (await listKeys(consumer, job.destination.bucket, job.destination.prefix)).sort();
    if (mirror) expect(destinationKeys).toEqual(sourceKeys);
    else expect(destinationKeys).toEqual(expect.arrayContaining(sourceKeys));
    const ledger = new Map<string, { destinationEtag?: string }>();
    for await (const entry of local.fanOut.deps.state.ledger(job.jobId)) ledger.set(entry.key, entry);
    const { Versions = [] } = await consumer.send(
      new ListObjectVersionsCommand({ Bucket: job.destination.bucket, Prefix: job.destination.prefix }),
    );
    for (const key of sourceKeys) {
      const [source, copy] = await Promise.all([
        readObject(producer, job.source.bucket, key),
        readObject(consumer, job.destination.bucket, key),
      ]);
      expect(copy.equals(source), key).toBe(true);
      // Each version is a new body, so its copy is one version, however often its task ran or was killed.
      const { ETag } = await consumer.send(
        new HeadObjectCommand({ Bucket: job.destination.bucket, Key: key }),
      );
      expect(Versions.filter((v) => v.Key === key && v.ETag === ETag).length, key).toBe(1);
      expect(ledger.get(key)?.destinationEtag, key).toBe(ETag?.replaceAll('"', ''));
    }
    if (mirror) expect([...ledger.keys()].sort()).toEqual(sourceKeys);
    const { Uploads = [] } = await consumer.send(
      new ListMultipartUploadsCommand({ Bucket: job.destination.bucket, Prefix: job.destination.prefix }),
    );
    expect(Uploads.map((upload) => upload.Key)).toEqual([]);
  }
});
