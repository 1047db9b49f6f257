/**
 * A giant object's part tasks and an event for the same key, racing over real HTTP (moto S3 + DynamoDB
 * Local): the event copies and records a newer version after the pass planned the object as parts, before
 * the completion (CompleteMultipartUpload) or before the completer's ledger write. The event's newer copy
 * and record must stand, the pass's upload must not stay open, and the pass counts the key as already
 * current, not failed (docs/event-driven.md, issue 12). The part tasks are captured, not queued, and each
 * delivery is one call of runPartTask, as in part-task-races.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { applyChange } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { PassOpener } from '../../functions/core/fanout/open-pass.js';
import { runPartTask } from '../../functions/core/fanout/part-task.js';
import { planShard } from '../../functions/core/fanout/plan-shard.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  eventDependencies,
  forgetJobWhenDone,
  objectCreated,
  type RaceAt,
  racingDependencies,
} from './event-helpers.js';
import { isolatedJob, passEnded, putObject, readObject, useSandbox } from './helpers.js';
import { bytesOf, capturingTasks, openUploads, sha, workerControl } from './part-task-helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const MiB = 1024 * 1024;
const log = consoleLogger('error');

type Gate = 'before the parts' | 'before the completion' | 'before the ledger write';

/**
 * Where the race is run: before the CompleteMultipartUpload of the key's copy, before the completer's
 * PutItem of the key's entry, or by the test before the first part task runs.
 */
function raceAt(gate: Gate, key: string, destinationKey: string): RaceAt {
  if (gate === 'before the completion')
    return { s3Command: 'CompleteMultipartUploadCommand', destinationKey };
  if (gate === 'before the ledger write') return { ledgerKey: key };
  return { byTheTest: true };
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
      const events = eventDependencies(sandbox, deps, job, 'part-race-test');
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
      const pass = racingDependencies(sandbox, deps, raceAt(gate, key, destinationKey), async () => {
        await putObject(producer, job.source.bucket, key, newest);
        newer = objectCreated(job.source.bucket, key);
        expect(await applyChange(events, job, newer)).toMatchObject({ outcome: 'copied' });
      });
      const { fanOutDeps, sent } = capturingTasks(pass.deps);
      const started = await startPass(fanOutDeps, job, { log });
      expect(started).toMatchObject({ status: 'started' });
      const { fence } = started as { fence: number };
      const passes = new PassOpener(fanOutDeps);
      for (const shard of sent.shards) await planShard(passes, shard, workerControl('planner'));
      expect(sent.copies).toEqual([]);
      expect(sent.parts).toHaveLength(2);
      pass.arm();
      // The source changes before any part is read: each part's read, pinned to v1's ETag, is refused.
      if (gate === 'before the parts') await pass.race();

      for (const part of sent.parts.sort((a, b) => a.partNumber - b.partNumber)) {
        expect(await runPartTask(passes, part, workerControl(`part-${part.partNumber}`))).toBe('settled');
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
