/**
 * A scheduled pass and an event for the same key, racing over real HTTP (moto S3 + DynamoDB Local): the
 * event copies and records a newer version while the pass is copying the version its plan read. The
 * event's newer copy and record must stand, whichever of the pass's writes comes after it
 * (docs/event-driven.md, issue 12).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { sourceCredentials } from '../../functions/core/access/source-credentials.js';
import { applyChange, type ChangeDependencies } from '../../functions/core/events/apply-change.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { StateStore } from '../../functions/core/state/state-store.js';
import { sandboxDynamo, sandboxS3 } from '../../sandbox/clients.js';
import { forgetJobWhenDone, objectCreated } from './event-helpers.js';
import { isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;

/** Writes `body` to the source and returns the Object Created event S3 would send for it. */
async function put(key: string, body: string): Promise<ObjectChange> {
  await putObject(producer, SOURCE, key, body);
  return objectCreated(SOURCE, key);
}

/** The event worker's dependencies for `job`, with clients of its own (no hook of the pass's). */
function eventDependencies(job: Job): ChangeDependencies {
  return {
    sourceS3: deps.sourceS3(sourceCredentials(deps.sts, job, 'race-test')) as S3Client,
    destinationS3: sandboxS3(sandbox, sandbox.accountB.syncer),
    state: deps.state,
  };
}

type Gate = 'before the destination write' | 'before the ledger write';

/**
 * The pass's clients, with `race` run once, at `gate`, for `destinationKey` (source key `key`): just before
 * the pass's PutObject of it, or just before its PutItem of the key's ledger item.
 */
function passDependencies(key: string, destinationKey: string, gate: Gate, race: () => Promise<void>) {
  let raced = false;
  const once = async () => {
    if (raced) return;
    raced = true;
    await race();
  };
  const destinationS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
  destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string };
      if (gate === 'before the destination write' && context.commandName === 'PutObjectCommand') {
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
    raced: () => raced,
  };
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
      const events = eventDependencies(job);
      // The ledger holds v0 at sequencer s1, from an event; v1's event is late, so the pass plans v1.
      const first = await put(key, 'version zero');
      expect(await applyChange(events, job, first)).toMatchObject({ outcome: 'copied' });
      await put(key, 'version one, which the pass copies');
      let newer: ObjectChange | undefined;
      const pass = passDependencies(key, destinationKey, gate, async () => {
        newer = await put(key, 'version two, which the event copies');
        expect(await applyChange(events, job, newer)).toMatchObject({ outcome: 'copied' });
      });

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
