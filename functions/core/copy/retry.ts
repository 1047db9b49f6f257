import { setTimeout as sleep } from 'node:timers/promises';
import { isRefusedCredentials, ObjectCopyError } from '../errors.js';

/**
 * Tries per object within one run. The SDK already retries each request (throttling, 5xx) with backoff;
 * this covers failures it cannot see, such as a checksum mismatch or a body stream cut mid-transfer.
 */
export const OBJECT_ATTEMPTS = 3;
/** First pause between object attempts; doubled each time, with full jitter. */
const BASE_BACKOFF_MS = 200;

/** Credentials the task signs with, renewable when AWS refuses them (source-credentials.ts). */
export interface RenewableCredentials {
  generation(): number;
  renewAfterRefusal(generation: number): void;
}

/**
 * Runs `task` until it succeeds, fails for a reason retrying cannot fix, or runs out of attempts.
 *
 * When AWS refuses the credentials the task signed with (ExpiredToken, InvalidToken, … before their
 * stated expiry), they are renewed once and the task runs again at once, without using an attempt:
 * the same dead session would only fail every retry.
 */
export async function retryObjectCopy<T>(
  task: () => Promise<T>,
  options: {
    attempts?: number;
    signal?: AbortSignal;
    baseBackoffMs?: number;
    credentials?: RenewableCredentials;
  } = {},
): Promise<T> {
  const attempts = options.attempts ?? OBJECT_ATTEMPTS;
  const base = options.baseBackoffMs ?? BASE_BACKOFF_MS;
  const { credentials } = options;
  let renewed = false;
  for (let attempt = 1; ; ) {
    const generation = credentials?.generation();
    try {
      return await task();
    } catch (error) {
      if (credentials && generation !== undefined && !renewed && isRefusedCredentials(error)) {
        renewed = true;
        credentials.renewAfterRefusal(generation);
        continue;
      }
      const retryable = error instanceof ObjectCopyError && error.retryable;
      if (!retryable || attempt >= attempts || options.signal?.aborted) throw error;
      await sleep(Math.random() * base * 2 ** (attempt - 1));
      attempt += 1;
    }
  }
}
