import { describe, expect, it } from 'vitest';
import {
  listLedgerFailures,
  readJobStatus,
  renewalOverdue,
  requireKnownJobs,
} from '../../functions/core/diagnose/read-job-status.js';
import { UnknownJobError } from '../../functions/core/errors.js';
import type { Lease, LedgerEntry, StateStore } from '../../functions/core/state/state-store.js';

const now = 1_800_000_000_000;
const TTL = 120_000;

interface FakeTable {
  runs?: Record<string, unknown>[];
  lease?: Lease;
  failures?: { key: string; failure: LedgerEntry['failure'] }[];
  hasRecords?: boolean;
  jobIds?: string[];
}

/** A state store answering from memory, recording which job ids it was asked about. */
function fakeState(table: FakeTable, asked: string[] = []) {
  return {
    state: {
      recentRuns: async () => table.runs ?? [],
      readLease: async () => table.lease,
      async *ledgerFailures() {
        yield* table.failures ?? [];
      },
      hasJobRecords: async (jobId: string) => {
        asked.push(jobId);
        return table.hasRecords ?? false;
      },
      sampleJobIds: async () => ({ jobIds: table.jobIds ?? [], complete: true }),
    } as unknown as StateStore,
  };
}

const failure = (i: number) => ({
  key: `k${String(i).padStart(2, '0')}`,
  failure: { reason: 'AccessDenied', attempts: 2, at: '2026-01-01T00:00:00.000Z' },
});

describe('listLedgerFailures', () => {
  it('fills what the ledger left unrecorded: reason unknown, one attempt, no time', async () => {
    const { state } = fakeState({ failures: [{ key: 'k', failure: undefined }] });

    const failures = [];
    for await (const f of listLedgerFailures(state, 'nightly')) failures.push(f);

    expect(failures).toEqual([{ key: 'k', reason: 'unknown', attempts: 1, at: '' }]);
  });
});

describe('readJobStatus', () => {
  it('counts every failure but lists only the first 20', async () => {
    const failures = Array.from({ length: 21 }, (_, i) => failure(i));
    const { state } = fakeState({ failures });

    const status = await readJobStatus({ state }, 'nightly', now);

    expect(status.failureCount).toBe(21);
    expect(status.failures).toHaveLength(20);
    expect(status.failures[0]).toEqual({
      key: 'k00',
      reason: 'AccessDenied',
      attempts: 2,
      at: '2026-01-01T00:00:00.000Z',
    });
    expect(status.failures.at(-1)?.key).toBe('k19');
  });

  it('calls a lease expiring exactly now neither held nor overdue', async () => {
    const { state } = fakeState({ lease: { owner: 'run-1', fence: 2, expiresAt: now } as Lease });

    const status = await readJobStatus({ state }, 'nightly', now);

    expect(status.lease).toEqual({
      owner: 'run-1',
      acquiredAt: undefined,
      expiresAt: new Date(now).toISOString(),
      fence: 2,
      held: false,
      renewalOverdue: false,
    });
  });

  it('calls an expired lease not renewed for long neither held nor overdue, a live one held and on time', async () => {
    const expired = await readJobStatus(
      fakeState({ lease: { owner: 'run-1', fence: 2, expiresAt: now - TTL } as Lease }),
      'nightly',
      now,
    );
    expect(expired.lease).toMatchObject({ held: false, renewalOverdue: false });

    const live = await readJobStatus(
      fakeState({
        lease: { owner: 'run-1', fence: 2, acquiredAt: now - 5000, expiresAt: now + TTL - 1000 } as Lease,
      }),
      'nightly',
      now,
    );
    expect(live.lease).toMatchObject({
      held: true,
      renewalOverdue: false,
      acquiredAt: new Date(now - 5000).toISOString(),
    });
  });
});

describe('renewalOverdue', () => {
  it('is overdue only after more than two heartbeats (a third of the TTL each) without renewal', () => {
    // last renewal at expiresAt − TTL; two heartbeats are 80 s
    const renewedAgo = (ms: number) => ({ owner: 'r', fence: 1, expiresAt: now - ms + TTL }) as Lease;

    expect(renewalOverdue(renewedAgo(80_000), now, TTL)).toBe(false);
    expect(renewalOverdue(renewedAgo(80_001), now, TTL)).toBe(true);
  });
});

describe('requireKnownJobs', () => {
  it('does not ask the table about a job that has run records', async () => {
    const asked: string[] = [];
    const { state } = fakeState({}, asked);

    await requireKnownJobs({ state }, [
      { jobId: 'ran', lastRun: { runId: 'r' }, failureCount: 0, failures: [] },
    ]);

    expect(asked).toEqual([]);
  });

  it('names every unknown job, and says when the table holds no job at all', async () => {
    const { state } = fakeState({ jobIds: [] });

    const error = await requireKnownJobs({ state }, [
      { jobId: 'one', failureCount: 0, failures: [] },
      { jobId: 'two', failureCount: 0, failures: [] },
    ]).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(UnknownJobError);
    expect((error as Error).message).toBe(
      'no job "one", "two" in the state table (no lease, checkpoint, run record or ledger item): check ' +
        '--job-id; the table holds no job at all: check STATE_TABLE_NAME and AWS_REGION',
    );
  });
});
