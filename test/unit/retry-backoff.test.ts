/**
 * The pause between object attempts: full jitter over a window that doubles each attempt. The sleep is
 * replaced by a recorder, so the schedule is read exactly, with no clock involved.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { retryObjectCopy } from '../../functions/core/copy/retry.js';
import { IntegrityError } from '../../functions/core/errors.js';

vi.mock('node:timers/promises', () => ({ setTimeout: vi.fn(async () => undefined) }));

describe('retryObjectCopy backoff', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.mocked(sleep).mockClear();
  });

  it('waits a random share of base × 2^(attempt − 1) before each retry, 200 ms by default', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const failing = () => Promise.reject(new IntegrityError('mismatch'));

    await expect(retryObjectCopy(failing, { attempts: 4 })).rejects.toThrow(IntegrityError);

    expect(vi.mocked(sleep).mock.calls.map(([ms]) => ms)).toEqual([100, 200, 400]);
  });

  it('scales the window with baseBackoffMs and draws the jitter afresh each time', async () => {
    vi.spyOn(Math, 'random').mockReturnValueOnce(0.25).mockReturnValueOnce(1);
    const failing = () => Promise.reject(new IntegrityError('mismatch'));

    await expect(retryObjectCopy(failing, { attempts: 3, baseBackoffMs: 40 })).rejects.toThrow(
      IntegrityError,
    );

    expect(vi.mocked(sleep).mock.calls.map(([ms]) => ms)).toEqual([10, 80]);
  });
});
