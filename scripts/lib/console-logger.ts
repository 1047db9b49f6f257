import type { SyncLogger } from '../../functions/core/run/sync-job.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

/**
 * A readable logger for local commands: `level message key=value ...` on stderr, so stdout stays for
 * results (and `--json`). Lambda uses Powertools' JSON logger instead.
 */
export function consoleLogger(minimum: Level = 'info'): SyncLogger {
  const write =
    (level: Level) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      if (LEVELS.indexOf(level) < LEVELS.indexOf(minimum)) return;
      const fields = Object.entries(Object.assign({}, ...extra) as Record<string, unknown>)
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
      process.stderr.write(`${level.padEnd(5)} ${message}${fields.length ? `  ${fields.join(' ')}` : ''}\n`);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
