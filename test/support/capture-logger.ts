import type { SyncLogger } from '../../functions/core/run/sync-types.js';

/** One line a run logged: its level, its message, and its first field object. */
export interface LoggedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

/** A SyncLogger that keeps every line, so a test can assert what an operator would read. */
export function captureLogger(): SyncLogger & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const at =
    (level: LoggedLine['level']) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      lines.push({ level, message, fields: extra[0] ?? {} });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
