/**
 * Each rule of the plan on its own: one field differs from the ledger and nothing else, so a rule that
 * stops working shows here instead of hiding behind another field that happened to differ too.
 */
import { describe, expect, it } from 'vitest';
import type { SourceObject } from '../../functions/core/plan/list-source.js';
import { planSteps } from '../../functions/core/plan/plan.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';

async function* stream<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

const AT = '2026-01-01T00:00:00.000Z';
const object = (key: string, extra: Partial<SourceObject> = {}): SourceObject => ({
  key,
  etag: '"e"',
  size: 10,
  lastModified: new Date(AT),
  storageClass: 'STANDARD',
  ...extra,
});
/** What the ledger holds after copying `object(key)`. */
const copied = (key: string, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({
  key,
  etag: '"e"',
  size: 10,
  lastModified: AT,
  ...extra,
});

async function plan(source: SourceObject[], ledger: LedgerEntry[]): Promise<string[]> {
  const steps: string[] = [];
  for await (const step of planSteps(stream(source), stream(ledger))) {
    const key = step.action === 'deleted' ? step.entry.key : step.object.key;
    steps.push(`${step.action}${step.action === 'copy' ? `:${step.reason}` : ''} ${key}`);
  }
  return steps;
}

describe('planSteps, one rule at a time', () => {
  it('skips a key whose ETag, size and LastModified all match the ledger', async () => {
    expect(await plan([object('a')], [copied('a')])).toEqual(['unchanged a']);
  });

  it('copies a key whose ETag alone changed', async () => {
    expect(await plan([object('a', { etag: '"f"' })], [copied('a')])).toEqual(['copy:changed a']);
  });

  it('copies a key whose size alone changed', async () => {
    expect(await plan([object('a', { size: 11 })], [copied('a')])).toEqual(['copy:changed a']);
  });

  it('copies a key whose LastModified alone changed (same bytes, rewritten with new metadata)', async () => {
    const rewritten = object('a', { lastModified: new Date('2026-01-01T00:00:01.000Z') });
    expect(await plan([rewritten], [copied('a')])).toEqual(['copy:changed a']);
  });

  it('reports keys gone from the source after the last listed key', async () => {
    expect(await plan([object('a')], [copied('a'), copied('b'), copied('c')])).toEqual([
      'unchanged a',
      'deleted b',
      'deleted c',
    ]);
  });

  it('reports GLACIER and DEEP_ARCHIVE objects as archived', async () => {
    const cold = [object('g', { storageClass: 'GLACIER' }), object('h', { storageClass: 'DEEP_ARCHIVE' })];
    expect(await plan(cold, [])).toEqual(['archived g', 'archived h']);
  });

  it('copies a restored GLACIER object like any other', async () => {
    const thawed = object('g', { storageClass: 'GLACIER', restored: true });
    expect(await plan([thawed], [])).toEqual(['copy:new g']);
    expect(await plan([{ ...thawed, etag: '"new"' }], [copied('g')])).toEqual(['copy:changed g']);
  });

  it('leaves an object copied before it was archived unchanged, and reports a newer version archived', async () => {
    const cold = object('g', { storageClass: 'DEEP_ARCHIVE' });
    expect(await plan([cold], [copied('g')])).toEqual(['unchanged g']);
    expect(await plan([{ ...cold, size: 11 }], [copied('g')])).toEqual(['archived g']);
    expect(
      await plan([cold], [copied('g', { etag: undefined, failure: { reason: 'x', attempts: 1, at: AT } })]),
    ).toEqual(['archived g']);
  });

  it('refuses a listing that repeats a key', async () => {
    await expect(plan([object('a'), object('a')], [])).rejects.toThrow(/out of order/);
  });
});
