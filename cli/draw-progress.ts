import type { SyncProgress } from '../functions/core/run/sync-job.js';
import { formatBytes } from './format-output.js';

/** Redraw at most this often: a run reports progress once per object, far more often than a person reads. */
const REDRAW_INTERVAL_MS = 100;
const BAR_WIDTH = 24;

/**
 * One line of progress, e.g. `[########----------------]  120/300 listed  copied 40 ...`. The total is
 * unknown while the listing streams, so the bar shows settled keys against keys listed so far.
 */
export function drawProgress(progress: SyncProgress): string {
  const settled = progress.copied + progress.skipped + progress.failed;
  const filled = progress.listed === 0 ? 0 : Math.round((BAR_WIDTH * settled) / progress.listed);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  return (
    `${bar} ${settled}/${progress.listed} listed  copied ${progress.copied}  skipped ${progress.skipped}` +
    `  failed ${progress.failed}  ${formatBytes(progress.bytes)}  in flight ${progress.inFlight}`
  );
}

/** A progress line redrawn in place on a terminal stream (stderr). */
export class ProgressLine {
  #last = 0;
  #shown = false;

  constructor(private readonly write: (text: string) => void) {}

  update(progress: SyncProgress, now = Date.now()): void {
    if (now - this.#last < REDRAW_INTERVAL_MS) return;
    this.#last = now;
    this.#shown = true;
    this.write(`\r\x1b[K${drawProgress(progress)}`);
  }

  /** Wipes the line, so a log message or the summary starts on a clean line. */
  clear(): void {
    if (!this.#shown) return;
    this.write('\r\x1b[K');
    this.#shown = false;
    this.#last = 0;
  }
}
