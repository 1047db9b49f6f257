/**
 * A first fan-out pass (no ledger yet) cut from the source listing (plan/first-pass-splits.ts) over real
 * HTTP: the pass starter's delimiter listings and StartAfter probes go to moto's S3 with the assumed role,
 * the planners and copy workers work the shards from moto's SQS, DynamoDB Local keeps the pass. Pages of 4
 * keys stand in for S3's 1,000, so a few dozen objects need the search that 50 million would.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanShardTask } from '../../functions/core/dispatch/shard-tasks.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import { inRange } from '../../functions/core/plan/shards.js';
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
let fanOut: LocalFanOut;

beforeAll(async () => {
  fanOut = await localFanOut(sandbox, deps, { workers: 3, worker: { log: consoleLogger('warn') } });
});
afterAll(async () => {
  await fanOut?.stop();
});

const sha = (body: Buffer) => createHash('sha256').update(body).digest('hex');

describe('fan-out: a first pass cut from the source listing (moto S3 and SQS, DynamoDB Local)', () => {
  it('starts several shards over folders and a flat set, and copies every object once, byte for byte', async () => {
    // Prepare: three top-level folders with subfolders, and a flat set beside them: 48 objects.
    const job = isolatedJob(sandbox, 'fan-out-first', {
      options: { fanOut: { mode: 'always', keysPerShard: 8 } },
    });
    const { prefix } = job.source;
    const keys = [
      ...['data', 'images', 'logs'].flatMap((top) =>
        ['2025', '2026'].flatMap((sub) => [0, 1, 2, 3].map((n) => `${prefix}${top}/${sub}/${n}.bin`)),
      ),
      ...Array.from({ length: 24 }, (_, n) => `${prefix}flat-${String(n).padStart(3, '0')}.txt`),
    ];
    await Promise.all(
      keys.map((key) => putObject(producer, job.source.bucket, key, randomText(64 + key.length))),
    );
    const planned: PlanShardTask[] = [];
    const info: Record<string, unknown>[] = [];
    const log = {
      ...consoleLogger('warn'),
      info: (_: string, ...extra: Record<string, unknown>[]) => info.push(...extra),
    };

    // Act
    const started = await startPass(
      {
        ...fanOut.deps,
        queues: {
          ...fanOut.deps.queues,
          planShard: (task: PlanShardTask) => {
            planned.push(task);
            return fanOut.deps.queues.planShard(task);
          },
        },
      },
      job,
      { log, firstPassLimits: { pageSize: 4 } },
    );
    const run = await passEnded(fanOut.deps, job, (started as { fence: number }).fence);

    // Assess: as many shards as 48 keys need at 8 a shard, none empty, each object in exactly one of them,
    // the search within its bound.
    expect(started).toMatchObject({ status: 'started' });
    expect(planned).toHaveLength(keys.length / 8);
    for (const task of planned)
      expect(keys.filter((key) => inRange(key, task.range)).length, JSON.stringify(task.range)).toBe(8);
    for (const key of keys)
      expect(
        planned.filter((task) => inRange(key, task.range)),
        key,
      ).toHaveLength(1);
    const search = info.find((extra) => 'unmeasured' in extra);
    expect(search).toMatchObject({ shards: planned.length });
    expect(search?.requests).toBeLessThanOrEqual(50);
    // Every object copied once: the pass's totals, its manifest, and the destination byte for byte.
    expect(run).toMatchObject({ status: 'complete', copied: keys.length, failed: 0 });
    const manifest = (
      await readObject(
        consumer,
        job.destination.bucket,
        `${job.options.manifestPrefix}${job.jobId}/${run.runId}/manifest.jsonl`,
      )
    )
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).sourceKey);
    expect(manifest.sort()).toEqual([...keys].sort());
    expect((await listKeys(consumer, job.destination.bucket, job.destination.prefix)).sort()).toEqual(
      [...keys].sort(),
    );
    for (const key of keys) {
      const [source, destination] = await Promise.all([
        readObject(producer, job.source.bucket, key),
        readObject(consumer, job.destination.bucket, key),
      ]);
      expect(sha(destination), key).toBe(sha(source));
    }
  });

  it('cuts a later pass from its ledger: one shard under keysPerShard, without listing the source', async () => {
    // Prepare: a first pass of 20 objects in pages of 4 (which searches), then the same job with shards of
    // 100 keys, more than its ledger holds.
    const job = isolatedJob(sandbox, 'fan-out-later', {
      options: { fanOut: { mode: 'always', keysPerShard: 4 } },
    });
    const keys = Array.from({ length: 20 }, (_, n) => `${job.source.prefix}k-${String(n).padStart(2, '0')}`);
    await Promise.all(keys.map((key) => putObject(producer, job.source.bucket, key, randomText(32))));
    const firstPassLimits = { pageSize: 4 };
    const first = await startPass(fanOut.deps, job, { log: consoleLogger('warn'), firstPassLimits });
    await passEnded(fanOut.deps, job, (first as { fence: number }).fence);
    const later = {
      ...job,
      options: { ...job.options, fanOut: { ...job.options.fanOut, keysPerShard: 100 } },
    };
    const messages: string[] = [];
    const log = { ...consoleLogger('warn'), info: (message: string) => void messages.push(message) };

    // Act
    const second = await startPass(fanOut.deps, later, { log, firstPassLimits });
    const run = await passEnded(fanOut.deps, later, (second as { fence: number }).fence);

    // Assess: the first pass searched and cut 5 shards; the second is one shard, cut from the ledger alone.
    expect(first).toMatchObject({ status: 'started', shards: 5 });
    expect(second).toMatchObject({ status: 'started', shards: 1 });
    expect(messages).not.toContain('shards cut from the source listing');
    expect(run).toMatchObject({ status: 'complete', copied: 0, skipped: keys.length, failed: 0 });
  });
});
