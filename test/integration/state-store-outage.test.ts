import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { httpHandlerOptions } from '../../functions/core/clients.js';
import { JobAlreadyRunningError, StateStoreError } from '../../functions/core/errors.js';
import { type SyncLogger, syncJob } from '../../functions/core/run/sync-job.js';
import { StateStore } from '../../functions/core/state/state-store.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { startFaultProxy } from '../../sandbox/fault-proxy.js';
import { isolatedJob, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const table = sandbox.accountB.tableName;

describe('a state table that stops answering mid-run', () => {
  it('is named with the failed operation, stored objects are not called "not copied", and the lease is released once it is back', async () => {
    // Prepare: three objects copied one at a time; DynamoDB goes away as the first one is written to the
    // destination, and comes back once the run has failed to release its lease.
    const job = isolatedJob(sandbox, 'dead-table', { options: { concurrency: 1 } });
    const keys = ['a', 'b', 'c'].map((name) => `${job.source.prefix}${name}`);
    for (const key of keys) await putObject(producer, sandbox.accountA.bucket, key, key);
    const proxy = await startFaultProxy(sandbox);
    const state = new StateStore(
      new DynamoDBClient({
        region: sandbox.region,
        endpoint: proxy.endpoints.dynamodb,
        credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
        maxAttempts: 2,
        requestHandler: httpHandlerOptions({ connectionMs: 1000, requestMs: 3000, idleMs: 3000 }),
      }),
      table,
    );
    const logs: { level: string; message: string; key?: unknown }[] = [];
    const record =
      (level: string) =>
      (message: string, ...extra: Record<string, unknown>[]) => {
        logs.push({ level, message, key: extra[0]?.key });
        if (message === 'lease not released; retrying') void proxy.setReachable('dynamodb', true);
      };
    const logger: SyncLogger = {
      debug() {},
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };
    const destinationS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
    destinationS3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutObjectCommand') void proxy.setReachable('dynamodb', false);
        return next(args);
      },
      { step: 'initialize' },
    );

    // Act
    const outcome = await syncJob({ ...deps, state, destinationS3, logger }, job).catch(
      (error: unknown) => error,
    );
    const lease = await deps.state.readLease(job.jobId);
    await proxy.stop();
    const next = await syncJob(deps, job);

    // Assess
    expect(outcome).toBeInstanceOf(StateStoreError);
    expect((outcome as Error).message).toMatch(
      new RegExp(`state table "${table}": putPlannedEntry \\(PutItem\\) failed`),
    );
    expect((outcome as Error).cause).toBeDefined();
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: 'object stored at the destination but not recorded; the next run adopts it',
        key: keys[0],
      }),
    );
    expect(logs.filter((log) => log.message === 'object not copied')).toEqual([]);
    expect(lease?.expiresAt ?? 0).toBeLessThanOrEqual(Date.now());
    expect(next).toMatchObject({ status: 'complete', failed: 0 });
    expect(await listKeys(consumer, job.destination.bucket, job.destination.prefix)).toHaveLength(3);
  });
});

describe('a job whose lease is held', () => {
  it('says who holds it, since when, and until when', async () => {
    const job = isolatedJob(sandbox, 'held');
    await putObject(producer, sandbox.accountA.bucket, `${job.source.prefix}a`, 'a');
    const before = Date.now();
    const other = await deps.state.acquireLease(job.jobId, 'another-run', 60_000);

    const refusal = await syncJob(deps, job).catch((error: unknown) => error);
    await deps.state.releaseLease(job.jobId, other);

    expect(refusal).toBeInstanceOf(JobAlreadyRunningError);
    const [since, until] = [...(refusal as Error).message.matchAll(/\d{4}-\d\d-\d\dT[\d:.]+Z/g)].map((m) =>
      Date.parse(m[0]),
    );
    expect((refusal as Error).message).toMatch(/run another-run, holding the lease since .* until /);
    expect(since).toBeGreaterThanOrEqual(before);
    expect(until).toBe(other.expiresAt);
  });
});
