/**
 * A giant object's part tasks and an event for the same key, racing over real HTTP (moto S3 + DynamoDB
 * Local): the event copies and records a newer version after the pass planned the object as parts, before
 * the completion (CompleteMultipartUpload) or before the completer's ledger write. The event's newer copy
 * and record must stand, the pass's upload must not stay open, and the pass counts the key as already
 * current, not failed (docs/event-driven.md, issue 12). The part tasks are captured, not queued, and each
 * delivery is one call of runPartTask, as in part-task-races.test.ts.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { sourceCredentials } from '../../functions/core/access/source-credentials.js';
import type { CopyTask } from '../../functions/core/dispatch/copy-tasks.js';
import type { PartTask } from '../../functions/core/dispatch/part-tasks.js';
import type { PlanShardTask } from '../../functions/core/dispatch/shard-tasks.js';
import { applyChange, type ChangeDependencies } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { PassOpener } from '../../functions/core/fanout/open-pass.js';
import { runPartTask } from '../../functions/core/fanout/part-task.js';
import { planShard } from '../../functions/core/fanout/plan-shard.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { StateStore } from '../../functions/core/state/state-store.js';
import { sandboxDynamo, sandboxS3 } from '../../sandbox/clients.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { forgetJobWhenDone, objectCreated } from './event-helpers.js';
import { isolatedJob, passEnded, putObject, readObject, useSandbox } from './helpers.js';
import { bytesOf, openUploads, sha } from './part-task-helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const MiB = 1024 * 1024;
const log = consoleLogger('error');
const control = (worker: string) => ({
  log,
  worker,
  signal: new AbortController().signal,
  minPartSize: 8 * MiB,
});

/** The event worker's dependencies for `job`, with clients of its own (no gate of the pass's). */
function eventDependencies(job: Job): ChangeDependencies {
  return {
    sourceS3: deps.sourceS3(sourceCredentials(deps.sts, job, 'part-race-test')) as S3Client,
    destinationS3: sandboxS3(sandbox, sandbox.accountB.syncer),
    state: deps.state,
  };
}

type Gate = 'before the parts' | 'before the completion' | 'before the ledger write';

/**
 * The pass's clients, with `race` run once, at `gate`, once `armed` (after planning): just before the
 * CompleteMultipartUpload of `destinationKey`, or just before the PutItem of source key `key`'s ledger item
 * ('before the parts': when the test calls `race` itself, before the first part task runs).
 */
function passDependencies(key: string, destinationKey: string, gate: Gate, race: () => Promise<void>) {
  let armed = false;
  let raced = false;
  const once = async () => {
    if (!armed || raced) return;
    raced = true;
    await race();
  };
  const destinationS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
  destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string };
      if (gate === 'before the completion' && context.commandName === 'CompleteMultipartUploadCommand') {
        if (input.Key === destinationKey) await once();
      }
      return next(args);
    },
    { step: 'initialize' },
  );
  const dynamodb = sandboxDynamo(sandbox);
  // The state table's DocumentClient shares this stack: its PutCommand shows as PutItemCommand, unmarshalled.
  dynamodb.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Item?: { pk?: unknown; sk?: unknown } };
      if (gate === 'before the ledger write' && context.commandName === 'PutItemCommand') {
        if (String(input.Item?.pk).startsWith('ledger#') && input.Item?.sk === key) await once();
      }
      return next(args);
    },
    { step: 'initialize' },
  );
  return {
    deps: { ...deps, destinationS3, state: new StateStore(dynamodb, deps.state.tableName) },
    arm: () => {
      armed = true;
    },
    raced: () => raced,
    race: once,
  };
}

describe('part tasks racing an event for the same key (moto S3 + DynamoDB Local)', () => {
  it.each<{ gate: Gate; mirror: boolean; earlier: boolean }>([
    { gate: 'before the parts', mirror: false, earlier: true },
    { gate: 'before the completion', mirror: false, earlier: true },
    { gate: 'before the completion', mirror: true, earlier: true },
    { gate: 'before the completion', mirror: true, earlier: false },
    { gate: 'before the ledger write', mirror: true, earlier: true },
  ])(
    "keeps the event's newer copy and record when the event lands $gate (mirror $mirror, earlier copy $earlier)",
    async ({ gate, mirror, earlier }) => {
      const job = isolatedJob(sandbox, 'part-race', {
        options: { mirror, fanOut: { mode: 'always', partTasksAbove: 5 * MiB } },
      });
      forgetJobWhenDone(deps, job.jobId);
      const key = `${job.source.prefix}giant.bin`;
      const destinationKey = `${job.destination.prefix}giant.bin`;
      const events = eventDependencies(job);
      if (earlier) {
        // The ledger holds v0 at a sequencer, from an event: the completion is conditional on its copy.
        await putObject(producer, job.source.bucket, key, 'version zero');
        expect(await applyChange(events, job, objectCreated(job.source.bucket, key))).toMatchObject({
          outcome: 'copied',
        });
      }
      // v1 is giant; its event is late, so the pass plans it as 2 part tasks.
      await putObject(producer, job.source.bucket, key, bytesOf(12 * MiB, 21));
      const newest = bytesOf(6 * MiB + 4, 22);
      let newer: ObjectChange | undefined;
      const pass = passDependencies(key, destinationKey, gate, async () => {
        await putObject(producer, job.source.bucket, key, newest);
        newer = objectCreated(job.source.bucket, key);
        expect(await applyChange(events, job, newer)).toMatchObject({ outcome: 'copied' });
      });
      const sent = { shards: [] as PlanShardTask[], copies: [] as CopyTask[], parts: [] as PartTask[] };
      const fanOutDeps = {
        ...pass.deps,
        queues: {
          planShard: async (task: PlanShardTask) => void sent.shards.push(task),
          copy: async (task: CopyTask) => void sent.copies.push(task),
          part: async (task: PartTask) => void sent.parts.push(task),
        },
      };
      const started = await startPass(fanOutDeps, job, { log });
      expect(started).toMatchObject({ status: 'started' });
      const { fence } = started as { fence: number };
      const passes = new PassOpener(fanOutDeps);
      for (const shard of sent.shards) await planShard(passes, shard, control('planner'));
      expect(sent.copies).toEqual([]);
      expect(sent.parts).toHaveLength(2);
      pass.arm();
      // The source changes before any part is read: each part's read, pinned to v1's ETag, is refused.
      if (gate === 'before the parts') await pass.race();

      for (const part of sent.parts.sort((a, b) => a.partNumber - b.partNumber)) {
        expect(await runPartTask(passes, part, control(`part-${part.partNumber}`))).toBe('settled');
      }

      expect(pass.raced()).toBe(true);
      // Left to the event, which copied the key: already current, neither copied here nor failed.
      expect(await passEnded(fanOutDeps, job, fence)).toMatchObject({
        status: 'complete',
        copied: 0,
        skipped: 1,
        failed: 0,
      });
      expect(sha(await readObject(consumer, job.destination.bucket, destinationKey))).toBe(sha(newest));
      expect(await deps.state.ledgerEntry(job.jobId, key)).toMatchObject({
        sequencer: storedSequencer(newer?.sequencer ?? ''),
        size: newest.length,
      });
      expect(await openUploads(consumer, job)).toEqual([]);
      expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
      const next = await syncJob(deps, job);
      expect(next).toMatchObject({ copied: 0, failed: 0 });
      expect(sha(await readObject(consumer, job.destination.bucket, destinationKey))).toBe(sha(newest));
    },
  );
});
