/**
 * Small helpers for the copy room's single PutObject: the body gathered whole, and a wait the deadline
 * cuts short.
 */

/** Every byte of `body`, once it has ended (a body that fails, such as a VerifyStream, rejects instead). */
export async function readWhole(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  // Stryker disable next-line ConditionalExpression: Buffer.concat of one chunk is a copy of the same bytes
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/**
 * `work`, or an AbortError as soon as `signal` fires, whichever comes first; the listener is removed
 * either way, so a long run's signal does not gather one per object.
 */
export async function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  // The work may still settle (or fail) after the abort, or after a signal that had already fired refused
  // it: its outcome is no longer anyone's, so a late failure must not surface as an unhandled rejection.
  Promise.resolve(work).catch(() => {});
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(Object.assign(new Error('aborted at the deadline'), { name: 'AbortError' }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort as () => void);
  }
}
