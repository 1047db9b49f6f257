/**
 * Property: whatever a producer does (puts, overwrites, deletes) and however its events arrive (duplicated,
 * delayed, reordered, dropped), with reconciling passes at random points in between, a final pass leaves
 * the destination equal to the source, and no copy ever went back to an older version of a key.
 *
 * Over the sandbox (moto S3 with auth enforced, the source read with the assumed role; DynamoDB Local):
 * events are synthetic with real increasing sequencers (moto gives every real event the same one,
 * docs/event-driven.md); the objects are real. Passes run inline (syncJob), as the scheduled function runs
 * them. EVENT_PROPERTY_RUNS and EVENT_PROPERTY_SEED override the number of histories and the seed
 * (npm run test:sweep).
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sourceCredentials } from '../../functions/core/access/source-credentials.js';
import { applyChange, type ChangeDependencies } from '../../functions/core/events/apply-change.js';
import { type ObjectChange, parseObjectChange } from '../../functions/core/events/object-change.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { nextSequencer } from './event-helpers.js';
import { isolatedJob, listKeys, putObject, readObject, useSandbox } from './helpers.js';

const RUNS = Number(process.env.EVENT_PROPERTY_RUNS ?? 6);
const SEED =
  process.env.EVENT_PROPERTY_SEED === undefined ? undefined : Number(process.env.EVENT_PROPERTY_SEED);

const { sandbox, deps, producer, consumer } = useSandbox();
const SOURCE = sandbox.accountA.bucket;
const DESTINATION = sandbox.accountB.destinationBucket;
// Keys that need escaping and sort differently by UTF-8 bytes than by UTF-16 code units.
const NAMES = ['a', 'dir/b c', 'x+y%z', 'a😀', 'a！'];

function event(key: string, change: 'created' | 'deleted'): ObjectChange {
  return parseObjectChange({
    id: randomUUID(),
    source: 'aws.s3',
    'detail-type': change === 'created' ? 'Object Created' : 'Object Deleted',
    time: new Date().toISOString(),
    detail: { bucket: { name: SOURCE }, object: { key, sequencer: nextSequencer() } },
  });
}

type Operation =
  | {
      kind: 'put' | 'delete';
      name: string;
      // 0 deliveries: dropped; 2: duplicated. Each is delayed by `delay` steps, ties broken by `rank`.
      deliveries: { delay: number; rank: number }[];
    }
  | { kind: 'pass' };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom('put' as const, 'put' as const, 'delete' as const),
      name: fc.constantFrom(...NAMES),
      deliveries: fc.array(fc.record({ delay: fc.nat(4), rank: fc.nat(100) }), { maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'pass' as const }) },
);

/** One history: the job, and the version of each body it wrote (a body names the step that put it). */
class History {
  readonly job: Job = isolatedJob(sandbox, 'ev-pass-prop', { options: { mirror: true, events: true } });
  readonly change: ChangeDependencies;
  readonly #pending: { at: number; rank: number; change: ObjectChange }[] = [];
  /** The newest version (step number) each key's destination copy has held so far. */
  readonly #newestCopied = new Map<string, number>();

  constructor() {
    const sourceS3: S3Client = deps.sourceS3(sourceCredentials(deps.sts, this.job, 'event-properties'));
    this.change = { sourceS3, destinationS3: deps.destinationS3, state: deps.state };
  }

  key(name: string): string {
    return this.job.source.prefix + name;
  }

  async apply(step: number, op: Operation): Promise<void> {
    if (op.kind === 'pass') {
      await syncJob(deps, this.job);
      await this.expectNoCopyWentBack();
      return;
    }
    const key = this.key(op.name);
    if (op.kind === 'put') await putObject(producer, SOURCE, key, `version ${step} of ${op.name}`);
    else await producer.send(new DeleteObjectCommand({ Bucket: SOURCE, Key: key }));
    const happened = event(key, op.kind === 'put' ? 'created' : 'deleted');
    for (const { delay, rank } of op.deliveries)
      this.#pending.push({ at: step + delay, rank, change: happened });
  }

  async deliverUntil(step: number): Promise<void> {
    this.#pending.sort((a, b) => a.at - b.at || a.rank - b.rank);
    while (this.#pending[0] && this.#pending[0].at <= step) {
      const next = this.#pending.shift() as { change: ObjectChange };
      await applyChange(this.change, this.job, next.change);
      await this.expectNoCopyWentBack(next.change.key);
    }
  }

  /** Reads the destination copies (of `key`, or all keys) and checks none holds an older version than before. */
  async expectNoCopyWentBack(key?: string): Promise<void> {
    for (const name of key === undefined ? NAMES : [key.slice(this.job.source.prefix.length)]) {
      const copy = this.job.destination.prefix + name;
      const body = await readObject(consumer, DESTINATION, copy).catch((error) => {
        if (error instanceof NoSuchKey) return undefined;
        throw error;
      });
      if (body === undefined) continue;
      const version = Number(/^version (\d+) of /.exec(body.toString())?.[1]);
      const newest = this.#newestCopied.get(name) ?? -1;
      expect(version, `${name}: a stale copy replaced version ${newest}`).toBeGreaterThanOrEqual(newest);
      this.#newestCopied.set(name, version);
    }
  }

  async expectDestinationEqualsSource(): Promise<void> {
    const { prefix } = this.job.source;
    const sourceKeys = (await listKeys(producer, SOURCE, prefix)).map((k) => k.slice(prefix.length)).sort();
    const destinationKeys = (await listKeys(consumer, DESTINATION, this.job.destination.prefix))
      .map((k) => k.slice(this.job.destination.prefix.length))
      .sort();
    expect(destinationKeys).toEqual(sourceKeys);
    for (const name of sourceKeys) {
      expect(
        (await readObject(consumer, DESTINATION, this.job.destination.prefix + name)).toString(),
        name,
      ).toBe((await readObject(producer, SOURCE, prefix + name)).toString());
    }
  }
}

describe('events and reconciling passes (moto S3 + DynamoDB Local)', () => {
  it('ends with the destination equal to the source, no copy ever going back a version', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 10 }), async (operations) => {
        const history = new History();
        for (const [step, op] of operations.entries()) {
          await history.apply(step, op);
          await history.deliverUntil(step);
        }
        await history.deliverUntil(Number.POSITIVE_INFINITY);
        // The reconciling pass catches whatever the dropped events missed.
        await syncJob(deps, history.job);

        await history.expectNoCopyWentBack();
        await history.expectDestinationEqualsSource();
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
  });
});
