import { describe, expect, it } from 'vitest';
import { EVENT_GRACE_MS, eventWindow, missedByEvents } from '../../functions/core/events/missed-by-events.js';
import type { PlanStep } from '../../functions/core/plan/plan.js';

const passStart = new Date('2026-12-03T12:00:00.000Z');
const lastPassEnd = '2026-12-02T12:00:00.000Z';

function copy(lastModified: string, previous?: Extract<PlanStep, { action: 'copy' }>['previous']): PlanStep {
  return {
    action: 'copy',
    reason: previous ? 'changed' : 'new',
    object: {
      key: 'k',
      etag: '"e"',
      size: 1,
      lastModified: new Date(lastModified),
      storageClass: 'STANDARD',
    },
    ...(previous && { previous }),
  };
}

describe('eventWindow', () => {
  it('runs from the last complete pass to the pass start less the grace for events on the way', () => {
    expect(eventWindow(lastPassEnd, passStart)).toEqual({
      from: new Date(lastPassEnd),
      to: new Date(passStart.getTime() - EVENT_GRACE_MS),
    });
    expect(EVENT_GRACE_MS).toBe(15 * 60_000);
  });

  it('judges nothing on a job’s first pass (its backfill) or when the grace covers the whole interval', () => {
    expect(eventWindow(undefined, passStart)).toBeUndefined();
    expect(eventWindow('2026-12-03T11:50:00.000Z', passStart)).toBeUndefined();
    expect(eventWindow('2026-12-03T11:50:00.000Z', passStart, 0)).toBeDefined();
  });
});

describe('missedByEvents', () => {
  const window = eventWindow(lastPassEnd, passStart);

  it('counts a new or changed object modified inside the window', () => {
    expect(missedByEvents(copy('2026-12-03T08:00:00.000Z'), window)).toBe(true);
    expect(missedByEvents(copy('2026-12-03T08:00:00.000Z', { key: 'k', etag: '"old"' }), window)).toBe(true);
    // The window's end is inclusive, its start is not (the last pass saw what it finished with).
    expect(missedByEvents(copy('2026-12-03T11:45:00.000Z'), window)).toBe(true);
    expect(missedByEvents(copy(lastPassEnd), window)).toBe(false);
  });

  it('does not count a change whose event may still be on the way, or one older than the last pass', () => {
    expect(missedByEvents(copy('2026-12-03T11:50:00.000Z'), window)).toBe(false);
    expect(missedByEvents(copy('2026-12-01T08:00:00.000Z'), window)).toBe(false);
  });

  it('does not count a key whose event was delivered and failed (the ledger records the failure)', () => {
    const failed = { key: 'k', failure: { reason: 'SlowDown', attempts: 1, at: lastPassEnd } };
    expect(missedByEvents(copy('2026-12-03T08:00:00.000Z', failed), window)).toBe(false);
  });

  it('counts nothing without a window, and no step but a copy', () => {
    expect(missedByEvents(copy('2026-12-03T08:00:00.000Z'), undefined)).toBe(false);
    const object = {
      key: 'k',
      etag: '"e"',
      size: 1,
      lastModified: new Date('2026-12-03T08:00:00.000Z'),
      storageClass: 'STANDARD',
    };
    expect(missedByEvents({ action: 'unchanged', object }, window)).toBe(false);
    expect(missedByEvents({ action: 'deleted', entry: { key: 'k', etag: '"e"' } }, window)).toBe(false);
  });
});
