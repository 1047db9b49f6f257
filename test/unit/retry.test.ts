import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it, vi } from 'vitest';
import { retryObjectCopy } from '../../functions/core/copy/retry.js';
import { IntegrityError, ObjectCopyError } from '../../functions/core/errors.js';

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

  it('renews refused credentials once and tries the object again without using an attempt', async () => {
    const expired = new S3ServiceException({
      name: 'ExpiredToken',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message: 'The provided token has expired.',
    });
    const task = vi
      .fn()
      .mockRejectedValueOnce(new ObjectCopyError('GET failed', { cause: expired, retryable: false }))
      .mockResolvedValueOnce('copied');
    const credentials = { generation: () => 4, renewAfterRefusal: vi.fn() };

    await expect(retryObjectCopy(task, { attempts: 1, credentials })).resolves.toBe('copied');
    expect(credentials.renewAfterRefusal).toHaveBeenCalledExactlyOnceWith(4);
  });

  it('renews at most once per object', async () => {
    const refused = new ObjectCopyError('GET failed', {
      cause: Object.assign(new Error('bad token'), { name: 'InvalidToken' }),
      retryable: false,
    });
    const task = vi.fn().mockRejectedValue(refused);
    const credentials = { generation: () => 0, renewAfterRefusal: vi.fn() };

    await expect(retryObjectCopy(task, { attempts: 3, credentials, baseBackoffMs: 1 })).rejects.toBe(refused);
    expect(task).toHaveBeenCalledTimes(2);
    expect(credentials.renewAfterRefusal).toHaveBeenCalledTimes(1);
  });
});
