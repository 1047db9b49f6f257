import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StateStoreError } from '../../functions/core/errors.js';
import { releaseLeaseWithRetry } from '../../functions/core/state/release-lease.js';
import type { Lease } from '../../functions/core/state/state-store.js';

// Pauses take no real time: each one moves the (fake) clock on by its length, and is recorded. It still
// yields to the event loop, so a release that never stops retrying fails on the test timeout.
const { pauses } = vi.hoisted(() => ({ pauses: [] as number[] }));
vi.mock('node:timers/promises', () => ({
  setTimeout: async (ms: number) => {
    pauses.push(ms);
    vi.setSystemTime(Date.now() + ms);
    await new Promise((resolve) => setImmediate(resolve));
  },
}));

const lease: Lease = { owner: 'run', expiresAt: Date.parse('2026-01-01T00:02:00.000Z'), fence: 3 };
const unavailable = () =>
  new StateStoreError('state table "t": releaseLease (UpdateItem) failed: ECONNRESET', {
    table: 't',
    operation: 'releaseLease (UpdateItem)',
  });

/** A state table that fails the first `failures` releases, then answers. */
function table(failures = Number.POSITIVE_INFINITY) {
  let calls = 0;
  return {
    releaseLease: vi.fn(async () => {
      calls += 1;
      if (calls <= failures) throw unavailable();
    }),
  };
}

const log = () => ({ warn: vi.fn() });

describe('releaseLeaseWithRetry', () => {
  beforeEach(() => {
    pauses.length = 0;
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2026-01-01T00:00:00.000Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('releases at once when the table answers', async () => {
    const state = table(0);

    expect(await releaseLeaseWithRetry(state, 'job', lease, log())).toBe(true);
    expect(state.releaseLease).toHaveBeenCalledWith('job', lease);
    expect(pauses).toEqual([]);
  });

  it('retries a table that is briefly unavailable, backing off, and releases the lease', async () => {
    const state = table(2);
    const logger = log();

    expect(await releaseLeaseWithRetry(state, 'job', lease, logger)).toBe(true);
    expect(state.releaseLease).toHaveBeenCalledTimes(3);
    expect(pauses).toEqual([500, 1000]);
    expect(logger.warn).toHaveBeenCalledWith('lease not released; retrying', {
      jobId: 'job',
      retryInMs: 500,
      error: 'StateStoreError: state table "t": releaseLease (UpdateItem) failed: ECONNRESET',
    });
  });

  it('doubles the pause up to 5 s, gives up within 30 s, and logs that the lease expires by itself', async () => {
    const state = table();
    const logger = log();

    expect(await releaseLeaseWithRetry(state, 'job', lease, logger)).toBe(false);

    // Attempts at 0, 0.5, 1.5, 3.5, 7.5, 12.5, 17.5, 22.5 and 27.5 s; one more pause would pass 30 s.
    expect(pauses).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
    expect(state.releaseLease).toHaveBeenCalledTimes(9);
    expect(logger.warn).toHaveBeenLastCalledWith('lease not released; it expires by itself', {
      jobId: 'job',
      expiresAt: '2026-01-01T00:02:00.000Z',
      error: 'StateStoreError: state table "t": releaseLease (UpdateItem) failed: ECONNRESET',
    });
  });

  it('stops retrying a second before the invocation’s deadline, even within its window', async () => {
    const state = table();

    // 2.5 s left: retries until 1.5 s, so a pause that ends exactly then is still taken.
    const released = await releaseLeaseWithRetry(state, 'job', lease, log(), {
      remainingTimeMs: () => 2_500,
    });

    expect(released).toBe(false);
    expect(pauses).toEqual([500, 1000]);
  });

  it('retries for a shorter window when asked', async () => {
    const released = await releaseLeaseWithRetry(table(), 'job', lease, log(), { windowMs: 4_000 });

    expect(released).toBe(false);
    expect(pauses).toEqual([500, 1000, 2000]);
  });
});
