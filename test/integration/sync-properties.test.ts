/**
 * Property: whatever the producer does and however runs are cut off, one final complete run leaves the
 * destination equal to the source, no source version was uploaded twice, and the ledger agrees.
 *
 * S3 is the in-process FakeS3 (S3's ordering, ETag and LastModified rules: one-second resolution, a
 * multipart object stamped when its upload began) so hundreds of histories run in seconds; DynamoDB is the sandbox's real DynamoDB Local, so the ledger, lease and
 * checkpoint code runs unchanged. sync-kill.test.ts runs histories against the full sandbox with SIGKILL.
 *
 * PROPERTY_RUNS and PROPERTY_SEED override the number of histories and the seed (npm run test:sweep).
 */
import { createHash } from 'node:crypto';
import { S3ServiceException } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { describe, expect, inject, it } from 'vitest';
import { JobAlreadyRunningError } from '../../functions/core/errors.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import { type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import { fakeS3Dependencies } from '../support/fake-dependencies.js';
import { FakeS3 } from '../support/fake-s3.js';

const sandbox = inject('sandbox');
const RUNS = Number(process.env.PROPERTY_RUNS ?? 180);
const SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);

const SOURCE = 'source-bucket';
const DESTINATION = 'destination-bucket';
// Keys that collide, need escaping, and sort differently by UTF-8 bytes than by UTF-16 code units.
const KEYS = ['a', 'b', 'a b', 'dir/ü', 'a😀', 'a！', '+%2B', 'z/long-name'];

type Step =
  | { op: 'put'; key: string; size: number }
  | { op: 'rewriteSameSize'; key: string }
  | { op: 'rewriteSameSecond'; key: string }
  | { op: 'foreignAtDestination'; key: string }
  | { op: 'multipartAcrossRun'; key: string; parts: number; cutAfter: number | null }
  | { op: 'delete'; key: string }
  | {
      op: 'run';
      cutAfter: number | null;
      failKey: string | null;
      rewriteMidRun: string | null;
      failListAtPage: number | null;
    }
  | { op: 'overlappingRuns' };

const key = fc.constantFrom(...KEYS);
const cut = fc.option(fc.integer({ min: 0, max: 6 }), { nil: null });
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      key,
      size: fc.oneof(fc.constant(0), fc.integer({ min: 8, max: 64 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('rewriteSameSize' as const), key }) },
  // Same size and the same LastModified second: only the ETag tells the versions apart.
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rewriteSameSecond' as const), key }) },
  // Someone in AccountB puts an object of the source's size where the job has not written yet.
  { weight: 1, arbitrary: fc.record({ op: fc.constant('foreignAtDestination' as const), key }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('multipartAcrossRun' as const),
      key,
      parts: fc.integer({ min: 1, max: 3 }),
      cutAfter: cut,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('run' as const),
      cutAfter: cut,
      failKey: fc.option(key, { nil: null, freq: 4 }),
      rewriteMidRun: fc.option(key, { nil: null, freq: 4 }),
      failListAtPage: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null, freq: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'overlappingRuns' as const }) },
);
const history = fc.record({
  mirror: fc.boolean(),
  concurrency: fc.integer({ min: 1, max: 4 }),
  steps: fc.array(step, { maxLength: 12 }),
});

const EMPTY_SHA256 = createHash('sha256').update(Buffer.alloc(0)).digest('hex');
/** Retries within a run are real but need not wait. */
const FAST_RETRY = { baseBackoffMs: 1 };
let historyCount = 0;
let versionCount = 0;

/** A source version as a listing sees it, plus the metadata it cannot see. */
interface PutVersion {
  body: Buffer;
  lastModified: number;
  metadata?: Record<string, string>;
}

/** Each history's source puts by key, to tell which a listing cannot tell apart (see the `put` step). */
const putsThisSecond = new WeakMap<FakeS3, Map<string, PutVersion[]>>();

function rememberPut(
  fake: FakeS3,
  key: string,
  object: { body: Buffer; lastModified: Date; metadata?: Record<string, string> },
): void {
  const byKey = putsThisSecond.get(fake) ?? new Map<string, PutVersion[]>();
  putsThisSecond.set(fake, byKey);
  const versions = (byKey.get(key) ?? []).filter((v) => v.lastModified === object.lastModified.getTime());
  versions.push({
    body: object.body,
    lastModified: object.lastModified.getTime(),
    metadata: object.metadata,
  });
  byKey.set(key, versions);
}

/** Distinct bytes for every version, so "uploaded at most once" can be checked by content hash. */
function content(name: string, size: number): Buffer {
  if (size === 0) return Buffer.alloc(0);
  versionCount += 1;
  // The counter leads, so a version cut to a small size is still unlike every other.
  const stamp = `${versionCount}#${name}|`;
  return Buffer.from(stamp.padEnd(Math.max(size, stamp.length), '.'));
}

describe('sync properties (FakeS3 + DynamoDB Local)', () => {
  it(`keeps the destination equal to the source over ${RUNS} random histories`, async () => {
    const fake = new FakeS3();
    fake.createBucket(SOURCE);
    fake.createBucket(DESTINATION);
    const deps = fakeS3Dependencies(sandbox);

    await fc.assert(
      fc.asyncProperty(history, async ({ mirror, concurrency, steps }) => {
        historyCount += 1;
        const prefix = `h${historyCount}/`;
        const job = parseJob({
          jobId: `property-${historyCount}-${Date.now()}`,
          source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: SOURCE, prefix },
          destination: { bucket: DESTINATION, prefix: `copy/${prefix}` },
          options: { mirror, concurrency, maxDeletesPerRun: 1000 },
        });
        const writesBefore = fake.writes.length;
        const foreign: Foreign = new Map();
        for (const each of steps) await apply(fake, deps, job, each, foreign);
        fake.beforeGet = undefined;
        fake.beforeList = undefined;
        const final = await syncJob(deps, job, { objectRetry: FAST_RETRY });
        // Only a foreign object the job may not replace (it does not mirror) fails the final run.
        const blocked = [...foreign.keys()]
          .map((destinationKey) => job.source.prefix + destinationKey.slice(job.destination.prefix.length))
          .filter((sourceKey) => !job.options.mirror && fake.objects(SOURCE).has(sourceKey));
        expect(final).toMatchObject({ status: 'complete', failed: blocked.length });
        expect(final.failures.map((failure) => failure.key).sort()).toEqual(blocked.sort());
        await assertInvariants(fake, deps, job, writesBefore, foreign);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  }, 600_000);
});

/** Foreign objects a history put at the destination: destination key → their bytes. */
type Foreign = Map<string, Buffer>;

async function apply(
  fake: FakeS3,
  deps: SyncDependencies,
  job: Job,
  each: Step,
  foreign: Foreign,
): Promise<void> {
  const sourceKey = (name: string) => `${job.source.prefix}${name}`;
  const objects = fake.objects(SOURCE);
  switch (each.op) {
    case 'put': {
      const body = content(each.key, each.size);
      // The same bytes with new metadata in the same second look identical in a listing (same ETag, size
      // and LastModified) to an earlier version of that second, which a sync may have copied: no sync
      // that lists can see the change, so such a put keeps that version's metadata (out of scope, the
      // README says so). Earlier versions count too, not only the current one (A, B, A in one second).
      const now = fake.now().getTime();
      const versions = putsThisSecond.get(fake)?.get(sourceKey(each.key)) ?? [];
      const twin = versions.find((v) => v.lastModified === now && v.body.equals(body));
      const put = fake.put(SOURCE, sourceKey(each.key), body, {
        contentType: each.size % 2 ? 'text/plain' : 'application/octet-stream',
        metadata: twin ? twin.metadata : { version: String(versionCount) },
      });
      rememberPut(fake, sourceKey(each.key), put);
      return;
    }
    case 'rewriteSameSize': {
      const existing = objects.get(sourceKey(each.key));
      if (!existing || existing.body.length < 8) return;
      fake.put(
        SOURCE,
        sourceKey(each.key),
        content(each.key, existing.body.length).subarray(0, existing.body.length),
        {
          contentType: existing.contentType,
          metadata: existing.metadata,
        },
      );
      return;
    }
    case 'rewriteSameSecond': {
      const existing = objects.get(sourceKey(each.key));
      if (!existing || existing.body.length < 8) return;
      fake.put(
        SOURCE,
        sourceKey(each.key),
        content(each.key, existing.body.length).subarray(0, existing.body.length),
        {
          contentType: existing.contentType,
          metadata: existing.metadata,
          lastModified: existing.lastModified,
        },
      );
      return;
    }
    case 'foreignAtDestination': {
      // The chosen key, or the next one the job has not written yet.
      const free = (name: string) => !fake.objects(DESTINATION).has(`${job.destination.prefix}${name}`);
      const name = free(each.key) ? each.key : KEYS.find(free);
      if (name === undefined) return;
      let existing = objects.get(sourceKey(name));
      if (!existing || existing.body.length < 8) {
        existing = fake.put(SOURCE, sourceKey(name), content(name, 16), { metadata: { version: 'f' } });
      }
      // Written an hour ago, before any upload intent of this job: the job must see it as someone else's,
      // on this run (nothing on record) and on the next (its own failed attempt on record, same size).
      const size = existing.body.length;
      const body = content(`foreign-${name}`, size).subarray(0, size);
      const destinationKey = `${job.destination.prefix}${name}`;
      fake.put(DESTINATION, destinationKey, body, {
        lastModified: new Date(fake.now().getTime() - 3_600_000),
      });
      foreign.set(destinationKey, body);
      await runOnce(fake, deps, job, {
        op: 'run',
        cutAfter: null,
        failKey: null,
        rewriteMidRun: null,
        failListAtPage: null,
      });
      return;
    }
    case 'multipartAcrossRun': {
      // Initiated a second before a run, completed after it: its LastModified predates that run.
      const id = fake.initiateUpload(SOURCE, sourceKey(each.key), {
        contentType: 'application/x-parquet',
        initiated: new Date(fake.now().getTime() - 1000),
      });
      await runOnce(fake, deps, job, {
        op: 'run',
        cutAfter: each.cutAfter,
        failKey: null,
        rewriteMidRun: null,
        failListAtPage: null,
      });
      const parts = Array.from({ length: each.parts }, (_, i) => content(`${each.key}.part${i}`, 16));
      const object = fake.completeUpload(id, parts);
      expect(object.lastModified.getTime()).toBeLessThan(fake.now().getTime());
      return;
    }
    case 'delete':
      objects.delete(sourceKey(each.key));
      return;
    case 'run':
      await runOnce(fake, deps, job, each);
      return;
    case 'overlappingRuns': {
      const results = await Promise.allSettled([
        syncJob(deps, job, { objectRetry: FAST_RETRY }),
        syncJob(deps, job, { objectRetry: FAST_RETRY }),
      ]);
      for (const result of results) {
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(JobAlreadyRunningError);
      }
      return;
    }
  }
}

/** One run that may be cut by the deadline, fail on one key, see a rewrite mid-run, or die listing. */
async function runOnce(fake: FakeS3, deps: SyncDependencies, job: Job, run: Extract<Step, { op: 'run' }>) {
  let checks = 0;
  let rewritten = false;
  fake.beforeGet = (bucket, key) => {
    if (bucket !== SOURCE) return;
    if (run.failKey !== null && key === `${job.source.prefix}${run.failKey}`) {
      throw new S3ServiceException({
        name: 'InternalError',
        $fault: 'server',
        $metadata: { httpStatusCode: 500 },
      });
    }
    const target = run.rewriteMidRun === null ? undefined : `${job.source.prefix}${run.rewriteMidRun}`;
    const existing = target === undefined ? undefined : fake.objects(SOURCE).get(target);
    if (!rewritten && target && existing) {
      rewritten = true;
      fake.put(SOURCE, target, content(run.rewriteMidRun ?? '', existing.body.length + 8), {
        contentType: existing.contentType,
      });
    }
  };
  fake.beforeList = (page) => {
    if (run.failListAtPage !== null && page === run.failListAtPage) {
      fake.beforeList = undefined;
      throw new S3ServiceException({
        name: 'ServiceUnavailable',
        $fault: 'server',
        $metadata: { httpStatusCode: 503 },
      });
    }
  };
  try {
    await syncJob(deps, job, {
      objectRetry: FAST_RETRY,
      remainingTimeMs: () => (run.cutAfter !== null && ++checks > run.cutAfter ? 1_000 : 600_000),
    });
  } catch (error) {
    // A run that dies part-way (here: listing fails) must leave state the next run can finish from.
    expect(String(error)).toMatch(/ServiceUnavailable|InternalError/);
  } finally {
    fake.beforeGet = undefined;
    fake.beforeList = undefined;
  }
}

async function assertInvariants(
  fake: FakeS3,
  deps: SyncDependencies,
  job: Job,
  writesBefore: number,
  foreign: Foreign,
) {
  const destination = new Map(
    [...fake.objects(DESTINATION)].filter(([key]) => key.startsWith(job.destination.prefix)),
  );
  const destinationKey = (key: string) => job.destination.prefix + key.slice(job.source.prefix.length);
  const holdsForeign = (key: string) => {
    const bytes = foreign.get(key);
    return bytes !== undefined && destination.get(key)?.body.equals(bytes) === true;
  };

  // 0. A foreign object is never overwritten nor deleted unless the job mirrors.
  if (!job.options.mirror) {
    for (const key of foreign.keys()) expect(holdsForeign(key), `${key} foreign object kept`).toBe(true);
  }
  // The other checks cover the keys the job may write.
  const source = [...fake.objects(SOURCE)].filter(
    ([key]) => key.startsWith(job.source.prefix) && (job.options.mirror || !foreign.has(destinationKey(key))),
  );

  // 1. The destination equals the source for every key, content and metadata.
  for (const [key, object] of source) {
    const copy = destination.get(destinationKey(key));
    expect(copy?.body.equals(object.body), `${key} content`).toBe(true);
    expect(copy?.contentType, `${key} content type`).toBe(object.contentType);
    expect(copy?.metadata, `${key} metadata`).toEqual(object.metadata);
  }
  if (job.options.mirror) {
    // A foreign object whose key left the source before any run reached it is not the job's to delete.
    const leftovers = [...destination.keys()].filter(holdsForeign).length;
    expect(destination.size).toBe(source.length + leftovers);
  }

  // 2. Each source version was uploaded at most once.
  // Versions have distinct bytes, except that every empty version hashes alike, so those are left out.
  const uploads = new Map<string, number>();
  for (const write of fake.writes.slice(writesBefore)) {
    if (!write.key.startsWith(job.destination.prefix) || write.sha256 === EMPTY_SHA256) continue;
    const id = `${write.key} ${write.sha256}`;
    uploads.set(id, (uploads.get(id) ?? 0) + 1);
  }
  const repeated = [...uploads].filter(([, count]) => count > 1);
  expect(repeated, 'versions uploaded more than once').toEqual([]);

  // 3. The ledger agrees with the source and with what is at the destination.
  const ledger = new Map<string, { etag?: string; size?: number; destinationEtag?: string }>();
  for await (const entry of deps.state.ledger(job.jobId)) ledger.set(entry.key, entry);
  for (const [key, object] of source) {
    const entry = ledger.get(key);
    expect(entry?.etag, `${key} ledger etag`).toBe(object.etag);
    expect(entry?.size).toBe(object.body.length);
    expect(`"${entry?.destinationEtag}"`).toBe(destination.get(destinationKey(key))?.etag);
  }
  if (job.options.mirror) expect(ledger.size).toBe(source.length);

  // 4. Nothing half-written: no multipart upload left open in the destination, no lease left held.
  expect([...fake.uploads.values()].filter((upload) => upload.bucket === DESTINATION)).toEqual([]);
  const lease = await deps.state.readLease(job.jobId);
  expect(lease?.expiresAt ?? 0).toBeLessThanOrEqual(Date.now());
  const checkpoint = await deps.state.readCheckpoint(job.jobId);
  expect(checkpoint.resumeAfter).toBeUndefined();
}
