import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  deadlineMargins,
  deadlineSignal,
  LAMBDA_MAX_TIMEOUT_MS,
} from '../../functions/core/run/run-deadline.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('deadlineMargins', () => {
  it('gives in-flight copies a quarter of the timeout and the ending a tenth, within their bounds', () => {
    expect(deadlineMargins(200_000)).toEqual({ dispatchMs: 50_000, abortMs: 15_000 });
    expect(deadlineMargins(100_000)).toEqual({ dispatchMs: 25_000, abortMs: 10_000 });
    expect(deadlineMargins(60_000)).toEqual({ dispatchMs: 15_000, abortMs: 6_000 });
  });

  it('keeps at least 10 s and 5 s for a short function, at most 60 s and 15 s for a long one', () => {
    expect(deadlineMargins(20_000)).toEqual({ dispatchMs: 10_000, abortMs: 5_000 });
    expect(deadlineMargins(LAMBDA_MAX_TIMEOUT_MS)).toEqual({ dispatchMs: 60_000, abortMs: 15_000 });
    expect(deadlineMargins()).toEqual(deadlineMargins(900_000));
  });
});

describe('deadlineSignal', () => {
  it('aborts at once when less than the margin is left, with a reason that says so', () => {
    const { signal, dispose } = deadlineSignal(5_000, () => 4_999);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('deadline near');
    dispose();
  });

  it('does not abort with exactly the margin left, and aborts on the next check once below it', () => {
    vi.useFakeTimers();
    let remaining = 5_000;
    const { signal, dispose } = deadlineSignal(5_000, () => remaining);
    expect(signal.aborted).toBe(false);
    remaining = 4_000;
    vi.advanceTimersByTime(999);
    expect(signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(signal.aborted).toBe(true);
    dispose();
  });

  it('stops watching the clock and the outer signal once disposed', () => {
    vi.useFakeTimers();
    let remaining = 60_000;
    const outer = new AbortController();
    const { signal, dispose } = deadlineSignal(5_000, () => remaining, outer.signal);
    dispose();
    remaining = 0;
    vi.advanceTimersByTime(5_000);
    outer.abort(new Error('ctrl-c'));
    expect(signal.aborted).toBe(false);
  });

  it("follows the outer signal, already aborted or aborted later, with the outer signal's reason", () => {
    const early = new AbortController();
    early.abort(new Error('stopped before'));
    expect(deadlineSignal(5_000, undefined, early.signal).signal.reason).toEqual(new Error('stopped before'));

    const later = new AbortController();
    const { signal, dispose } = deadlineSignal(5_000, () => 60_000, later.signal);
    expect(signal.aborted).toBe(false);
    later.abort(new Error('ctrl-c'));
    expect(signal.reason).toEqual(new Error('ctrl-c'));
    dispose();
  });

  it('never aborts on its own without a clock to watch', () => {
    vi.useFakeTimers();
    const { signal } = deadlineSignal(5_000);
    vi.advanceTimersByTime(3_600_000);
    expect(signal.aborted).toBe(false);
  });
});
