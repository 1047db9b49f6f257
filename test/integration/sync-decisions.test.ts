/**
 * What one run decides about one key, in the cases where only a precise rule gives the right answer:
 * an ETag-only change, a same-size object at the destination that the job did not write, a failure after
 * an earlier copy, a deadline in the middle of a batch, deletions (the mirror cap, where the copy was
 * written, what a run that died left for a key gone since); and how the pass itself steps and sums up
 * (where it stops, what stops it, its slots, the figures of its summary). S3 is the in-process FakeS3
 * (S3's clock, with one-second LastModified); DynamoDB is the sandbox's DynamoDB Local.
 */
import { S3ServiceException } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { LeaseLostError } from '../../functions/core/errors.js';
import type { Job } from '../../functions/core/job.js';
import { compareKeys } from '../../functions/core/plan/keys.js';
import { LARGE_OBJECT_CONCURRENCY, SMALL_OBJECT_BYTES, syncJob } from '../../functions/core/run/sync-job.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';
import { captureLogger } from '../support/capture-logger.js';
import { fakeS3Dependencies, fakeS3Jobs } from '../support/fake-dependencies.js';
import { FakeS3 } from '../support/fake-s3.js';

const sandbox = inject('sandbox');
const fake = new FakeS3();
const deps = fakeS3Dependencies(sandbox);
const { SOURCE, DESTINATION, newJob, at } = fakeS3Jobs('decisions');
const ONE_TRY = { attempts: 1, baseBackoffMs: 1 };
fake.createBucket(SOURCE);
fake.createBucket(DESTINATION);
const copyOf = (job: Job, name: string) => fake.objects(DESTINATION).get(`${job.destination.prefix}${name}`);

async function ledgerEntry(job: Job, name: string): Promise<LedgerEntry | undefined> {
  for await (const entry of deps.state.ledger(job.jobId)) if (entry.key === at(job, name)) return entry;
  return undefined;
}

const serverError = () =>
  new S3ServiceException({ name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 } });

/**
 * Six new keys in one batch, copied one at a time; the deadline (the returned controller) comes while
 * the second is read.
 */
function sixKeysCutAtTheSecond() {
  const job = newJob({ concurrency: 1 });
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  for (const name of names) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
  const deadline = new AbortController();
  fake.beforeGet = (_bucket, key) => {
    if (key === at(job, 'b')) deadline.abort();
  };
  return { job, names, deadline };
}

/** Polls `condition` until it holds or `timeoutMs` passes; says which. */
async function until(condition: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/**
 * `count` objects of `size` bytes under "big-", and one small "a-first" that the preflight reads; each
 * GET of a "big-" object is held open until `open()`. `held()` is how many such reads are open at once.
 */
function heldReads(job: Job, count: number, size: number) {
  fake.put(SOURCE, at(job, 'a-first'), Buffer.from('first'));
  for (let i = 0; i < count; i += 1) fake.put(SOURCE, at(job, `big-${i}`), Buffer.alloc(size, i));
  const waiting: (() => void)[] = [];
  fake.beforeGet = (_bucket, key) => {
    if (!key.startsWith(at(job, 'big-'))) return;
    return new Promise<void>((resolve) => waiting.push(resolve));
  };
  return {
    held: () => waiting.length,
    open: () => {
      fake.beforeGet = undefined;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

describe('syncJob decisions (FakeS3 + DynamoDB Local)', () => {
  beforeEach(() => {
    fake.beforeGet = undefined;
    fake.afterPut = undefined;
    fake.beforeList = undefined;
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('copies a rewrite that changes only the ETag: same size, same LastModified second', async () => {
    const job = newJob();
    const first = fake.put(SOURCE, at(job, 'data.csv'), Buffer.from('version-1'));
    await syncJob(deps, job);
    // Rewritten within the same second: S3 shows the same size and LastModified, only the ETag moves.
    const second = fake.put(SOURCE, at(job, 'data.csv'), Buffer.from('version-2'), {
      lastModified: first.lastModified,
    });

    const rerun = await syncJob(deps, job);

    expect(second.etag).not.toBe(first.etag);
    expect(rerun).toMatchObject({ copied: 1, failed: 0 });
    expect(copyOf(job, 'data.csv')?.body.toString()).toBe('version-2');
    expect(await ledgerEntry(job, 'data.csv')).toMatchObject({ etag: second.etag });
  });

  it('leaves a same-size object that was at the destination before an interrupted run announced the key', async () => {
    // A run died after announcing the key (its upload intent) and before writing it; the object at the
    // destination is the size it would have written, but older than the intent: someone else's.
    const job = newJob();
    fake.put(SOURCE, at(job, 'report.csv'), Buffer.from('from AccountA'));
    const hourAgo = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    fake.put(DESTINATION, `${job.destination.prefix}report.csv`, Buffer.from('from a person'), {
      lastModified: hourAgo,
    });
    await deps.state.putUploadIntent(job.jobId, 'run-that-died', 1, {
      since: new Date().toISOString(),
      objects: [{ key: at(job, 'report.csv'), size: 'from AccountA'.length }],
    });

    const summary = await syncJob(deps, job, { objectRetry: ONE_TRY });

    expect(summary).toMatchObject({ copied: 0, failed: 1 });
    expect(copyOf(job, 'report.csv')?.body.toString()).toBe('from a person');
  });

  it('replaces a same-size object written after an interrupted run announced the key (its own write)', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'report.csv'), Buffer.from('from AccountA'));
    await deps.state.putUploadIntent(job.jobId, 'run-that-died', 1, {
      since: new Date(Date.now() - 60_000).toISOString(),
      objects: [{ key: at(job, 'report.csv'), size: 'from AccountA'.length }],
    });
    // What the dying run uploaded before it could record it (an older version, the same size).
    fake.put(DESTINATION, `${job.destination.prefix}report.csv`, Buffer.from('from AccountB'));

    const summary = await syncJob(deps, job, { objectRetry: ONE_TRY });

    expect(summary.failures).toEqual([]);
    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    expect(copyOf(job, 'report.csv')?.body.toString()).toBe('from AccountA');
  });

  it('replaces the write of the first of two interrupted runs that both announced the key', async () => {
    // The first run uploaded a shorter, older version and died; the second announced the source's
    // current version and died before uploading it. The object at the destination is the first run's.
    const job = newJob();
    fake.put(SOURCE, at(job, 'report.csv'), Buffer.from('from AccountA, longer'));
    await deps.state.putUploadIntent(job.jobId, 'run-1-that-died', 1, {
      since: new Date(Date.now() - 120_000).toISOString(),
      objects: [{ key: at(job, 'report.csv'), size: 'from AccountB'.length }],
    });
    fake.put(DESTINATION, `${job.destination.prefix}report.csv`, Buffer.from('from AccountB'), {
      lastModified: new Date(Math.floor(Date.now() / 1000) * 1000 - 90_000),
    });
    await deps.state.putUploadIntent(job.jobId, 'run-2-that-died', 1, {
      since: new Date(Date.now() - 60_000).toISOString(),
      objects: [{ key: at(job, 'report.csv'), size: 'from AccountA, longer'.length }],
    });

    const summary = await syncJob(deps, job, { objectRetry: ONE_TRY });

    expect(summary.failures).toEqual([]);
    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    expect(copyOf(job, 'report.csv')?.body.toString()).toBe('from AccountA, longer');
  });

  it('keeps the earlier copy on record when a later version fails, and overwrites only that copy next run', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a.bin'), Buffer.from('version one'));
    await syncJob(deps, job);
    const copied = await ledgerEntry(job, 'a.bin');
    fake.put(SOURCE, at(job, 'a.bin'), Buffer.from('version two, longer'));
    fake.beforeGet = () => {
      throw serverError();
    };

    const failed = await syncJob(deps, job, { objectRetry: ONE_TRY });
    const afterFailure = await ledgerEntry(job, 'a.bin');
    fake.beforeGet = undefined;
    const retried = await syncJob(deps, job, { objectRetry: ONE_TRY });

    expect(failed).toMatchObject({ copied: 0, failed: 1 });
    expect(afterFailure).toMatchObject({
      etag: copied?.etag,
      size: copied?.size,
      lastModified: copied?.lastModified,
      destinationEtag: copied?.destinationEtag,
      sha256: copied?.sha256,
      failure: expect.objectContaining({ attempts: 1 }),
    });
    expect(retried).toMatchObject({ copied: 1, failed: 0 });
    expect(copyOf(job, 'a.bin')?.body.toString()).toBe('version two, longer');
  });

  it('resumes after the last settled key when the deadline stops a batch part-way', async () => {
    const { job, names, deadline } = sixKeysCutAtTheSecond();
    const copied: string[] = [];

    const cut = await syncJob(deps, job, {
      signal: deadline.signal,
      objectRetry: ONE_TRY,
      onObjectCopied: (object) => copied.push(object.key),
    });
    const checkpoint = await deps.state.readCheckpoint(job.jobId);
    fake.beforeGet = undefined;
    const resumedCopies: string[] = [];
    const resumed = await syncJob(deps, job, { onObjectCopied: (object) => resumedCopies.push(object.key) });

    const settled = [...copied, ...cut.failures.map((failure) => failure.key)].sort(compareKeys);
    const lastSettled = settled.at(-1);
    expect(cut.status).toBe('partial');
    expect(settled.length).toBeLessThan(names.length);
    expect(settled).toEqual(names.slice(0, settled.length).map((name) => at(job, name)));
    expect(cut.resumeAfter).toBe(lastSettled);
    expect(checkpoint.resumeAfter).toBe(lastSettled);
    expect(resumed.status).toBe('complete');
    // In key order: a copy hands its slot on once stored, so the next may be recorded before it.
    expect(resumedCopies.toSorted(compareKeys)[0]).toBe(at(job, names[settled.length] ?? ''));
    expect([...copied, ...resumedCopies].sort(compareKeys)).toEqual(names.map((name) => at(job, name)));
  });
  it('counts the lag from when the sync first saw a key left uncopied, not from its LastModified', async () => {
    // Prepare: a backfill of year-old objects, one of which keeps failing for two runs.
    const job = newJob();
    const yearAgo = new Date(Math.floor(Date.now() / 1000) * 1000 - 365 * 86_400_000);
    for (const name of ['a', 'b', 'c']) {
      fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`), { lastModified: yearAgo });
    }
    fake.beforeGet = (_bucket, key) => {
      if (key === at(job, 'b')) throw serverError();
    };

    // Act
    const first = await syncJob(deps, job, { objectRetry: ONE_TRY });
    const recorded = await ledgerEntry(job, 'b');
    const second = await syncJob(deps, job, { objectRetry: ONE_TRY });
    const kept = await ledgerEntry(job, 'b');
    fake.beforeGet = undefined;
    const caughtUp = await syncJob(deps, job);

    // Assess: the first run saw b at its start; the second keeps that sighting and its lag grows from it.
    expect(first).toMatchObject({ copied: 2, failed: 1, backlogObjects: 1, backlogBytes: 'body b'.length });
    const firstSeen = Date.parse(recorded?.firstSeenAt ?? '');
    expect(firstSeen).toBeGreaterThanOrEqual(Date.parse(first.startedAt));
    expect(firstSeen).toBeLessThanOrEqual(Date.parse(first.finishedAt));
    expect(first.replicationLagSeconds).toBeLessThanOrEqual(Math.ceil(first.durationMs / 1000) + 1);
    expect(kept?.firstSeenAt).toBe(recorded?.firstSeenAt);
    expect(second.replicationLagSeconds).toBeGreaterThanOrEqual(
      Math.floor((Date.parse(second.finishedAt) - firstSeen) / 1000),
    );
    expect(second.replicationLagSeconds).toBeLessThan(86_400);
    expect(caughtUp).toMatchObject({
      copied: 1,
      replicationLagSeconds: 0,
      backlogObjects: 0,
      backlogBytes: 0,
    });
    expect((await ledgerEntry(job, 'b'))?.firstSeenAt).toBeUndefined();
  });

  it('forgets when it first saw a key left uncopied once the key is gone from the source', async () => {
    // Prepare: a key that fails, then is deleted at the source (a job that does not mirror).
    const job = newJob();
    fake.put(SOURCE, at(job, 'gone.txt'), Buffer.from('soon gone'));
    fake.beforeGet = () => {
      throw serverError();
    };
    await syncJob(deps, job, { objectRetry: ONE_TRY });
    const recorded = await ledgerEntry(job, 'gone.txt');
    fake.beforeGet = undefined;
    fake.objects(SOURCE).delete(at(job, 'gone.txt'));

    // Act
    const after = await syncJob(deps, job);

    // Assess: still on record (its failure), but no longer counted as behind since then.
    expect(recorded?.firstSeenAt).toBeDefined();
    expect(after).toMatchObject({ replicationLagSeconds: 0, backlogObjects: 0 });
    const kept = await ledgerEntry(job, 'gone.txt');
    expect(kept?.failure).toMatchObject({ attempts: 1 });
    expect(kept?.firstSeenAt).toBeUndefined();
  });

  it('remembers when it first saw the copies a deadline cut or left unstarted, and counts them as backlog', async () => {
    const { job, names, deadline } = sixKeysCutAtTheSecond();

    const cut = await syncJob(deps, job, { signal: deadline.signal, objectRetry: ONE_TRY });
    const entries = await Promise.all(names.map((name) => ledgerEntry(job, name)));
    fake.beforeGet = undefined;
    const resumed = await syncJob(deps, job);

    // Whether b's copy is cut or completes depends on where the abort lands; c to f never start.
    const uncopied = names.filter((_, i) => entries[i]?.etag === undefined);
    expect(uncopied.length).toBeGreaterThanOrEqual(4);
    expect(uncopied).toEqual(names.slice(names.length - uncopied.length));
    expect(cut).toMatchObject({
      status: 'partial',
      copied: names.length - uncopied.length,
      failed: 0,
      deferred: uncopied.length,
      backlogObjects: uncopied.length,
      backlogBytes: uncopied.length * 'body b'.length,
    });
    for (const name of uncopied) {
      const seen = Date.parse(entries[names.indexOf(name)]?.firstSeenAt ?? '');
      expect(seen, name).toBeGreaterThanOrEqual(Date.parse(cut.startedAt));
      expect(seen, name).toBeLessThanOrEqual(Date.parse(cut.finishedAt));
    }
    expect(resumed).toMatchObject({ copied: uncopied.length, backlogObjects: 0, replicationLagSeconds: 0 });
    for (const name of names) expect((await ledgerEntry(job, name))?.firstSeenAt, name).toBeUndefined();
  });

  it('deletes nothing still at the source when a mirror pass resumes part-way and wraps round', async () => {
    // Prepare: a mirror job copied six keys; its checkpoint then says a pass stopped after "c", so the
    // next run lists (c, end], then wraps round to [start, c]; the second range's ledger must stop at "c".
    const job = newJob({ mirror: true });
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await syncJob(deps, job);
    const lease = await deps.state.readLease(job.jobId);
    await deps.state.writeCheckpoint(job.jobId, { resumeAfter: at(job, 'c') }, lease?.fence ?? 0);

    // Act
    const logger = captureLogger();
    const resumed = await syncJob({ ...deps, logger }, job);

    // Assess
    expect(resumed).toMatchObject({ status: 'complete', deleted: 0, copied: 0, skipped: 6, failed: 0 });
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'resuming pass',
      fields: { jobId: job.jobId, resumeAfter: at(job, 'c') },
    });
    for (const name of names) expect(copyOf(job, name), name).toBeDefined();
  });

  it('deletes at most maxDeletesPerRun copies a mirror run, in key order, and the rest the next run', async () => {
    // Prepare: four keys copied; three then deleted at the source.
    const job = newJob({ mirror: true, maxDeletesPerRun: 2, concurrency: 1 });
    const names = ['a', 'b', 'c', 'd'];
    for (const name of names) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await syncJob(deps, job);
    for (const name of ['a', 'b', 'c']) fake.objects(SOURCE).delete(at(job, name));

    // Act
    const first = await syncJob(deps, job);
    const afterFirst = names.filter((name) => copyOf(job, name) !== undefined);
    const second = await syncJob(deps, job);

    // Assess
    expect(first).toMatchObject({ deleted: 2, failed: 0 });
    expect(afterFirst).toEqual(['c', 'd']);
    expect(second).toMatchObject({ deleted: 1, failed: 0 });
    expect(names.filter((name) => copyOf(job, name) !== undefined)).toEqual(['d']);
    expect(await ledgerEntry(job, 'c')).toBeUndefined();
    expect(await ledgerEntry(job, 'd')).toBeDefined();
  });

  it('keeps every copy and its record when a job that does not mirror sees keys deleted at the source', async () => {
    const job = newJob();
    for (const name of ['a', 'b']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await syncJob(deps, job);
    fake.objects(SOURCE).delete(at(job, 'a'));

    const rerun = await syncJob(deps, job);

    expect(rerun).toMatchObject({ deleted: 0, failed: 0 });
    expect(copyOf(job, 'a')?.body.toString()).toBe('body a');
    expect(await ledgerEntry(job, 'a')).toMatchObject({ destinationKey: `${job.destination.prefix}a` });
  });

  it('deletes the copy where the ledger says it was written, even after the destination prefix changed', async () => {
    const job = newJob({ mirror: true });
    fake.put(SOURCE, at(job, 'a'), Buffer.from('body a'));
    await syncJob(deps, job);
    const moved: Job = {
      ...job,
      destination: { ...job.destination, prefix: `moved/${job.destination.prefix}` },
    };
    fake.put(DESTINATION, `${moved.destination.prefix}a`, Buffer.from('not written by this job'));
    fake.objects(SOURCE).delete(at(job, 'a'));

    const rerun = await syncJob(deps, moved);

    expect(rerun).toMatchObject({ deleted: 1, failed: 0 });
    expect(copyOf(job, 'a')).toBeUndefined();
    expect(fake.objects(DESTINATION).get(`${moved.destination.prefix}a`)?.body.toString()).toBe(
      'not written by this job',
    );
  });

  it('removes what a run that died may have written for a key deleted before it was recorded, when mirroring', async () => {
    // Prepare: a run announced "gone" and wrote it, then died; the key then left the source.
    const job = newJob({ mirror: true });
    fake.put(SOURCE, at(job, 'kept'), Buffer.from('kept'));
    await deps.state.putUploadIntent(job.jobId, 'run-that-died', 1, {
      since: new Date(Date.now() - 60_000).toISOString(),
      objects: [{ key: at(job, 'gone'), size: 4 }],
    });
    fake.put(DESTINATION, `${job.destination.prefix}gone`, Buffer.from('gone'));

    // Act
    const summary = await syncJob(deps, job);

    // Assess
    expect(summary).toMatchObject({ copied: 1, deleted: 1, failed: 0 });
    expect(copyOf(job, 'gone')).toBeUndefined();
    expect(copyOf(job, 'kept')?.body.toString()).toBe('kept');
    expect(await ledgerEntry(job, 'gone')).toBeUndefined();
  });

  it('keeps on record what a run that died may have written for a key deleted before it was recorded, when not mirroring', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'kept'), Buffer.from('kept'));
    const since = new Date(Date.now() - 60_000).toISOString();
    await deps.state.putUploadIntent(job.jobId, 'run-that-died', 1, {
      since,
      objects: [{ key: at(job, 'gone'), size: 4 }],
    });
    fake.put(DESTINATION, `${job.destination.prefix}gone`, Buffer.from('gone'));

    const summary = await syncJob(deps, job);

    expect(summary).toMatchObject({ copied: 1, deleted: 0, failed: 0 });
    expect(copyOf(job, 'gone')?.body.toString()).toBe('gone');
    expect((await ledgerEntry(job, 'gone'))?.pending).toMatchObject({ since });
  });

  it('replaces next run what a failed attempt stored before its answer was lost (the size it announced)', async () => {
    // Prepare: the PUT is stored, then its answer is lost; the job does not mirror, so the object at the
    // destination is only replaced if the failure kept on record that this attempt may have written it.
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('version-1'));
    fake.afterPut = (_bucket, key) => {
      if (key === `${job.destination.prefix}a`) throw serverError();
    };
    const failed = await syncJob(deps, job, { objectRetry: ONE_TRY });
    fake.afterPut = undefined;
    fake.put(SOURCE, at(job, 'a'), Buffer.from('version-2'));

    // Act
    const rerun = await syncJob(deps, job, { objectRetry: ONE_TRY });

    // Assess
    expect(failed).toMatchObject({ copied: 0, failed: 1 });
    expect(rerun.failures).toEqual([]);
    expect(rerun).toMatchObject({ copied: 1, failed: 0 });
    expect(copyOf(job, 'a')?.body.toString()).toBe('version-2');
  });

  it('counts the attempts at one source version across runs, and starts again at one for a new version', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('version-1'));
    fake.beforeGet = () => {
      throw serverError();
    };
    await syncJob(deps, job, { objectRetry: ONE_TRY });
    const afterOne = (await ledgerEntry(job, 'a'))?.failure?.attempts;
    await syncJob(deps, job, { objectRetry: ONE_TRY });
    const afterTwo = (await ledgerEntry(job, 'a'))?.failure?.attempts;
    fake.put(SOURCE, at(job, 'a'), Buffer.from('version-2, longer'));
    await syncJob(deps, job, { objectRetry: ONE_TRY });

    expect([afterOne, afterTwo]).toEqual([1, 2]);
    expect((await ledgerEntry(job, 'a'))?.failure?.attempts).toBe(1);
  });

  it('refuses a destination key longer than S3 allows, naming the prefix to shorten, and writes nothing', async () => {
    const job = newJob();
    const long: Job = { ...job, destination: { ...job.destination, prefix: `${'p'.repeat(1020)}/` } };
    fake.put(SOURCE, at(job, 'a.csv'), Buffer.from('a'));

    const summary = await syncJob(deps, long, { objectRetry: ONE_TRY });

    expect(summary).toMatchObject({ copied: 0, failed: 1 });
    expect(summary.failures[0]?.reason).toContain(
      `destination key for "${at(job, 'a.csv')}" would exceed S3's 1024-byte limit: shorten job.destination.prefix`,
    );
    expect([...fake.objects(DESTINATION).keys()].filter((key) => key.startsWith('ppp'))).toEqual([]);
  });

  it('stops starting copies once the dispatch margin is reached, lets those started finish, and resumes after them', async () => {
    // Prepare: six new keys in one batch, one copy at a time; once "b" is stored the time left is below
    // the dispatch margin (60 s for a 15-minute function) but above the abort margin: nothing is aborted.
    const job = newJob({ concurrency: 1 });
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    let late = false;
    fake.afterPut = (_bucket, key) => {
      if (key === `${job.destination.prefix}b`) late = true;
    };
    const copied: string[] = [];

    // Act
    const cut = await syncJob(deps, job, {
      timeoutMs: 900_000,
      remainingTimeMs: () => (late ? 30_000 : 600_000),
      onObjectCopied: (object) => copied.push(object.key),
    });
    const checkpoint = await deps.state.readCheckpoint(job.jobId);
    const resumed = await syncJob(deps, job);

    // Assess: the copies started were finished; the others wait for the next run. They finish in any
    // order: a copy hands its slot on once its bytes are stored, so "c" may be recorded before "b".
    const started = names.slice(0, copied.length).map((name) => at(job, name));
    expect(copied.length).toBeGreaterThanOrEqual(2);
    expect(copied.length).toBeLessThan(names.length);
    expect([...copied].sort()).toEqual(started);
    expect(cut).toMatchObject({
      status: 'partial',
      copied: copied.length,
      failed: 0,
      deferred: names.length - copied.length,
    });
    expect(checkpoint.resumeAfter).toBe(started.at(-1));
    expect(resumed).toMatchObject({ status: 'complete', copied: names.length - copied.length, failed: 0 });
    for (const name of names) expect(copyOf(job, name)?.body.toString()).toBe(`body ${name}`);
  });

  it('announces no new copies once the margin is reached while listing, and says so in the log', async () => {
    // Prepare: nine new keys on pages of three, each page fetched while the one before is read; the time
    // left drops below the dispatch margin as the third page is fetched, before the first batch (of
    // a, b, c) was announced: "d" is the first key not started, and the waiting batch is dropped.
    const job = newJob();
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
    for (const name of names) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    let pages = 0;
    fake.beforeList = () => {
      pages += 1;
    };
    // The preflight lists too; count the run's pages from its first one.
    const listingStart = 1;
    const logger = captureLogger();

    // Act
    const cut = await syncJob({ ...deps, logger }, job, {
      timeoutMs: 900_000,
      remainingTimeMs: () => (pages >= listingStart + 3 ? 30_000 : 600_000),
    });
    fake.beforeList = undefined;
    const resumed = await syncJob(deps, job);

    // Assess
    expect(cut).toMatchObject({ status: 'partial', copied: 0, failed: 0, deferred: 4 });
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'deadline near: no new copies this run',
      fields: { jobId: job.jobId, resumeAfter: undefined },
    });
    expect(resumed).toMatchObject({ status: 'complete', copied: 9, failed: 0 });
  });

  it('ends the pass partial when the deadline cuts a LIST request, and fails the run on any other LIST error', async () => {
    const job = newJob();
    for (const name of ['a', 'b', 'c', 'd']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    const deadline = new AbortController();
    let pages = 0;
    fake.beforeList = () => {
      pages += 1;
      if (pages === 2) {
        deadline.abort();
        throw Object.assign(new Error('request aborted'), { name: 'AbortError' });
      }
    };

    const cut = await syncJob(deps, job, { signal: deadline.signal });
    pages = 0;
    fake.beforeList = () => {
      pages += 1;
      // The first page is the preflight's; the second is the pass's own listing.
      if (pages === 2) throw serverError();
    };
    const failed = await syncJob(deps, job, { objectRetry: ONE_TRY }).catch((error: unknown) => error);

    expect(cut).toMatchObject({ status: 'partial', failed: 0 });
    expect(failed).toBeInstanceOf(S3ServiceException);
  });

  it('reports the copies in flight as each takes its slot and hands it back, and none once all are done', async () => {
    // Prepare: three new keys, copied one at a time.
    const job = newJob({ concurrency: 1 });
    for (const name of ['a', 'b', 'c']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    const inFlight: number[] = [];

    // Act
    const summary = await syncJob(deps, job, { onProgress: (progress) => inFlight.push(progress.inFlight) });

    // Assess: one slot, so never more than one in flight; the last report comes after the last release.
    expect(summary).toMatchObject({ copied: 3, inFlight: 0 });
    expect(inFlight).toContain(1);
    expect(Math.min(...inFlight)).toBe(0);
    expect(Math.max(...inFlight)).toBe(1);
    expect(inFlight.at(-1)).toBe(0);
  });

  it('says nothing of resuming when the pass starts at the first key', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('body a'));
    const logger = captureLogger();

    await syncJob({ ...deps, logger }, job);

    expect(logger.lines.filter((line) => line.message === 'resuming pass')).toEqual([]);
  });

  it('reports how long the run took, from its start to its summary', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('body a'));

    const before = Date.now();
    const summary = await syncJob(deps, job);
    const after = Date.now();

    expect(summary.durationMs).toBeGreaterThanOrEqual(
      Date.parse(summary.finishedAt) - Date.parse(summary.startedAt),
    );
    expect(summary.durationMs).toBeLessThanOrEqual(after - before);
  });

  it("reports the state table's capacity units this run consumed, not the store's running total", async () => {
    // Prepare: the store outlives runs (one per Lambda container): a first run leaves its counters above 0.
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('body a'));
    await syncJob(deps, job);
    fake.put(SOURCE, at(job, 'b'), Buffer.from('body b'));
    const before = { ...deps.state.capacity };

    // Act
    const summary = await syncJob(deps, job);

    // Assess: the pass's reads (ledger, intents, uploads) and writes (intent, ledger entry) are all the
    // store counted: leases and run records are not counted.
    const after = deps.state.capacity;
    expect(before.readCapacityUnits).toBeGreaterThan(0);
    expect(before.writeCapacityUnits).toBeGreaterThan(0);
    expect(summary.readCapacityUnits).toBeGreaterThan(0);
    expect(summary.writeCapacityUnits).toBeGreaterThan(0);
    expect(summary.readCapacityUnits).toBe(after.readCapacityUnits - before.readCapacityUnits);
    expect(summary.writeCapacityUnits).toBe(after.writeCapacityUnits - before.writeCapacityUnits);
  });

  it('counts as listed the keys the source lists, not those only the ledger still holds', async () => {
    // Prepare: a mirror job copied three keys; one is then deleted at the source.
    const job = newJob({ mirror: true });
    for (const name of ['a', 'b', 'c']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await syncJob(deps, job);
    fake.objects(SOURCE).delete(at(job, 'b'));

    // Act
    const rerun = await syncJob(deps, job);

    // Assess
    expect(rerun).toMatchObject({ listed: 2, skipped: 2, deleted: 1, copied: 0, failed: 0 });
  });

  it('starts copies while exactly the dispatch margin is left', async () => {
    // A 15-minute function stops starting copies with less than 60 s left; 60 s is not less.
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('body a'));

    const summary = await syncJob(deps, job, { timeoutMs: 900_000, remainingTimeMs: () => 60_000 });

    expect(summary).toMatchObject({ status: 'complete', copied: 1, deferred: 0 });
  });

  it('leaves a copy the deadline cut unsettled, so the next run resumes before it', async () => {
    // Prepare: three new keys copied one at a time; the deadline comes as "b" is read, and cuts its read.
    const job = newJob({ concurrency: 1 });
    for (const name of ['a', 'b', 'c']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    const deadline = new AbortController();
    fake.beforeGet = (_bucket, key) => {
      if (key !== at(job, 'b')) return;
      deadline.abort();
      throw Object.assign(new Error('request aborted'), { name: 'AbortError' });
    };

    // Act
    const cut = await syncJob(deps, job, { signal: deadline.signal, objectRetry: ONE_TRY });
    const checkpoint = await deps.state.readCheckpoint(job.jobId);
    fake.beforeGet = undefined;
    const resumedCopies: string[] = [];
    const resumed = await syncJob(deps, job, { onObjectCopied: (object) => resumedCopies.push(object.key) });

    // Assess: "a" is the last settled key; "b" was cut, not failed, and is copied first next run.
    expect(cut).toMatchObject({ status: 'partial', failed: 0, resumeAfter: at(job, 'a') });
    expect(cut.deferred).toBeGreaterThanOrEqual(1);
    expect(checkpoint.resumeAfter).toBe(at(job, 'a'));
    expect(resumed.status).toBe('complete');
    expect(resumedCopies.toSorted(compareKeys)[0]).toBe(at(job, 'b'));
  });

  it('forgets the upload intents of the runs that died once a full pass has settled their keys', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('body a'));
    await deps.state.putUploadIntent(job.jobId, 'run-that-died', 1, {
      since: new Date(Date.now() - 60_000).toISOString(),
      objects: [{ key: at(job, 'a'), size: 'body a'.length }],
    });

    const summary = await syncJob(deps, job);

    expect(summary).toMatchObject({ status: 'complete', copied: 1 });
    expect(await deps.state.readUploadIntents(job.jobId)).toEqual([]);
  });

  it('keeps, after a partial pass, what the runs that died may have written and the intents that say so', async () => {
    // Prepare: a mirror job; a run that died announced "d" and wrote it. This run starts with less than
    // the dispatch margin left (but more than the abort margin): it stops at the first key, unaborted.
    const job = newJob({ mirror: true });
    for (const name of ['a', 'b', 'c', 'd']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await deps.state.putUploadIntent(job.jobId, 'run-that-died', 1, {
      since: new Date(Date.now() - 60_000).toISOString(),
      objects: [{ key: at(job, 'd'), size: 'body d'.length }],
    });
    fake.put(DESTINATION, `${job.destination.prefix}d`, Buffer.from('body d'));
    const deletedIntents = vi.spyOn(deps.state, 'deleteUploadIntents');

    // Act
    const cut = await syncJob(deps, job, { timeoutMs: 900_000, remainingTimeMs: () => 30_000 });

    // Assess: the pass never reached "d", so it is not taken for deleted at the source.
    expect(cut).toMatchObject({ status: 'partial', copied: 0, deleted: 0 });
    expect(copyOf(job, 'd')?.body.toString()).toBe('body d');
    expect((await deps.state.readUploadIntents(job.jobId)).map((intent) => intent.objects)).toEqual([
      [{ key: at(job, 'd'), size: 'body d'.length }],
    ]);
    expect(deletedIntents).toHaveBeenCalledExactlyOnceWith(job.jobId, []);
  });

  it('lists no range after the one whose LIST request the deadline cut', async () => {
    // Prepare: a pass resuming after "c" lists (c, end], then wraps round to [start, c]; the deadline
    // cuts the first range's LIST request.
    const job = newJob();
    for (const name of ['a', 'b', 'c', 'd', 'e'])
      fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await deps.state.writeCheckpoint(job.jobId, { resumeAfter: at(job, 'c') }, 0);
    const deadline = new AbortController();
    let pages = 0;
    fake.beforeList = () => {
      pages += 1;
      // The first page is the preflight's; the second is the pass's first.
      if (pages === 2) {
        deadline.abort();
        throw Object.assign(new Error('request aborted'), { name: 'AbortError' });
      }
    };

    // Act
    const cut = await syncJob(deps, job, { signal: deadline.signal });

    // Assess
    expect(cut).toMatchObject({ status: 'partial', listed: 0, copied: 0, deferred: 0 });
    expect(pages).toBe(2);
  });

  it('plans nothing more once a task failed the run: no further deletion, no further listing', async () => {
    // Prepare: a mirror job copied six keys; "d", "e" and "f" are then deleted at the source, and the
    // pass resumes after "c", so its first range holds only those three deletions. The ledger write
    // after the first deletion fails, which ends the run.
    const job = newJob({ mirror: true, concurrency: 1 });
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await syncJob(deps, job);
    for (const name of ['d', 'e', 'f']) fake.objects(SOURCE).delete(at(job, name));
    const lease = await deps.state.readLease(job.jobId);
    await deps.state.writeCheckpoint(job.jobId, { resumeAfter: at(job, 'c') }, lease?.fence ?? 0);
    vi.spyOn(deps.state, 'deleteLedgerEntry').mockRejectedValueOnce(new Error('ledger write failed'));
    let pages = 0;
    fake.beforeList = () => {
      pages += 1;
    };

    // Act
    const failed = await syncJob(deps, job).catch((error: unknown) => error);

    // Assess: "e" may have started before the failure was known; "f" never does. The pass's one page
    // (after the preflight's) is all it listed: the range that wraps round to "a" is never planned.
    expect(failed).toMatchObject({ message: 'ledger write failed' });
    expect(copyOf(job, 'd')).toBeUndefined();
    expect(copyOf(job, 'f')?.body.toString()).toBe('body f');
    expect(pages).toBe(2);
  });

  it('starts no copy of an announced batch once the lease is lost, and stops with LeaseLostError', async () => {
    // Prepare: another run takes the lease once this one has announced its batch; the heartbeat (every
    // second for a 3-second lease) notices before the batch's copies start.
    const job = newJob();
    for (const name of ['a', 'b']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    const logger = captureLogger();
    const announce = deps.state.putUploadIntent.bind(deps.state);
    vi.spyOn(deps.state, 'putUploadIntent').mockImplementationOnce(async (...args) => {
      const id = await announce(...args);
      await deps.state.acquireLease(job.jobId, 'newer-run', 60_000, Date.now() + 60_000);
      await until(() => logger.lines.some((line) => line.message === 'lease lost; stopping'));
      return id;
    });
    const reads: string[] = [];
    fake.beforeGet = (_bucket, key) => {
      reads.push(key);
    };

    // Act
    const failed = await syncJob({ ...deps, logger }, job, { leaseTtlMs: 3_000 }).catch(
      (error: unknown) => error,
    );

    // Assess: only the preflight's read of "a"; nothing copied.
    expect(failed).toBeInstanceOf(LeaseLostError);
    expect(reads).toEqual([at(job, 'a')]);
    expect(copyOf(job, 'a')).toBeUndefined();
    expect(copyOf(job, 'b')).toBeUndefined();
  });

  it('stops dispatching at the copy the deadline stops in a full batch, and lists no further key', async () => {
    // Prepare: 103 new keys; the first 100 fill a batch, dispatched as soon as it is full, one copy at a
    // time. Once the second is stored, less than the dispatch margin is left (no abort).
    const job = newJob({ concurrency: 1 });
    const names = Array.from({ length: 103 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    for (const name of names) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    let late = false;
    fake.afterPut = (_bucket, key) => {
      if (key === `${job.destination.prefix}k001`) late = true;
    };
    const copied: string[] = [];

    // Act
    const cut = await syncJob(deps, job, {
      timeoutMs: 900_000,
      remainingTimeMs: () => (late ? 30_000 : 600_000),
      onObjectCopied: (object) => copied.push(object.key),
    });

    // Assess: the keys after the batch were never listed, and the batch's unstarted copies wait.
    expect(copied.length).toBeGreaterThanOrEqual(2);
    expect(cut).toMatchObject({
      status: 'partial',
      listed: 100,
      copied: copied.length,
      failed: 0,
      deferred: 100 - copied.length,
    });
  });

  it('starts a waiting copy after 1,000 plan steps, not only when the range ends', async () => {
    // Prepare: one new key, then 1,100 archived ones (no copy to fill its batch); less than the dispatch
    // margin is left once 1,050 keys are listed.
    const job = newJob();
    fake.put(SOURCE, at(job, 'a'), Buffer.from('body a'));
    for (let i = 0; i < 1_100; i += 1) {
      fake.put(SOURCE, at(job, `b${String(i).padStart(4, '0')}`), Buffer.from('cold'), {
        storageClass: 'GLACIER',
      });
    }
    const pageSize = fake.pageSize;
    fake.pageSize = 100;
    let listed = 0;

    // Act
    const cut = await syncJob(deps, job, {
      timeoutMs: 900_000,
      remainingTimeMs: () => (listed >= 1_050 ? 30_000 : 600_000),
      onProgress: (progress) => {
        listed = progress.listed;
      },
    }).finally(() => {
      fake.pageSize = pageSize;
    });

    // Assess: "a" was started 1,000 steps in, before the deadline.
    expect(cut).toMatchObject({ status: 'partial', copied: 1, deferred: 0 });
    expect(copyOf(job, 'a')?.body.toString()).toBe('body a');
  });

  it(`copies at most ${LARGE_OBJECT_CONCURRENCY} objects over 1 MiB at once, whatever the concurrency`, async () => {
    // Prepare: six objects of 1 MiB and a byte, eight slots; every read is held open.
    const job = newJob({ concurrency: 8 });
    const reads = heldReads(job, LARGE_OBJECT_CONCURRENCY + 2, SMALL_OBJECT_BYTES + 1);

    // Act
    const run = syncJob(deps, job);
    await until(() => reads.held() >= LARGE_OBJECT_CONCURRENCY);
    // Time for a fifth to start, were it let.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const atOnce = reads.held();
    reads.open();
    const summary = await run;

    // Assess
    expect(atOnce).toBe(LARGE_OBJECT_CONCURRENCY);
    expect(summary).toMatchObject({ copied: LARGE_OBJECT_CONCURRENCY + 3, failed: 0 });
  });

  it('copies objects of up to 1 MiB in every concurrency slot, not only the large-object ones', async () => {
    // Prepare: six objects of exactly 1 MiB, eight slots; every read is held open.
    const job = newJob({ concurrency: 8 });
    const count = LARGE_OBJECT_CONCURRENCY + 2;
    const reads = heldReads(job, count, SMALL_OBJECT_BYTES);

    // Act
    const run = syncJob(deps, job);
    await until(() => reads.held() >= count, 2_000);
    const atOnce = reads.held();
    reads.open();
    const summary = await run;

    // Assess
    expect(atOnce).toBe(count);
    expect(summary).toMatchObject({ copied: count + 1, failed: 0 });
  });
});
