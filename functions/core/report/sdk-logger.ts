/**
 * What the SDK's HTTP handler warns through. It warns of what an operator should see (every socket of the
 * pool busy with requests queued behind them; a request over its timeout); by default to `console.warn`,
 * as bare lines the JSON log pipeline can neither parse nor filter. Given this logger, they are structured
 * lines of the sync's own logger, with its keys (service, job, request).
 *
 * Given to the handler, not the client: a client's logger is also called with every command's input and
 * output (`info`) and every failed command (`error`), a 404 or a refused conditional write included, and
 * those are the sync's control flow, reported by the sync itself.
 */
import { format } from 'node:util';
import type { SyncLogger } from '../run/sync-types.js';

/** The logger interface the SDK's handlers call (@smithy/types Logger). */
export interface SdkLogger {
  trace?: (...content: unknown[]) => void;
  debug: (...content: unknown[]) => void;
  info: (...content: unknown[]) => void;
  warn: (...content: unknown[]) => void;
  error: (...content: unknown[]) => void;
}

export function sdkLogger(logger: Pick<SyncLogger, 'warn' | 'error'>): SdkLogger {
  const ignore = () => {};
  return {
    trace: ignore,
    debug: ignore,
    info: ignore,
    warn: (...content) => logger.warn('AWS SDK warning', { sdkMessage: format(...content) }),
    error: (...content) => logger.error('AWS SDK error', { sdkMessage: format(...content) }),
  };
}
