/**
 * Fan-out over real HTTP (docs/fan-out.md): the scheduled function starts a pass, the shard planners and
 * copy workers work it from moto's SQS through local event source mappings, DynamoDB Local keeps the pass,
 * and moto's S3 (auth enforced, the source read through the assumed role) holds both buckets. Every
 * delivery here is made twice at once, as at-least-once SQS may: the totals, the ledger and the
 * destination must still come out exact.
 */
import { createHash } from 'node:crypto';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import type { PlanShardTask } from '../../functions/core/dispatch/shard-tasks.js';
import { runCopyTask } from '../../functions/core/fanout/copy-task.js';
import { PassOpener, PassOverError } from '../../functions/core/fanout/open-pass.js';
import { type PassStart, startPass as startPassOf } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  isolatedJob,
  listKeys,
  localFanOut,
  passEnded,
  putObject,
  randomText,
  readObject,
  useSandbox,
} from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const deliveries = { 'plan-shard': 0, copy: 0, part: 0 };
let fanOut: LocalFanOut;

beforeAll(async () => {
  fanOut = await localFanOut(sandbox, deps, {
    workers: 3,
    worker: { log: consoleLogger('warn') },
    // Each batch is handled twice at once: the second delivery of a message SQS may make.
    around: (kind, handler) => async (event: SQSEvent, context) => {
      deliveries[kind] += 2;
      const [first] = await Promise.all([handler(event, context), handler(event, context)]);
      return first;
    },
  });
});
afterAll(async () => {
  // Every task handled was deleted from its queue: none is left to come back after its visibility timeout.
  for (const mapping of Object.values(fanOut.mappings)) {
    expect(mapping.stats).toMatchObject({ pollErrors: 0, returned: 0 });
  }
  await fanOut?.stop();
});

async function startPass(job: Job): Promise<Extract<PassStart, { status: 'started' }>> {
  const started = await handleEvent(fanOut.deps, job);
  expect(started).toMatchObject({ mode: 'fan-out', status: 'started' });
  return started as Extract<PassStart, { status: 'started' }>;
}

const sha = (body: Buffer) => createHash('sha256').update(body).digest('hex');

async function expectDestinationEqualsSource(job: Job) {
  const sourceKeys = await listKeys(producer, job.source.bucket, job.source.prefix);
  const destinationKeys = await listKeys(consumer, job.destination.bucket, job.destination.prefix);
  expect(destinationKeys.sort()).toEqual(sourceKeys.sort());
  for (const key of sourceKeys) {
    const [source, destination] = await Promise.all([
      readObject(producer, job.source.bucket, key),
      readObject(consumer, job.destination.bucket, key),
    ]);
    expect(sha(destination), key).toBe(sha(source));
  }
}

describe('fan-out: a pass spread over shard planners and copy workers (moto SQS, DynamoDB Local)', () => {
  it('copies every object once, ends each pass once with exact totals, and cuts shards from the ledger', async () => {
    const job = isolatedJob(sandbox, 'fan-out', {
      options: { fanOut: { mode: 'always', keysPerShard: 20 } },
    });
    const key = (n: number) => `${job.source.prefix}part-${String(n).padStart(3, '0')}.csv`;
    for (let n = 0; n < 60; n += 1)
      await putObject(producer, job.source.bucket, key(n), `row ${n}\n`.repeat(n + 1));

    // First pass: no ledger yet, so cut from the source's first page, which holds all 60 keys: every 20
    // keys, 3 shards of 20. No cut at the 60th key, the listing's last, which would start an empty shard
    // (a ledger's cuts keep that last range, below: new keys fall there).
    const first = await startPass(job);
    expect(first.shards).toBe(3);
    const firstRun = await passEnded(fanOut.deps, job, first.fence);
    expect(firstRun).toMatchObject({
      runId: first.runId,
      mode: 'fan-out',
      status: 'complete',
      copied: 60,
      failed: 0,
    });
    await expectDestinationEqualsSource(job);
    const ledger = [];
    for await (const entry of deps.state.ledger(job.jobId)) ledger.push(entry);
    expect(ledger).toHaveLength(60);
    expect(ledger.every((entry) => entry.destinationEtag && entry.runId === first.runId)).toBe(true);

    // The manifest holds every copy once; its parts are gone.
    const folder = `${job.options.manifestPrefix}${job.jobId}/${first.runId}/`;
    const manifest = (await readObject(consumer, job.destination.bucket, `${folder}manifest.jsonl`))
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(manifest.map((line) => line.sourceKey).sort()).toEqual(
      Array.from({ length: 60 }, (_, n) => key(n)),
    );
    // The ender removes the parts only after marking the pass ended (end-pass.ts), and a duplicate delivery
    // removes its own after its settlement is refused: both may still be at it when passEnded returns.
    await expect
      .poll(() => listKeys(consumer, job.destination.bucket, folder), { timeout: 30_000 })
      .toEqual([`${folder}_SUCCESS`, `${folder}manifest.jsonl`]);

    // Second pass: shards cut every 20 keys of the ledger (3, and the range after the last cut, where the
    // new keys fall); 5 objects rewritten and 10 added.
    for (let n = 0; n < 5; n += 1) await putObject(producer, job.source.bucket, key(n * 7), `rewritten ${n}`);
    for (let n = 60; n < 70; n += 1) await putObject(producer, job.source.bucket, key(n), `new ${n}`);
    const second = await startPass(job);
    expect(second.shards).toBe(4);
    expect(second.fence).toBeGreaterThan(first.fence);
    const secondRun = await passEnded(fanOut.deps, job, second.fence);
    expect(secondRun).toMatchObject({ copied: 15, skipped: 55, listed: 70, failed: 0 });
    await expectDestinationEqualsSource(job);

    // Third pass: nothing changed, nothing copied.
    const third = await startPass(job);
    expect(third.shards).toBe(4);
    expect(await passEnded(fanOut.deps, job, third.fence)).toMatchObject({ copied: 0, skipped: 70 });
    expect(deliveries.copy).toBeGreaterThan(0);
  });

  it('answers busy while the last pass is at work, instead of starting a second one beside it', async () => {
    const job = isolatedJob(sandbox, 'fan-out-busy', { options: { fanOut: { mode: 'always' } } });
    await putObject(producer, job.source.bucket, `${job.source.prefix}a.txt`, 'a');
    const first = await startPass(job);
    const again = await handleEvent(fanOut.deps, job);
    const ended = await passEnded(fanOut.deps, job, first.fence);
    expect(ended).toMatchObject({ copied: 1 });
    // Either the pass was still running (busy), or it had already ended and a second pass started.
    if ((again as PassStart).status === 'busy')
      expect(again).toMatchObject({ status: 'busy', fence: first.fence });
    else expect(again).toMatchObject({ status: 'started' });
  });

  it('drops a task that arrives after its pass ended, and a straggler a newer run overtook changes nothing', async () => {
    const job = isolatedJob(sandbox, 'fan-out-late', { options: { fanOut: { mode: 'always' } } });
    const key = `${job.source.prefix}late.csv`;
    await putObject(producer, job.source.bucket, key, 'version 1');
    const first = await startPass(job);
    await passEnded(fanOut.deps, job, first.fence);
    const [afterFirst] = await ledgerOf(job);
    const control = { signal: new AbortController().signal, log: deps.logger ?? console, worker: 'test' };
    const head = await producer.send(new HeadObjectCommand({ Bucket: job.source.bucket, Key: key }));
    const taskFor = (fence: number, previous = afterFirst) => ({
      kind: 'copy' as const,
      jobId: job.jobId,
      fence,
      taskId: 'shard-0-0',
      objects: [
        {
          key,
          etag: head.ETag ?? '',
          size: head.ContentLength ?? 0,
          lastModified: (head.LastModified ?? new Date()).toISOString(),
          storageClass: 'STANDARD',
          reason: 'changed' as const,
          ...(previous && { previous }),
        },
      ],
    });

    // A copy task of the ended pass, delivered again late: dropped before anything is read or written.
    await expect(runCopyTask(new PassOpener(fanOut.deps), taskFor(first.fence), control)).rejects.toThrow(
      PassOverError,
    );

    // A pass opened whose tasks are held back (its messages slow to arrive)...
    await putObject(producer, job.source.bucket, key, 'version 2');
    const held: PlanShardTask[] = [];
    const slow = {
      ...fanOut.deps,
      queues: { ...fanOut.deps.queues, planShard: async (t: PlanShardTask) => void held.push(t) },
    };
    const second = await startPassOf(slow, job, { log: control.log });
    expect(second).toMatchObject({ status: 'started', shards: 1 });
    // ...while an inline run (a newer fence) copies version 2.
    const inline = await syncJob(deps, {
      ...job,
      options: { ...job.options, fanOut: { ...job.options.fanOut, mode: 'never' } },
    });
    expect(inline.copied).toBe(1);
    const v2 = await producer.send(new HeadObjectCommand({ Bucket: job.source.bucket, Key: key }));

    // The second pass's copy task of version 2 finds its bytes already there, but its ledger write carries
    // the older fence: refused, and the task is stale. The inline run's record stands.
    const straggler = taskFor(second.status === 'started' ? second.fence : 0);
    straggler.objects[0] = {
      ...straggler.objects[0],
      etag: v2.ETag ?? '',
      size: v2.ContentLength ?? 0,
    } as never;
    expect(await runCopyTask(new PassOpener(fanOut.deps), straggler, control)).toBe('stale');
    const [entry] = await ledgerOf(job);
    expect(entry?.runId).toBe(inline.runId);
    expect((await readObject(consumer, job.destination.bucket, key)).toString()).toBe('version 2');
    expect(held).toHaveLength(1);
  });
});

async function ledgerOf(job: Job) {
  const entries = [];
  for await (const entry of deps.state.ledger(job.jobId)) entries.push(entry);
  return entries;
}

describe('fan-out: copy workers cut short mid-task (moto SQS, DynamoDB Local)', () => {
  let cutShort: LocalFanOut;
  const cut = new Set<string>();
  beforeAll(async () => {
    cutShort = await localFanOut(sandbox, deps, {
      workers: 2,
      // Short, so a task cut short comes back soon; a redelivery while one is at work is harmless.
      visibilityTimeoutSeconds: 4,
      // The first delivery of each copy task is cut 150 ms in, as Lambda's timeout would cut it.
      around: (kind, handler) => async (event, context) => {
        const [record] = event.Records;
        if (kind !== 'copy' || !record || cut.has(record.messageId)) return handler(event, context);
        cut.add(record.messageId);
        const stop = new AbortController();
        setTimeout(() => stop.abort(new Error('cut short by the test')), 150);
        return handler(event, context, stop.signal);
      },
    });
  });
  afterAll(() => cutShort?.stop());

  it('finishes every task whose worker was cut mid-copy, counting each object once and copying it exactly', async () => {
    const job = isolatedJob(sandbox, 'fan-out-cut', {
      options: { fanOut: { mode: 'always' }, concurrency: 4 },
    });
    const key = (n: number) => `${job.source.prefix}cut-${String(n).padStart(3, '0')}.bin`;
    for (let n = 0; n < 100; n += 1) {
      await putObject(producer, job.source.bucket, key(n), randomText(20_000 + n));
    }

    const started = await handleEvent(cutShort.deps, job);
    expect(started).toMatchObject({ status: 'started' });
    const record = await passEnded(cutShort.deps, job, (started as { fence: number }).fence);

    expect(record).toMatchObject({ copied: 100, failed: 0, deferred: 0 });
    // At least one delivery really was cut and came back.
    expect(cutShort.mappings.copy.stats.returned).toBeGreaterThanOrEqual(1);
    await expectDestinationEqualsSource(job);
    const ledger = await ledgerOf(job);
    expect(ledger).toHaveLength(100);
    expect(ledger.filter((entry) => entry.pending || entry.failure || !entry.destinationEtag)).toEqual([]);
  });
});

describe('fan-out: mirror deletions (moto SQS, DynamoDB Local)', () => {
  it('carries deletions from every shard under one maxDeletesPerRun cap for the whole pass', async () => {
    const job = isolatedJob(sandbox, 'fan-out-mirror', {
      options: { mirror: true, maxDeletesPerRun: 5, fanOut: { mode: 'always', keysPerShard: 10 } },
    });
    const key = (n: number) => `${job.source.prefix}m-${String(n).padStart(3, '0')}.txt`;
    for (let n = 0; n < 40; n += 1) await putObject(producer, job.source.bucket, key(n), `object ${n}`);
    const first = await startPass(job);
    expect(await passEnded(fanOut.deps, job, first.fence)).toMatchObject({ copied: 40 });

    // 16 keys gone at the source, spread over the next pass's shards (cut every 10 keys: 4, and the tail).
    const gone = Array.from({ length: 16 }, (_, i) => key(i * 2 + 4));
    await Promise.all(
      gone.map((Key) => producer.send(new DeleteObjectCommand({ Bucket: job.source.bucket, Key }))),
    );
    const destinationKeys = () => listKeys(consumer, job.destination.bucket, job.destination.prefix);

    const second = await startPass(job);
    expect(second.shards).toBe(5);
    expect(await passEnded(fanOut.deps, job, second.fence)).toMatchObject({ deleted: 5, copied: 0 });
    expect(await destinationKeys()).toHaveLength(35);

    for (const left of [30, 25, 24]) {
      const next = await startPass(job);
      await passEnded(fanOut.deps, job, next.fence);
      expect(await destinationKeys()).toHaveLength(left);
    }
    expect((await destinationKeys()).sort()).toEqual(
      await listKeys(producer, job.source.bucket, job.source.prefix),
    );
    expect(await ledgerOf(job)).toHaveLength(24);
  });
});

describe('fan-out: S3 throttling a copy (moto SQS, DynamoDB Local)', () => {
  it('brings a task S3 answered 503 SlowDown back after its own short pause, not the queue timeout, and copies it', async () => {
    // The workers' destination client: S3 answers SlowDown to every PutObject of one key until released.
    const throttledDeps = dependenciesFromEnvironment(consoleLogger('error'));
    let throttle = true;
    let refused = 0;
    throttledDeps.destinationS3.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: string }).Key ?? '';
        if (throttle && context.commandName === 'PutObjectCommand' && key.endsWith('slow-07.txt')) {
          refused += 1;
          throw Object.assign(new Error('Please reduce your request rate.'), {
            name: 'SlowDown',
            $metadata: { httpStatusCode: 503 },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'throttleOneKey' },
    );
    // A visibility timeout longer than the test: only the worker's own delay can bring the task back.
    const throttled = await localFanOut(sandbox, throttledDeps, {
      workers: 1,
      visibilityTimeoutSeconds: 600,
      worker: { log: consoleLogger('error'), throttleDelaySeconds: 1 },
    });
    try {
      const job = isolatedJob(sandbox, 'fan-out-slow', { options: { fanOut: { mode: 'always' } } });
      for (let n = 0; n < 12; n += 1) {
        await putObject(
          producer,
          job.source.bucket,
          `${job.source.prefix}slow-${String(n).padStart(2, '0')}.txt`,
          `n ${n}`,
        );
      }
      const started = (await handleEvent(throttled.deps, job)) as Extract<PassStart, { status: 'started' }>;
      // S3 keeps refusing until the task has failed and gone back to its queue.
      await until(() => throttled.mappings.copy.stats.returned > 0);
      throttle = false;
      expect(refused).toBeGreaterThanOrEqual(1);

      expect(await passEnded(throttled.deps, job, started.fence)).toMatchObject({ copied: 12, failed: 0 });
      expect(throttled.mappings.copy.stats.returned).toBe(1);
      await expectDestinationEqualsSource(job);
    } finally {
      await throttled.stop();
    }
  });
});

async function until(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
