import { describe, expect, it } from 'vitest';
import { InterruptedWrites, mergeUnrecorded } from '../../functions/core/state/interrupted-writes.js';
import type { StateStore, UploadIntent } from '../../functions/core/state/state-store.js';

const T1 = '2026-01-01T00:00:00.000Z';
const T2 = '2026-01-02T00:00:00.000Z';

/** A state table holding `intents`, in the order a Query returns them. */
const table = (intents: UploadIntent[]) =>
  ({ readUploadIntents: async () => intents }) as unknown as StateStore;

describe('InterruptedWrites', () => {
  it('knows each announced key with its size and time, and the intents to delete', async () => {
    const writes = new InterruptedWrites();

    await writes.read(
      table([
        { id: 'intent#r1#000001', since: T1, objects: [{ key: 'a', size: 1 }] },
        { id: 'intent#r1#000002', since: T2, objects: [{ key: 'b', size: 2 }] },
      ]),
      'job',
    );

    expect(writes.get('a')).toEqual({ sizes: [1], since: T1 });
    expect(writes.get('b')).toEqual({ sizes: [2], since: T2 });
    expect(writes.get('c')).toBeUndefined();
    expect(writes.intentIds).toEqual(['intent#r1#000001', 'intent#r1#000002']);
  });

  it('keeps every size from the earliest time when two dead runs announced the same key', async () => {
    // Run 1 uploaded 10 bytes at "k" and died; run 2 announced the new 20-byte version and died before
    // uploading it. The destination holds run 1's write, which run 2's intent alone would call foreign.
    const writes = new InterruptedWrites();

    await writes.read(
      table([
        { id: 'intent#r1#000001', since: T1, objects: [{ key: 'k', size: 10 }] },
        { id: 'intent#r2#000001', since: T2, objects: [{ key: 'k', size: 20 }] },
      ]),
      'job',
    );

    expect(writes.get('k')).toEqual({ sizes: [10, 20], since: T1 });
  });

  it('leaves unresolved only the announced keys the pass did not meet', async () => {
    const writes = new InterruptedWrites();
    await writes.read(
      table([{ id: 'i', since: T1, objects: ['a', 'b', 'c'].map((key) => ({ key, size: 1 })) }]),
      'job',
    );

    writes.markSeen('b');

    expect([...writes.unresolvedKeys()]).toEqual(['a', 'c']);
  });
});

describe('mergeUnrecorded', () => {
  it('takes any size of either write, after the earlier of their times', () => {
    const later = { sizes: [1, 2], since: T2 };
    const earlier = { sizes: [2, 3], since: T1 };

    expect(mergeUnrecorded(later, earlier)).toEqual({ sizes: [1, 2, 3], since: T1 });
    expect(mergeUnrecorded(earlier, later)).toEqual({ sizes: [2, 3, 1], since: T1 });
  });

  it('returns the one write there is', () => {
    const write = { sizes: [1], since: T1 };

    expect(mergeUnrecorded(write, undefined)).toBe(write);
    expect(mergeUnrecorded(undefined, write)).toBe(write);
    expect(mergeUnrecorded()).toBeUndefined();
  });
});
