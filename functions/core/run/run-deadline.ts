/*
 * The run's deadline: when to stop starting copies, and when to cut the ones in flight, so that the run
 * still has time to end normally (abort multipart uploads, save the checkpoint, publish the manifest,
 * metrics and event, release the lease) before Lambda's hard timeout. Both margins scale with the
 * function's timeout, so a short timeout still leaves most of the invocation for copying.
 */

/** Lambda's longest timeout; the margin used when the caller does not say how long the run may take. */
export const LAMBDA_MAX_TIMEOUT_MS = 900_000;

/** Margins for a function that may run `timeoutMs` in all. */
export interface DeadlineMargins {
  /** Start no new copy with less than this left: in-flight copies get this long to finish. */
  dispatchMs: number;
  /** Cut in-flight copies with less than this left: the time the run's ending needs. */
  abortMs: number;
}

/**
 * A quarter of the timeout for in-flight copies to finish, at least 10 s and at most 60 s (a 900-s
 * function stops dispatching at 60 s, as before; a 60-s one at 15 s, leaving 45 s to copy). A tenth for
 * the ending, 5 to 15 s: a handful of S3 and DynamoDB round trips, each bounded by CONTROL_TIMEOUTS.
 */
export function deadlineMargins(timeoutMs: number = LAMBDA_MAX_TIMEOUT_MS): DeadlineMargins {
  const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value));
  return {
    dispatchMs: clamp(timeoutMs / 4, 10_000, 60_000),
    abortMs: clamp(timeoutMs / 10, 5_000, 15_000),
  };
}

/** How often the remaining time is checked against the abort margin; a second is small beside 5 s. */
const DEADLINE_POLL_MS = 1_000;

/**
 * A signal that aborts when `outer` does (middy's, Ctrl-C) or when `remainingTimeMs()` falls below
 * `abortMs`. `dispose` stops watching the clock.
 */
export function deadlineSignal(
  abortMs: number,
  remainingTimeMs?: () => number,
  outer?: AbortSignal,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onOuter = () => controller.abort(outer?.reason);
  if (outer?.aborted) onOuter();
  // Stryker disable next-line ObjectLiteral,BooleanLiteral: a signal fires 'abort' once; `once` only drops the listener sooner
  outer?.addEventListener('abort', onOuter, { once: true });
  const check = () => {
    if (remainingTimeMs && remainingTimeMs() < abortMs) controller.abort(new Error('deadline near'));
  };
  check();
  const timer = remainingTimeMs ? setInterval(check, DEADLINE_POLL_MS) : undefined;
  timer?.unref();
  return {
    signal: controller.signal,
    dispose: () => {
      clearInterval(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}
