import type { SyncProgress } from '../functions/core/run/sync-job.js';
import { formatBytes, formatDuration } from './format-output.js';

/** A run reports progress once per object, far more often than a person reads: ≤ 10 redraws a second. */
const REDRAW_INTERVAL_MS = 100;
/** Off a terminal (a log file, CI) each draw is a new line: one every few seconds keeps the log short. */
const PLAIN_LINE_INTERVAL_MS = 5000;
/** The rate is measured over the last few seconds, so it follows a run that speeds up or slows down. */
const RATE_WINDOW_MS = 5000;
/** A sample at most this often bounds the window to 20 samples however many objects settle. */
const SAMPLE_INTERVAL_MS = 250;
/** Below this a rate is noise (the first few copies all finish at once). */
const MIN_RATE_SPAN_MS = 1000;
const CLEAR_LINE = '\r\x1b[K';

interface Sample {
  at: number;
  settled: number;
  bytes: number;
}

/** What the display has seen of a run: counts never lower than shown before, and recent samples. */
export interface ProgressState {
  startedAt: number;
  shown: SyncProgress;
  samples: Sample[];
}

const settledOf = (p: SyncProgress) => p.copied + p.skipped + p.failed;

/**
 * The state after one more progress report. Pure. Each count only grows (the largest seen is kept), so
 * a report that arrives late never makes the display go backwards; `inFlight` is shown as reported.
 */
export function advanceProgress(
  state: ProgressState | undefined,
  progress: SyncProgress,
  now: number,
): ProgressState {
  const before = state?.shown;
  const max = (name: Exclude<keyof SyncProgress, 'inFlight'>) =>
    Math.max(before?.[name] ?? 0, progress[name]);
  const shown: SyncProgress = {
    listed: max('listed'),
    copied: max('copied'),
    skipped: max('skipped'),
    failed: max('failed'),
    bytes: max('bytes'),
    inFlight: progress.inFlight,
  };
  const samples = state?.samples ?? [];
  const last = samples.at(-1);
  if (last !== undefined && now - last.at < SAMPLE_INTERVAL_MS) return { ...(state as ProgressState), shown };
  const kept = samples.filter((sample) => sample.at >= now - RATE_WINDOW_MS);
  return {
    startedAt: state?.startedAt ?? now,
    shown,
    samples: [...kept, { at: now, settled: settledOf(shown), bytes: shown.bytes }],
  };
}

/**
 * One progress line, e.g. `1,200/3,000 listed  1.1 GiB  85 obj/s  80.2 MiB/s  eta 21.2 s  (copied 1,150,
 * skipped 40, failed 10, 16 in flight)`. The listing streams a page ahead of the copies and its end is not
 * known until it comes, so settled keys are counted against keys listed so far, and the ETA is for those.
 * Off a terminal (`tty: false`) the line starts with the time since the run began.
 */
export function drawProgress(
  state: ProgressState,
  now: number,
  options: { tty: boolean; columns?: number },
): string {
  const { shown } = state;
  const settled = settledOf(shown);
  const first = state.samples[0];
  const span = first === undefined ? 0 : now - first.at;
  const known = first !== undefined && span >= MIN_RATE_SPAN_MS;
  const objectsPerSecond = known ? ((settled - first.settled) * 1000) / span : undefined;
  const bytesPerSecond = known ? ((shown.bytes - first.bytes) * 1000) / span : undefined;
  const remaining = shown.listed - settled;
  const eta =
    objectsPerSecond !== undefined && objectsPerSecond > 0 && remaining > 0
      ? formatDuration((remaining / objectsPerSecond) * 1000)
      : '-';
  // What matters first, so a narrow terminal cuts the details, not the rate or the ETA.
  const line =
    `${count(settled)}/${count(shown.listed)} listed  ${formatBytes(shown.bytes)}  ` +
    `${objectsPerSecond === undefined ? '-' : count(Math.round(objectsPerSecond))} obj/s  ` +
    `${bytesPerSecond === undefined ? '- MiB' : formatBytes(Math.round(bytesPerSecond))}/s  eta ${eta}  ` +
    `(copied ${count(shown.copied)}, skipped ${count(shown.skipped)}, failed ${count(shown.failed)}, ` +
    `${shown.inFlight} in flight)`;
  if (!options.tty) return `progress ${formatDuration(now - state.startedAt)}: ${line}`;
  // A line wider than the terminal wraps, and `\r` then redraws only its last row.
  return options.columns === undefined ? line : line.slice(0, Math.max(0, options.columns - 1));
}

function count(value: number): string {
  return value.toLocaleString('en-US');
}

/**
 * The progress of a run on stderr: on a terminal one line redrawn in place (carriage return, clear line,
 * no line end); otherwise a plain line every few seconds. `write` must not add a line end of its own.
 */
export class ProgressDisplay {
  #state: ProgressState | undefined;
  #lastDrawAt: number | undefined;
  #shown = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly options: { tty: boolean; columns?: number },
  ) {}

  update(progress: SyncProgress, now = Date.now()): void {
    this.#state = advanceProgress(this.#state, progress, now);
    const since = this.#lastDrawAt ?? (this.options.tty ? undefined : this.#state.startedAt);
    const interval = this.options.tty ? REDRAW_INTERVAL_MS : PLAIN_LINE_INTERVAL_MS;
    if (since !== undefined && now - since < interval) return;
    this.#lastDrawAt = now;
    const line = drawProgress(this.#state, now, this.options);
    if (this.options.tty) {
      this.#shown = true;
      this.write(`${CLEAR_LINE}${line}`);
    } else {
      this.write(`${line}\n`);
    }
  }

  /** Wipes the line on a terminal, so a log message or the summary starts on a clean line. */
  clear(): void {
    if (!this.#shown) return;
    this.write(CLEAR_LINE);
    this.#shown = false;
    // The next update redraws at once, restoring the line the log message wiped.
    this.#lastDrawAt = undefined;
  }
}
