import { describe, expect, it, vi } from 'vitest';
import { IntegrityError, ObjectCopyError } from '../../functions/core/errors.js';
import { retryObjectCopy } from '../../functions/core/retry.js';

describe('retryObjectCopy', () => {
  it('retries a retryable failure such as a checksum mismatch, then succeeds', async () => {
    const task = vi
      .fn()
      .mockRejectedValueOnce(new IntegrityError('mismatch'))
      .mockResolvedValueOnce('copied');

    await expect(retryObjectCopy(task, { baseBackoffMs: 1 })).resolves.toBe('copied');
    expect(task).toHaveBeenCalledTimes(2);
  });

  it('gives up after the last attempt and throws the last error', async () => {
    const task = vi.fn().mockRejectedValue(new ObjectCopyError('throttled'));

    await expect(retryObjectCopy(task, { attempts: 3, baseBackoffMs: 1 })).rejects.toThrow('throttled');
    expect(task).toHaveBeenCalledTimes(3);
  });

  it('does not retry what retrying cannot fix, such as a foreign destination object', async () => {
    const task = vi.fn().mockRejectedValue(new ObjectCopyError('foreign', { retryable: false }));

    await expect(retryObjectCopy(task, { baseBackoffMs: 1 })).rejects.toThrow('foreign');
    expect(task).toHaveBeenCalledTimes(1);
  });

  it('stops retrying once the run is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const task = vi.fn().mockRejectedValue(new ObjectCopyError('network'));

    await expect(retryObjectCopy(task, { signal: controller.signal, baseBackoffMs: 1 })).rejects.toThrow(
      'network',
    );
    expect(task).toHaveBeenCalledTimes(1);
  });
});
