import { setTimeout as sleep } from 'node:timers/promises';
import { ObjectCopyError } from './errors.js';

/**
 * Tries per object within one run. The SDK already retries each request (throttling, 5xx) with backoff;
 * this covers failures it cannot see, such as a checksum mismatch or a body stream cut mid-transfer.
 */
export const OBJECT_ATTEMPTS = 3;
/** First pause between object attempts; doubled each time, with full jitter. */
const BASE_BACKOFF_MS = 200;

/** Runs `task` until it succeeds, fails for a reason retrying cannot fix, or runs out of attempts. */
export async function retryObjectCopy<T>(
  task: () => Promise<T>,
  options: { attempts?: number; signal?: AbortSignal; baseBackoffMs?: number } = {},
): Promise<T> {
  const attempts = options.attempts ?? OBJECT_ATTEMPTS;
  const base = options.baseBackoffMs ?? BASE_BACKOFF_MS;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await task();
    } catch (error) {
      const retryable = error instanceof ObjectCopyError && error.retryable;
      if (!retryable || attempt >= attempts || options.signal?.aborted) throw error;
      await sleep(Math.random() * base * 2 ** (attempt - 1));
    }
  }
}
