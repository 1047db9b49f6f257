import { describe, expect, it } from 'vitest';
import type { SourceObject } from '../../functions/core/plan/list-source.js';
import { planSteps } from '../../functions/core/plan/plan.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';

async function* stream<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

const LAST_MODIFIED = '2020-01-01T00:00:00.000Z';
const object = (key: string, etag = `"${key}"`, size = 1, storageClass = 'STANDARD'): SourceObject => ({
  key,
  etag,
  size,
  lastModified: new Date(LAST_MODIFIED),
  storageClass,
});
/** What the ledger holds after copying `object(key)`. */
const copied = (key: string, etag = `"${key}"`, size = 1) => ({
  key,
  etag,
  size,
  lastModified: LAST_MODIFIED,
});

async function plan(source: SourceObject[], ledger: LedgerEntry[]) {
  const steps = [];
  for await (const step of planSteps(stream(source), stream(ledger))) {
    const key = step.action === 'deleted' ? step.entry.key : step.object.key;
    steps.push(`${step.action}${step.action === 'copy' ? `:${step.reason}` : ''} ${key}`);
  }
  return steps;
}

describe('planSteps', () => {
  it('copies new keys, skips unchanged ones and reports keys gone from the source', async () => {
    const steps = await plan(
      [object('a'), object('b'), object('d')],
      [copied('a'), copied('c'), copied('d')],
    );
    expect(steps).toEqual(['unchanged a', 'copy:new b', 'deleted c', 'unchanged d']);
  });

  it('copies a same-size rewrite, which has a new ETag', async () => {
    expect(await plan([object('a', '"new"', 5)], [{ key: 'a', etag: '"old"', size: 5 }])).toEqual([
      'copy:changed a',
    ]);
  });

  it('copies a key whose size changed even if the ETag did not', async () => {
    expect(await plan([object('a', '"x"', 6)], [{ key: 'a', etag: '"x"', size: 5 }])).toEqual([
      'copy:changed a',
    ]);
  });

  it('copies a multipart object whatever its LastModified says', async () => {
    // LastModified plays no part: a multipart upload started before the last run still has a new ETag.
    const old = { ...object('big', '"abc-3"', 20), lastModified: new Date('1999-01-01') };
    expect(await plan([old], [{ key: 'big', etag: '"prev-3"', size: 20 }])).toEqual(['copy:changed big']);
  });

  it('retries a key whose last attempt failed', async () => {
    const failed = { key: 'a', failure: { reason: 'x', attempts: 1, at: '', etag: '"a"' } };
    expect(await plan([object('a')], [failed])).toEqual(['copy:retry a']);
  });

  it('reports Glacier objects instead of copying them', async () => {
    expect(
      await plan([object('cold', '"c"', 1, 'DEEP_ARCHIVE'), object('ir', '"i"', 1, 'GLACIER_IR')], []),
    ).toEqual(['archived cold', 'copy:new ir']);
  });

  it('merges in UTF-8 byte order, where JavaScript string order differs', async () => {
    // Sorted by bytes: 'a！' (EF BC 81) comes before 'a😀' (F0 9F 98 80).
    const steps = await plan([object('a！'), object('a😀')], [copied('a😀')]);
    expect(steps).toEqual(['copy:new a！', 'unchanged a😀']);
  });

  it('refuses a listing that is out of order rather than copying the wrong set', async () => {
    await expect(plan([object('b'), object('a')], [])).rejects.toThrow(/out of order/);
  });
});
