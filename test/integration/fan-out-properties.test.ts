/**
 * Property, for fan-out passes (docs/fan-out.md): whatever the producer does between passes, and however
 * SQS delivers the tasks (twice at once, late, or to a worker cut short mid-copy), one final pass leaves the
 * destination equal to the source, no source version was uploaded twice, and the ledger agrees.
 *
 * The whole sandbox: moto's S3 and SQS (auth enforced), DynamoDB Local, the workers in-process through local
 * event source mappings. A history is a few seconds, so few run here; FANOUT_PROPERTY_RUNS (npm run
 * test:sweep) runs more, and FANOUT_PROPERTY_SEED replays one.
 */
import { createHash } from 'node:crypto';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import type { Job } from '../../functions/core/job.js';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { isolatedJob, listKeys, localFanOut, putObject, readObject, useSandbox } from './helpers.js';

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

async function runPass(job: Job): Promise<void> {
  const started = (await handleEvent(fanOut.deps, job)) as PassStart;
  expect(started.status).toBe('started');
  if (started.status !== 'started') return;
  const { state } = fanOut.deps;
  const pass = new PassTally(state.client, state.tableName, job.jobId, started.fence);
  const deadline = Date.now() + 90_000;
  while ((await pass.read()).state !== 'ended') {
    if (Date.now() > deadline)
      throw new Error(`pass ${started.fence} did not end: ${JSON.stringify(await pass.read())}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
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
