/**
 * What a first pass's pages show of the key space between its probes (first-pass-splits.ts): where a page
 * filled before the next probe and left a stretch unlisted, listing on into those stretches, and which
 * stretches the pages showed to hold no key.
 */
import { compareKeys } from './keys.js';
import type { SourcePage, SourcePages } from './source-pages.js';

/** One page of the search, listed `StartAfter` its point (none for the first page). */
export interface Probe {
  after: string | undefined;
  page: SourcePage;
}

/**
 * Where the keys after probe `index`'s page were not listed: its last key, when the page filled before the
 * next probe (or, for the last probe, before the listing's end). A page that reached the next probe, or
 * ended the listing, leaves no gap.
 */
export function gapAfter(probes: readonly Probe[], index: number): string | undefined {
  const page = probes[index]?.page;
  const end = page?.keys.at(-1);
  if (!page?.truncated || end === undefined) return undefined;
  const upTo = probes[index + 1]?.after;
  return upTo === undefined || compareKeys(end, upTo) < 0 ? end : undefined;
}

/**
 * Lists on from where each gap begins, one page per gap per round, while requests are left: a source the
 * budget can read through (20,000 keys in pages of 1,000) is then counted exactly, and cut every
 * `keysPerShard` keys as a ledger would be, instead of around stretches the probes guessed at. Round by
 * round, so a dense stretch of a large bucket does not take every request.
 */
export async function fillGaps(pages: SourcePages, prefix: string, probes: Probe[]): Promise<void> {
  while (pages.left > 0) {
    const open = probes.filter((_, index) => gapAfter(probes, index) !== undefined);
    if (open.length === 0) return;
    for (const probe of open) {
      const index = probes.indexOf(probe);
      const after = gapAfter(probes, index);
      if (after === undefined) continue;
      const page = await pages.page({ prefix, startAfter: after });
      if (!page) return;
      probes.splice(index + 1, 0, { after, page });
    }
  }
}

/**
 * `cuts` (sorted, each once) less those that would close a shard the pages showed to hold no key: one inside
 * the stretch between a probe's point and its page's first key, or past the listing's last key. Dropping a
 * cut joins its shard to the next, so the ranges still cover every key.
 */
export function withoutEmptyShards(cuts: readonly string[], probes: readonly Probe[]): string[] {
  // Open intervals of the key space known to hold no key; an absent bound is unbounded.
  const empty = probes.flatMap(({ after, page }): { after?: string; before?: string }[] => {
    const first = page.keys[0];
    const last = page.keys.at(-1);
    if (first === undefined || last === undefined) return page.truncated ? [] : [{ after }];
    return [{ after, before: first }, ...(page.truncated ? [] : [{ after: last }])];
  });
  const isEmpty = (low: string | undefined, high: string | undefined) =>
    empty.some(
      (gap) =>
        (gap.after === undefined || (low !== undefined && compareKeys(low, gap.after) >= 0)) &&
        (gap.before === undefined || (high !== undefined && compareKeys(high, gap.before) < 0)),
    );
  const kept: string[] = [];
  for (const cut of [...new Set(cuts)].sort(compareKeys)) if (!isEmpty(kept.at(-1), cut)) kept.push(cut);
  while (kept.length > 0 && isEmpty(kept.at(-1), undefined)) kept.pop();
  return kept;
}
