import { describe, expect, it } from 'vitest';
import { advanceProgress, drawProgress, ProgressDisplay } from '../../cli/draw-progress.js';
import type { SyncProgress } from '../../functions/core/run/sync-job.js';

const MiB = 1024 * 1024;

function snapshot(counts: Partial<SyncProgress>): SyncProgress {
  return { listed: 0, copied: 0, skipped: 0, failed: 0, bytes: 0, inFlight: 0, ...counts };
}

/** Feeds `updates` (time in ms, counts) through the pure state and draws the last. */
function drawAfter(updates: [number, Partial<SyncProgress>][], tty = true): string {
  let state: ReturnType<typeof advanceProgress> | undefined;
  let now = 0;
  for (const [at, counts] of updates) {
    state = advanceProgress(state, snapshot(counts), at);
    now = at;
  }
  if (!state) throw new Error('no updates');
  return drawProgress(state, now, { tty });
}

describe('drawProgress', () => {
  it('shows settled against listed keys, the rate in objects and bytes per second, and the ETA', () => {
    const line = drawAfter([
      [0, { listed: 1000 }],
      [2000, { listed: 1000, copied: 90, skipped: 10, bytes: 10 * MiB, inFlight: 16 }],
    ]);

    expect(line).toBe(
      '100/1,000 listed  10.0 MiB  50 obj/s  5.0 MiB/s  eta 18.0 s  (copied 90, skipped 10, failed 0, 16 in flight)',
    );
  });

  it('says the rate and ETA are not known yet before anything settled', () => {
    expect(drawAfter([[0, { listed: 10, inFlight: 4 }]])).toMatch(
      /^0\/10 listed {2}0 B {2}- obj\/s {2}- MiB\/s {2}eta - {2}\(.*4 in flight\)$/,
    );
  });

  it('never shows a count lower than one it showed before', () => {
    const line = drawAfter([
      [0, { listed: 500, copied: 40, bytes: 4000 }],
      [1000, { listed: 300, copied: 10, bytes: 100 }],
    ]);

    expect(line).toMatch(/^40\/500 listed {2}3\.9 KiB .*\(copied 40,/);
  });

  it('prefixes plain lines with the time since the run started', () => {
    expect(
      drawAfter(
        [
          [0, { listed: 3 }],
          [65_000, { listed: 3, copied: 3, bytes: 3 }],
        ],
        false,
      ),
    ).toMatch(/^progress 1m 05s: 3\/3 listed/);
  });
});

describe('ProgressDisplay', () => {
  it('on a terminal redraws one line in place, at most ten times a second, within the width', () => {
    const writes: string[] = [];
    const display = new ProgressDisplay((text) => writes.push(text), { tty: true, columns: 40 });

    for (let ms = 0; ms < 1000; ms += 1) display.update(snapshot({ listed: 1000, copied: ms }), ms);
    display.clear();

    expect(writes.length).toBeLessThanOrEqual(11);
    expect(writes.join('')).not.toContain('\n');
    for (const text of writes) {
      expect(text.startsWith('\r\x1b[K')).toBe(true);
      expect(text.length - '\r\x1b[K'.length).toBeLessThan(40);
    }
    expect(writes.at(-1)).toBe('\r\x1b[K');
  });

  it('off a terminal writes a plain line every five seconds, never a control character', () => {
    const writes: string[] = [];
    const display = new ProgressDisplay((text) => writes.push(text), { tty: false });

    for (let ms = 0; ms < 20_000; ms += 10) display.update(snapshot({ listed: 2000, copied: ms / 10 }), ms);
    display.clear();

    expect(writes).toHaveLength(3);
    for (const text of writes) {
      expect(text).toMatch(/^progress .*\n$/);
      expect(text).not.toContain('\r');
      expect(text).not.toContain('\x1b');
    }
    const copied = writes.map((text) => Number(/copied ([\d,]+)/.exec(text)?.[1]?.replaceAll(',', '')));
    expect(copied).toEqual([...copied].sort((a, b) => a - b));
  });
});
