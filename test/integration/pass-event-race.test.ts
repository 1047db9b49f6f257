/**
 * A scheduled pass and an event for the same key, racing over real HTTP (moto S3 + DynamoDB Local): the
 * event copies and records a newer version while the pass is copying the version its plan read. The
 * event's newer copy and record must stand, whichever of the pass's writes comes after it
 * (docs/event-driven.md, issue 12).
 */
import { describe, expect, it } from 'vitest';
import { applyChange } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import {
  eventDependencies,
  forgetJobWhenDone,
  objectCreated,
  type RaceAt,
  racingDependencies,
} from './event-helpers.js';
import { isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;

/** Writes `body` to the source and returns the Object Created event S3 would send for it. */
async function put(key: string, body: string): Promise<ObjectChange> {
  await putObject(producer, SOURCE, key, body);
  return objectCreated(SOURCE, key);
}

type Gate = 'before the destination write' | 'before the ledger write';

/** Where the race is run: before the pass's PutObject of the key's copy, or its PutItem of the key's entry. */
function raceAt(gate: Gate, key: string, destinationKey: string): RaceAt {
  return gate === 'before the destination write'
    ? { s3Command: 'PutObjectCommand', destinationKey }
    : { ledgerKey: key };
}

describe('a pass racing an event for the same key (moto S3 + DynamoDB Local)', () => {
  it.each<{ gate: Gate; mirror: boolean }>([
    { gate: 'before the destination write', mirror: false },
    { gate: 'before the destination write', mirror: true },
    { gate: 'before the ledger write', mirror: true },
  ])(
    "keeps the event's newer copy and record when the event lands $gate (mirror $mirror)",
    async ({ gate, mirror }) => {
      const job = isolatedJob(sandbox, 'race', { options: { mirror } });
      forgetJobWhenDone(deps, job.jobId);
      const key = `${job.source.prefix}k.txt`;
      const destinationKey = `${job.destination.prefix}k.txt`;
      const events = eventDependencies(sandbox, deps, job, 'race-test');
      // The ledger holds v0 at sequencer s1, from an event; v1's event is late, so the pass plans v1.
      const first = await put(key, 'version zero');
      expect(await applyChange(events, job, first)).toMatchObject({ outcome: 'copied' });
      await put(key, 'version one, which the pass copies');
      let newer: ObjectChange | undefined;
      const pass = racingDependencies(sandbox, deps, raceAt(gate, key, destinationKey), async () => {
        newer = await put(key, 'version two, which the event copies');
        expect(await applyChange(events, job, newer)).toMatchObject({ outcome: 'copied' });
      });
      pass.arm();

      const summary = await syncJob(pass.deps, job);

      expect(pass.raced()).toBe(true);
      // Left to the event, which copied the key: already current, neither copied here nor failed.
      expect(summary).toMatchObject({ copied: 0, skipped: 1, failed: 0 });
      expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe(
        'version two, which the event copies',
      );
      expect(await deps.state.ledgerEntry(job.jobId, key)).toMatchObject({
        sequencer: storedSequencer(newer?.sequencer ?? ''),
      });
      const next = await syncJob(deps, job);
      expect(next).toMatchObject({ copied: 0, failed: 0 });
      expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe(
        'version two, which the event copies',
      );
    },
  );
});
