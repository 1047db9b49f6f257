/**
 * What a run tells the people and pipelines that watch it, and what it writes only when it has to: its
 * log lines (each with the fields an operator filters on), the figures in its `_SUCCESS` marker, the
 * ledger writes it saves on keys long gone, the edge of S3's key length, and how it gives its lease back
 * when the table stops answering. S3 is the in-process FakeS3; DynamoDB is the sandbox's DynamoDB Local.
 */
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { LeaseLostError } from '../../functions/core/errors.js';
import type { Job } from '../../functions/core/job.js';
import { MAX_KEY_BYTES } from '../../functions/core/plan/keys.js';
import { type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import type { StateStore } from '../../functions/core/state/state-store.js';
import { captureLogger } from '../support/capture-logger.js';
import { fakeS3Dependencies, fakeS3Jobs } from '../support/fake-dependencies.js';
import { FakeS3 } from '../support/fake-s3.js';

const sandbox = inject('sandbox');
const fake = new FakeS3();
const deps = fakeS3Dependencies(sandbox);
const { SOURCE, DESTINATION, newJob, at } = fakeS3Jobs('reporting');
const ONE_TRY = { attempts: 1, baseBackoffMs: 1 };
fake.createBucket(SOURCE);
fake.createBucket(DESTINATION);

/** The dependencies with some StateStore methods replaced; the others still reach DynamoDB Local. */
function withState(overrides: Partial<Record<keyof StateStore, unknown>>): SyncDependencies {
  const state = new Proxy(deps.state, {
    get(target, property, receiver) {
      if (property in overrides) return overrides[property as keyof StateStore];
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { ...deps, state };
}

describe('what a run reports, and what it writes only when it must (FakeS3 + DynamoDB Local)', () => {
  beforeEach(() => {
    fake.beforeGet = undefined;
    fake.afterPut = undefined;
  });

  it('logs its start with the fence, each copy with its size and reason, and its end with the totals', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a.csv'), Buffer.from('abc'));
    const logger = captureLogger();

    const summary = await syncJob({ ...deps, logger }, job);

    const lease = await deps.state.readLease(job.jobId);
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'run started',
      fields: { jobId: job.jobId, runId: summary.runId, fence: lease?.fence },
    });
    expect(logger.lines).toContainEqual({
      level: 'debug',
      message: 'object copied',
      fields: { key: at(job, 'a.csv'), bytes: 3, reason: 'new' },
    });
    const finished = logger.lines.find((line) => line.message === 'run finished');
    expect(finished?.level).toBe('info');
    expect(finished?.fields).toMatchObject({ jobId: job.jobId, status: 'complete', copied: 1, failures: 0 });
    expect(finished?.fields).not.toHaveProperty('archivedKeys', expect.anything());
    // Nothing was left by earlier runs, so nothing is said about it.
    expect(logger.lines.map((line) => line.message)).not.toContain(
      'aborted multipart uploads left by earlier runs',
    );
  });

  it("writes the run's status and counts into its _SUCCESS marker", async () => {
    const job = newJob({ concurrency: 1 });
    fake.put(SOURCE, at(job, 'a.csv'), Buffer.from('a'));
    fake.put(SOURCE, at(job, 'b.csv'), Buffer.from('b'));
    fake.beforeGet = (_bucket, key) => {
      if (key === at(job, 'b.csv')) throw new Error('connection reset');
    };

    const summary = await syncJob(deps, job, { objectRetry: ONE_TRY });

    const marker = fake.objects(DESTINATION).get(summary.manifest?.markerKey ?? '');
    expect(JSON.parse(marker?.body.toString() ?? '{}')).toMatchObject({
      status: 'complete', // the pass reached the end; the failure is counted apart
      copied: 1,
      failed: 1,
      deferred: 0,
    });
  });

  it('logs a key it could not copy with the reason and the attempts so far', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a.csv'), Buffer.from('a'));
    fake.beforeGet = () => {
      throw new Error('connection reset');
    };
    const logger = captureLogger();

    await syncJob({ ...deps, logger }, job, { objectRetry: ONE_TRY });

    const line = logger.lines.find((logged) => logged.message === 'object not copied');
    expect(line?.level).toBe('warn');
    expect(line?.fields).toEqual({
      key: at(job, 'a.csv'),
      reason: expect.stringContaining('connection reset'),
      attempts: 1,
    });
  });

  it('logs a copy the deadline cut, by key', async () => {
    const job = newJob({ concurrency: 1 });
    for (const name of ['a', 'b', 'c']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    const deadline = new AbortController();
    fake.beforeGet = (_bucket, key) => {
      if (key !== at(job, 'b')) return;
      deadline.abort();
      throw new Error('the read was cut');
    };
    const logger = captureLogger();

    await syncJob({ ...deps, logger }, job, { signal: deadline.signal, objectRetry: ONE_TRY });

    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'copy cut at the deadline; the next run copies it',
      fields: { key: at(job, 'b') },
    });
  });

  it('logs each deletion of a mirror job, and the key where its delete limit stopped it', async () => {
    const job = newJob({ mirror: true, maxDeletesPerRun: 1, concurrency: 1 });
    for (const name of ['a', 'b']) fake.put(SOURCE, at(job, name), Buffer.from(`body ${name}`));
    await syncJob(deps, job);
    for (const name of ['a', 'b']) fake.objects(SOURCE).delete(at(job, name));
    const logger = captureLogger();

    await syncJob({ ...deps, logger }, job);

    expect(logger.lines).toContainEqual({
      level: 'debug',
      message: 'object deleted',
      fields: { key: at(job, 'a') },
    });
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'delete limit reached; the rest waits for the next run',
      fields: { key: at(job, 'b'), maxDeletesPerRun: 1 },
    });
  });

  it('writes nothing more for a key gone from the source once its entry says all there is to say', async () => {
    // Prepare: a key copied, then deleted at the source; the first run after keeps its entry as it is.
    const job = newJob();
    fake.put(SOURCE, at(job, 'gone.csv'), Buffer.from('gone'));
    await syncJob(deps, job);
    fake.objects(SOURCE).delete(at(job, 'gone.csv'));
    const written: string[] = [];
    // Both ledger writes a run makes for a key: the whole-item one and the plan-conditioned one.
    const counting = withState({
      putLedgerEntry: (jobId: string, entry: { key: string }, fence: number) => {
        written.push(entry.key);
        return deps.state.putLedgerEntry(jobId, entry as never, fence);
      },
      putPlannedEntry: (...args: Parameters<typeof deps.state.putPlannedEntry>) => {
        written.push(args[1].key);
        return deps.state.putPlannedEntry(...args);
      },
    });

    // Act
    await syncJob(counting, job);
    await syncJob(counting, job);

    // Assess
    expect(written).toEqual([]);
  });

  it(`copies to a destination key of exactly ${MAX_KEY_BYTES} bytes, S3's limit`, async () => {
    const job = newJob();
    const name = 'a.csv';
    const prefix = `${'p'.repeat(MAX_KEY_BYTES - name.length - 1)}/`;
    const edge: Job = { ...job, destination: { ...job.destination, prefix } };
    fake.put(SOURCE, at(job, name), Buffer.from('a'));

    const summary = await syncJob(deps, edge, { objectRetry: ONE_TRY });

    expect(Buffer.byteLength(`${prefix}${name}`)).toBe(MAX_KEY_BYTES);
    expect(summary.failures).toEqual([]);
    expect(fake.objects(DESTINATION).get(`${prefix}${name}`)?.body.toString()).toBe('a');
  });

  it('stops on a lease lost at the ledger write without calling the stored copy unrecorded', async () => {
    const job = newJob();
    fake.put(SOURCE, at(job, 'a.csv'), Buffer.from('a'));
    const logger = captureLogger();
    const stolen = withState({
      putPlannedEntry: () => Promise.reject(new LeaseLostError('lease taken by a newer run')),
    });

    const run = syncJob({ ...stolen, logger }, job);

    await expect(run).rejects.toThrow(LeaseLostError);
    expect(logger.lines.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('tries to give its lease back only while the invocation has time left, then leaves it to expire', async () => {
    // Prepare: once the run has finished, one second of the invocation is left, all of it reserved for
    // returning the result; the table refuses the release.
    const job = newJob();
    fake.put(SOURCE, at(job, 'a.csv'), Buffer.from('a'));
    let releases = 0;
    const refusing = withState({
      releaseLease: () => {
        releases += 1;
        return Promise.reject(new Error('table unreachable'));
      },
    });
    const logger = captureLogger();
    let ending = false;
    const info = logger.info;
    logger.info = (message, ...extra) => {
      if (message === 'run finished') ending = true;
      info(message, ...extra);
    };

    // Act
    const summary = await syncJob({ ...refusing, logger }, job, {
      timeoutMs: 900_000,
      remainingTimeMs: () => (ending ? 1_000 : 600_000),
    });

    // Assess
    expect(summary.status).toBe('complete');
    expect(releases).toBe(1);
    const messages = logger.lines.map((line) => line.message);
    expect(messages).toContain('lease not released; it expires by itself');
    expect(messages).not.toContain('lease not released; retrying');
  });
});
