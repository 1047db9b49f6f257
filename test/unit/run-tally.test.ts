import { afterEach, describe, expect, it, vi } from 'vitest';
import { RunTally } from '../../functions/core/report/run-tally.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';

const STARTED = '2024-05-01T10:00:00.000Z';
const at = (iso: string) => Date.parse(iso);

describe('RunTally', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts every count at zero', () => {
    // Act
    const tally = new RunTally(STARTED);

    // Assert
    expect(tally.progress).toEqual({ listed: 0, copied: 0, skipped: 0, failed: 0, bytes: 0, inFlight: 0 });
    expect(tally.counts).toEqual({ vanished: 0, archived: 0, deleted: 0, deferred: 0 });
    expect(tally.list).toEqual({ listRequests: 0 });
    expect(tally.backlog).toEqual({ objects: 0, bytes: 0 });
    expect(tally.failures).toEqual([]);
    expect(tally.vanishedKeys).toEqual([]);
    expect(tally.archivedKeys).toEqual([]);
    expect(tally.replicationLagSeconds(at(STARTED) + 60_000)).toBe(0);
  });

  it('counts listed, skipped, copied (with their bytes) and deleted objects up', () => {
    // Arrange
    const tally = new RunTally(STARTED);

    // Act
    tally.countListed();
    tally.countListed();
    tally.countSkipped();
    tally.countCopied(10);
    tally.countCopied(5);
    tally.countDeleted();

    // Assert
    expect(tally.progress).toMatchObject({ listed: 2, skipped: 1, copied: 2, bytes: 15, failed: 0 });
    expect(tally.counts.deleted).toBe(1);
  });

  it('tracks the slots in flight as tasks take and hand them back', () => {
    // Arrange
    const tally = new RunTally(STARTED);

    // Act
    tally.countInFlight(1);
    tally.countInFlight(1);
    tally.countInFlight(-1);

    // Assert
    expect(tally.progress.inFlight).toBe(1);
  });

  it('lists the first 20 archived, vanished and failed keys in order and counts them all', () => {
    // Arrange
    const tally = new RunTally(STARTED);
    const keys = Array.from({ length: 21 }, (_, i) => `key-${i}`);

    // Act
    for (const key of keys) {
      tally.countArchived(key);
      tally.countVanished(key, 'deleted at the source');
      tally.countFailed(key, 'AccessDenied', 1, STARTED);
    }

    // Assert
    expect(tally.counts.archived).toBe(21);
    expect(tally.counts.vanished).toBe(21);
    expect(tally.progress.failed).toBe(21);
    expect(tally.archivedKeys).toEqual(keys.slice(0, 20));
    expect(tally.vanishedKeys).toEqual(
      keys.slice(0, 20).map((key) => ({ key, reason: 'deleted at the source' })),
    );
    expect(tally.failures).toEqual(keys.slice(0, 20).map((key) => ({ key, reason: 'AccessDenied' })));
  });

  it('adds failed and deferred objects, and their bytes, to the backlog', () => {
    // Arrange
    const tally = new RunTally(STARTED);

    // Act
    tally.countFailed('a', 'boom', 100, STARTED);
    tally.countDeferred(50, STARTED);
    tally.countDeferred(7, STARTED);

    // Assert
    expect(tally.backlog).toEqual({ objects: 3, bytes: 157 });
    expect(tally.counts.deferred).toBe(2);
    expect(tally.progress.failed).toBe(1);
  });

  it('measures the lag from the earliest first sighting among the keys left uncopied, whatever their order', () => {
    // Arrange
    const tally = new RunTally(STARTED);
    const now = at('2024-05-01T12:00:00.000Z');

    // Act
    tally.countDeferred(1, '2024-05-01T11:00:00.000Z');
    tally.countFailed('old', 'boom', 1, '2024-05-01T09:00:00.000Z');
    tally.countDeferred(1, '2024-05-01T11:30:00.000Z');

    // Assert
    expect(tally.replicationLagSeconds(now)).toBe(3 * 3600);
  });

  it('rounds the lag to the nearest second and never reports a negative one', () => {
    // Arrange
    const tally = new RunTally(STARTED);
    tally.countDeferred(1, STARTED);

    // Act & Assert
    expect(tally.replicationLagSeconds(at(STARTED) + 1_499)).toBe(1);
    expect(tally.replicationLagSeconds(at(STARTED) + 1_500)).toBe(2);
    expect(tally.replicationLagSeconds(at(STARTED) - 5_000)).toBe(0);
  });

  it('measures the lag until now when no time is given', () => {
    // Arrange
    vi.useFakeTimers({ now: at(STARTED) + 42_000 });
    const tally = new RunTally(STARTED);
    tally.countDeferred(1, STARTED);

    // Act & Assert
    expect(tally.replicationLagSeconds()).toBe(42);
  });

  it("dates a key's first sighting from the ledger, else from this run's start", () => {
    // Arrange
    const tally = new RunTally(STARTED);
    const previous = { firstSeenAt: '2024-04-01T00:00:00.000Z' } as LedgerEntry;

    // Act & Assert
    expect(tally.firstSeen(previous)).toBe('2024-04-01T00:00:00.000Z');
    expect(tally.firstSeen({} as LedgerEntry)).toBe(STARTED);
    expect(tally.firstSeen(undefined)).toBe(STARTED);
  });

  it('starts the run now when no start is given', () => {
    // Arrange
    vi.useFakeTimers({ now: at(STARTED) });

    // Act
    const tally = new RunTally();

    // Assert
    expect(tally.runStartedAt).toBe(STARTED);
    expect(tally.firstSeen(undefined)).toBe(STARTED);
  });
});
