/**
 * Fifty jobs stored as data, run at once against the sandbox the way fifty schedules firing together
 * would: each invocation gets only `{"jobId"}` and reads its job from the job store. Each job has its own
 * source and destination prefix; the runs share the function's clients, the state table and the buckets.
 * The function's core (handleEvent) is called rather than the middy handler: Lambda gives each concurrent
 * invocation its own container, while the handler's logger and metrics are one per process. The jobs are
 * stored in a table of their own, so the stack commands' tests never see them as a stack's jobs.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import type { Job } from '../../functions/core/job.js';
import type { RunSummary } from '../../functions/core/run/sync-types.js';
import { JobStore } from '../../functions/core/state/job-store.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import { createStateTable } from '../../sandbox/provision.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { isolatedJob, listKeys, putObject, randomText, readObject, useSandbox } from './helpers.js';

const { sandbox, producer, consumer } = useSandbox();
const { accountA, accountB } = sandbox;
const JOBS = 50;
const OBJECTS_PER_JOB = 3;

/** The job's objects at the source: a few keys of different sizes, one of them nested. */
function objectsOf(job: Job, index: number): Map<string, string> {
  return new Map(
    Array.from({ length: OBJECTS_PER_JOB }, (_, i) => [
      `${i === 0 ? 'nested/' : ''}object-${i}.txt`,
      `${job.jobId} ${i} ${randomText(10 + index * 7 + i * 301)}`,
    ]),
  );
}

describe('many stored jobs at once', () => {
  it(`runs ${JOBS} stored jobs concurrently: each destination equals its source, one run record each, no lease crossed`, async () => {
    // Arrange: 50 jobs, each over its own prefix, stored as data.
    const tableName = `many-jobs-${randomBytes(3).toString('hex')}`;
    await createStateTable(sandbox, tableName);
    const deps = dependenciesFromEnvironment(consoleLogger('error'), {
      ...process.env,
      STATE_TABLE_NAME: tableName,
    });
    const store = new JobStore(sandboxDynamo(sandbox), tableName);
    const jobs = Array.from({ length: JOBS }, (_, i) =>
      isolatedJob(sandbox, `many-${String(i).padStart(2, '0')}`),
    );
    const sources = jobs.map((job, i) => objectsOf(job, i));
    await Promise.all(
      jobs.flatMap((job, i) =>
        [...(sources[i] ?? [])].map(([key, body]) =>
          putObject(producer, accountA.bucket, `${job.source.prefix}${key}`, body),
        ),
      ),
    );
    await Promise.all(
      jobs.map((job) =>
        store.add(
          { jobId: job.jobId, source: job.source, destination: job.destination },
          { schedule: 'rate(5 minutes)' },
        ),
      ),
    );

    // Act: every schedule fires at once.
    const started = Date.now();
    const results = await Promise.all(jobs.map((job) => handleEvent(deps, { jobId: job.jobId })));
    const elapsedMs = Date.now() - started;
    console.info(`many-jobs: ${JOBS} jobs × ${OBJECTS_PER_JOB} objects ran concurrently in ${elapsedMs} ms`);

    // Assert
    const summaries = results as RunSummary[];
    for (const [i, job] of jobs.entries()) {
      const summary = summaries[i];
      expect(summary).toMatchObject({
        jobId: job.jobId,
        status: 'complete',
        copied: OBJECTS_PER_JOB,
        failed: 0,
      });
      // The destination holds exactly the job's source objects, byte for byte, and nothing of another job.
      const source = sources[i] ?? new Map<string, string>();
      const keys = await listKeys(consumer, accountB.destinationBucket, job.destination.prefix);
      expect(keys.sort()).toEqual([...source.keys()].map((key) => `${job.destination.prefix}${key}`).sort());
      for (const [key, body] of source) {
        expect(
          (
            await readObject(consumer, accountB.destinationBucket, `${job.destination.prefix}${key}`)
          ).toString(),
        ).toBe(body);
      }
      // One run record, the run's own; its manifest in the job's own folder.
      const runs = await deps.state.recentRuns(job.jobId);
      expect(runs.map((run) => run.runId)).toEqual([summary?.runId]);
      expect(summary?.manifest?.manifestKey).toContain(`/${job.jobId}/${summary?.runId}/`);
      // The job's lease was taken once, by its own run, and handed back.
      expect(await deps.state.readLease(job.jobId)).toMatchObject({
        owner: summary?.runId,
        fence: 1,
        expiresAt: 0,
      });
    }
    expect(new Set(summaries.map((s) => s.runId)).size).toBe(JOBS);
  });
});
