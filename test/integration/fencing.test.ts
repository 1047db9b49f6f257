/**
 * Fencing over real HTTP: the guarantee lives in DynamoDB's condition expressions, so these tests run
 * against the sandbox's DynamoDB Local (and moto's S3), never against mocked answers.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../functions/core/errors.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import type { Checkpoint, Lease, LedgerEntry } from '../../functions/core/state/state-store.js';
import { isolatedJob, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer } = useSandbox();
const { state } = deps;
const source = sandbox.accountA.bucket;
const LEASE_MS = 60_000;

/** Takes the job's lease as if the current holder's had expired: the next, newer lease holder. */
function stealLease(jobId: string, owner: string): Promise<Lease> {
  return state.acquireLease(jobId, owner, LEASE_MS, Date.now() + 10 * LEASE_MS);
}

async function ledgerEntry(jobId: string, key: string): Promise<LedgerEntry | undefined> {
  for await (const entry of state.ledger(jobId)) if (entry.key === key) return entry;
  return undefined;
}

const entry = (key: string, etag: string, runId: string): LedgerEntry => ({
  key,
  etag,
  size: 1,
  lastModified: '2026-01-01T00:00:00.000Z',
  destinationKey: key,
  destinationEtag: etag,
  copiedAt: '2026-01-01T00:00:00.000Z',
  runId,
});

describe('StateStore fencing (DynamoDB Local)', () => {
  it('refuses a ledger write from a stale lease holder and leaves the newer entry unchanged', async () => {
    const jobId = `fence-ledger-${Date.now()}`;
    const stale = await state.acquireLease(jobId, 'stale-run', LEASE_MS);
    const newer = await stealLease(jobId, 'newer-run');
    await state.putLedgerEntry(jobId, entry('k', 'newer-etag', 'newer-run'), newer.fence);

    const write = state.putLedgerEntry(jobId, entry('k', 'stale-etag', 'stale-run'), stale.fence);

    await expect(write).rejects.toThrow(LeaseLostError);
    expect(newer.fence).toBeGreaterThan(stale.fence);
    expect(await ledgerEntry(jobId, 'k')).toMatchObject({ etag: 'newer-etag', runId: 'newer-run' });
  });

  it('lets the current lease holder overwrite its own and older entries', async () => {
    const jobId = `fence-ledger-own-${Date.now()}`;
    const first = await state.acquireLease(jobId, 'first-run', LEASE_MS);
    await state.putLedgerEntry(jobId, entry('k', 'first-etag', 'first-run'), first.fence);
    const second = await stealLease(jobId, 'second-run');

    await state.putLedgerEntry(jobId, entry('k', 'second-etag', 'second-run'), second.fence);
    await state.putLedgerEntry(jobId, entry('k', 'second-etag-again', 'second-run'), second.fence);

    expect(await ledgerEntry(jobId, 'k')).toMatchObject({ etag: 'second-etag-again' });
  });

  it('refuses a ledger delete from a stale lease holder and keeps the entry', async () => {
    const jobId = `fence-delete-${Date.now()}`;
    const stale = await state.acquireLease(jobId, 'stale-run', LEASE_MS);
    const newer = await stealLease(jobId, 'newer-run');
    await state.putLedgerEntry(jobId, entry('k', 'newer-etag', 'newer-run'), newer.fence);

    // Refused by the fencing condition (the cause), not rejected as a malformed request; reported as a
    // lost lease, as the other fenced writes are.
    const refused = state.deleteLedgerEntry(jobId, 'k', stale.fence);
    await expect(refused).rejects.toBeInstanceOf(LeaseLostError);
    await expect(refused).rejects.toMatchObject({ cause: { name: 'ConditionalCheckFailedException' } });

    expect(await ledgerEntry(jobId, 'k')).toMatchObject({ etag: 'newer-etag' });
  });

  it('refuses a checkpoint write from a stale lease holder and leaves the newer checkpoint unchanged', async () => {
    const jobId = `fence-checkpoint-${Date.now()}`;
    const stale = await state.acquireLease(jobId, 'stale-run', LEASE_MS);
    const newer = await stealLease(jobId, 'newer-run');
    const newerCheckpoint: Checkpoint = {
      resumeAfter: 'newer/position',
      lastCompletePass: { runId: 'newer-run', finishedAt: '2026-01-02T00:00:00.000Z' },
    };
    await state.writeCheckpoint(jobId, newerCheckpoint, newer.fence);

    const write = state.writeCheckpoint(jobId, { resumeAfter: 'stale/position' }, stale.fence);

    await expect(write).rejects.toThrow(LeaseLostError);
    expect(await state.readCheckpoint(jobId)).toEqual(newerCheckpoint);
  });

  it('refuses to renew or release a lease another run has taken', async () => {
    const jobId = `fence-renew-${Date.now()}`;
    const stale = await state.acquireLease(jobId, 'stale-run', LEASE_MS);
    const newer = await stealLease(jobId, 'newer-run');

    await expect(state.renewLease(jobId, stale, LEASE_MS)).rejects.toThrow(LeaseLostError);
    await state.releaseLease(jobId, stale);

    expect(await state.readLease(jobId)).toMatchObject({
      owner: 'newer-run',
      fence: newer.fence,
      expiresAt: newer.expiresAt,
    });
  });
});

/**
 * The source client of a run, calling `takeOver` once, before the run's own listing: after the
 * preflight listing and the lease, before the run reads the source.
 */
function sourceTakenOverBeforeListing(takeOver: () => Promise<void>) {
  let listings = 0;
  return (...args: Parameters<typeof deps.sourceS3>): S3Client => {
    const client = deps.sourceS3(...args);
    client.middlewareStack.add(
      (next, context) => async (input) => {
        if (context.commandName === ListObjectsV2Command.name && ++listings === 2) await takeOver();
        return next(input);
      },
      { step: 'initialize' },
    );
    return client;
  };
}

describe('syncJob whose lease is taken over mid-run', () => {
  async function jobWithObjects(name: string, names: string[]): Promise<Job> {
    const job = isolatedJob(sandbox, name, { options: { concurrency: 1 } });
    for (const each of names) await putObject(producer, source, `${job.source.prefix}${each}`, each);
    return job;
  }

  it("stops with LeaseLostError and does not roll back the newer run's ledger entry", async () => {
    const job = await jobWithObjects('stolen-ledger', ['a.txt']);
    const key = `${job.source.prefix}a.txt`;
    const newerEntry = entry(key, '"newer-etag"', 'newer-run');
    // A newer run takes over and records the key before the stale run gets to it.
    const sourceS3 = sourceTakenOverBeforeListing(async () => {
      const newer = await stealLease(job.jobId, 'newer-run');
      await state.putLedgerEntry(job.jobId, newerEntry, newer.fence);
    });

    const run = syncJob({ ...deps, sourceS3 }, job);

    await expect(run).rejects.toThrow(LeaseLostError);
    expect(await ledgerEntry(job.jobId, key)).toMatchObject({ etag: '"newer-etag"', runId: 'newer-run' });
  });

  it("stops with LeaseLostError and does not roll back the newer run's checkpoint", async () => {
    const job = await jobWithObjects('stolen-checkpoint', ['a.txt', 'b.txt']);
    await syncJob(deps, job);
    const newerCheckpoint: Checkpoint = { resumeAfter: `${job.source.prefix}a.txt` };
    // Nothing to copy this time, so the checkpoint is the stale run's only fenced write.
    const sourceS3 = sourceTakenOverBeforeListing(async () => {
      const newer = await stealLease(job.jobId, 'newer-run');
      await state.writeCheckpoint(job.jobId, newerCheckpoint, newer.fence);
    });

    const run = syncJob({ ...deps, sourceS3 }, job);

    await expect(run).rejects.toThrow(LeaseLostError);
    expect(await state.readCheckpoint(job.jobId)).toEqual(newerCheckpoint);
  });
});
