/**
 * A mirror pass deleting a key gone from the source while an event re-creates it, over real HTTP (moto S3
 * + DynamoDB Local): the event copies and records the new version between the pass's listing and its
 * deletion. The event's copy and record must stand, and the pass leaves the key to it (skipped, not
 * deleted); and a pass's failure record must not overwrite an event's deletion mark (docs/event-driven.md,
 * issue 12).
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { applyChange } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import {
  eventDependencies,
  forgetJobWhenDone,
  nextSequencer,
  objectCreated,
  type RaceAt,
  racingDependencies,
} from './event-helpers.js';
import { isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;

type Gate = 'before the destination delete' | 'before the ledger delete';

/** Where the race is run: before the pass's DeleteObject of the key's copy, or its DeleteItem of its entry. */
function raceAt(gate: Gate, key: string, destinationKey: string): RaceAt {
  return gate === 'before the destination delete'
    ? { s3Command: 'DeleteObjectCommand', destinationKey }
    : { ledgerKey: key, ledgerCommand: 'DeleteItemCommand' };
}

describe('a mirror pass deleting a key an event re-creates (moto S3 + DynamoDB Local)', () => {
  it.each<{ gate: Gate }>([{ gate: 'before the destination delete' }, { gate: 'before the ledger delete' }])(
    "keeps the event's copy and record, and leaves the key to it, when the event lands $gate",
    async ({ gate }) => {
      const job = isolatedJob(sandbox, 'delrace', { options: { mirror: true } });
      forgetJobWhenDone(deps, job.jobId);
      const key = `${job.source.prefix}k.txt`;
      const destinationKey = `${job.destination.prefix}k.txt`;
      const events = eventDependencies(sandbox, deps, job, 'delrace-test');
      // The ledger holds v0 from an event; the key is then deleted at the source, its event late.
      await putObject(producer, SOURCE, key, 'version zero');
      expect(await applyChange(events, job, objectCreated(SOURCE, key))).toMatchObject({ outcome: 'copied' });
      await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
      let newer: ObjectChange | undefined;
      const pass = racingDependencies(sandbox, deps, raceAt(gate, key, destinationKey), async () => {
        await putObject(producer, SOURCE, key, 'version one, which the event copies');
        newer = objectCreated(SOURCE, key);
        expect(await applyChange(events, job, newer)).toMatchObject({ outcome: 'copied' });
      });
      pass.arm();

      const summary = await syncJob(pass.deps, job);

      expect(pass.raced()).toBe(true);
      expect(summary).toMatchObject({ deleted: 0, skipped: 1, failed: 0 });
      expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe(
        'version one, which the event copies',
      );
      expect(await deps.state.ledgerEntry(job.jobId, key)).toMatchObject({
        sequencer: storedSequencer(newer?.sequencer ?? ''),
      });
      const next = await syncJob(deps, job);
      expect(next).toMatchObject({ copied: 0, failed: 0, deleted: 0 });
      expect((await readObject(consumer, DESTINATION, destinationKey)).toString()).toBe(
        'version one, which the event copies',
      );
    },
  );

  it("keeps an event's deletion mark over a pass's failure record planned before it", async () => {
    const job = isolatedJob(sandbox, 'delrace-mark', { options: { mirror: true } });
    forgetJobWhenDone(deps, job.jobId);
    const key = `${job.source.prefix}k.txt`;
    const copiedAt = '2026-12-03T09:00:00.000Z';
    const planned = {
      key,
      etag: '"e0"',
      size: 2,
      destinationKey: key,
      destinationEtag: '"e0"',
      copiedAt,
      sequencer: storedSequencer(nextSequencer()),
    };
    await deps.state.putLedgerEntry(job.jobId, planned, 1);
    // The event's deletion, recorded while the pass copied what it planned from `planned`.
    const mark = { key, sequencer: storedSequencer(nextSequencer()) };
    expect(await deps.state.putLedgerEntryInOrder(job.jobId, mark, 1)).toBe('recorded');

    const failure = { reason: 'refused', attempts: 1, at: new Date().toISOString(), etag: '"e1"' };
    const kept = await deps.state.putUncopiedEntry(job.jobId, { ...planned, failure }, 1, copiedAt);

    expect(kept).toMatchObject(mark);
    const stored = await deps.state.ledgerEntry(job.jobId, key);
    expect(stored).toMatchObject(mark);
    expect(stored?.failure).toBeUndefined();
  });
});
