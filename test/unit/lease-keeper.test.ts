import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaseLostError } from '../../functions/core/errors.js';
import { LeaseKeeper } from '../../functions/core/run/lease-keeper.js';
import type { Lease, StateStore } from '../../functions/core/state/state-store.js';

const lease: Lease = { owner: 'run-1', expiresAt: 1_000, fence: 7 };
const log = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };

beforeEach(() => {
  vi.useFakeTimers();
  vi.clearAllMocks();
});
afterEach(() => {
  vi.useRealTimers();
});

const keeperWith = (renewLease: StateStore['renewLease'], ttlMs = 120_000, onLost = vi.fn()) => ({
  keeper: new LeaseKeeper({ renewLease } as unknown as StateStore, 'job', lease, ttlMs, onLost, log),
  onLost,
});

describe('LeaseKeeper', () => {
  it('renews every third of the TTL and keeps the renewed lease and its fence', async () => {
    const renewLease = vi.fn(async (_job: string, held: Lease, ttlMs: number) => ({
      ...held,
      expiresAt: held.expiresAt + ttlMs,
    }));
    const { keeper } = keeperWith(renewLease);
    await vi.advanceTimersByTimeAsync(39_999);
    expect(renewLease).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(renewLease).toHaveBeenCalledWith('job', lease, 120_000);
    expect(keeper.lease.expiresAt).toBe(121_000);
    await vi.advanceTimersByTimeAsync(40_000);
    expect(renewLease).toHaveBeenLastCalledWith('job', { ...lease, expiresAt: 121_000 }, 120_000);
    expect(keeper.fence).toBe(7);
    keeper.stop();
  });

  it('renews at most once a second, however short the TTL', async () => {
    const renewLease = vi.fn(async (_job: string, held: Lease) => held);
    const { keeper } = keeperWith(renewLease, 300);
    await vi.advanceTimersByTimeAsync(999);
    expect(renewLease).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(renewLease).toHaveBeenCalledTimes(1);
    keeper.stop();
  });

  it('reports a lost lease so the run stops, and only warns when a renewal merely failed', async () => {
    const lost = new LeaseLostError('taken over');
    const renewLease = vi.fn().mockRejectedValueOnce(new Error('timeout')).mockRejectedValueOnce(lost);
    const { keeper, onLost } = keeperWith(renewLease, 3_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(onLost).not.toHaveBeenCalled();
    expect(log.warn).toHaveBeenCalledWith('lease renewal failed; retrying', {
      error: expect.stringContaining('timeout'),
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(onLost).toHaveBeenCalledWith(lost);
    expect(log.error).toHaveBeenCalledWith('lease lost; stopping', { jobId: 'job' });
    keeper.stop();
  });

  it('stops renewing once stopped', async () => {
    const renewLease = vi.fn(async (_job: string, held: Lease) => held);
    const { keeper } = keeperWith(renewLease, 3_000);
    keeper.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(renewLease).not.toHaveBeenCalled();
  });
});
