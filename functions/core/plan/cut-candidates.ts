/**
 * Where a first pass looks for cut points (first-pass-splits.ts): the source's own folders, from delimiter
 * listings, and for a flat key space the strings that follow a known key at each of its characters.
 */
import { compareKeys } from './keys.js';
import type { SourcePages } from './source-pages.js';

/** Levels of folders below the job's prefix a walk descends: the top level and two more. */
const MAX_DESCENT = 2;

/**
 * The common prefixes (`a/`, `a/b/`, …) under `prefix`, top level first, descending a level only while
 * fewer than `want` were found and the next level's listings (one request per folder) fit in
 * `requests`. The top level is read page by page up to `maxCuts` prefixes, while its pages hold any.
 */
export async function folderCandidates(
  pages: SourcePages,
  prefix: string,
  limits: { want: number; requests: number; maxCuts: number },
): Promise<string[]> {
  const spentBefore = pages.requests;
  const left = () => limits.requests - (pages.requests - spentBefore);
  const found: string[] = [];
  let level = [prefix];
  for (let depth = 0; depth <= MAX_DESCENT && level.length > 0; depth += 1) {
    if (depth > 0 && (found.length >= limits.want || level.length > left())) break;
    const next: string[] = [];
    for (const folder of level) {
      let token: string | undefined;
      do {
        const page = await pages.page({ prefix: folder, delimiter: true, continuationToken: token });
        if (!page) return found.concat(next);
        next.push(...page.prefixes);
        // Only the top level is read past its first page (deeper, a first page is sample enough), and only
        // while its pages hold folders: a page of plain keys says the key space is flat, which the probes
        // sample far more cheaply than reading it through.
        token = depth === 0 && page.truncated && page.prefixes.length > 0 ? page.nextToken : undefined;
      } while (token && next.length < limits.maxCuts && left() > 0);
    }
    found.push(...next);
    level = next;
  }
  return found;
}

/**
 * Strings after a sample's last key that a flat key space may hold keys at. The sample (a first page, in
 * order) shows where its keys differ: at the first character its first and last keys do not share, and at
 * each character before it, the sample's last key up to there followed by each larger character of the
 * sample's alphabet. The shallowest jump far (`b`, `c` after `a…`), the deepest step just past the sample
 * (`part-1`, `part-2` after `part-0000` to `part-0999`); characters deeper than that are ones the sample
 * itself already spaced. At most `max`, the shallowest kept.
 */
export function successorCandidates(prefix: string, sample: readonly string[], max: number): string[] {
  const alphabet = [...new Set(sample.flatMap((key) => Array.from(key.slice(prefix.length))))].sort(
    compareKeys,
  );
  // Array.from splits by code point, so a character above U+FFFF is never cut in half.
  const first = Array.from((sample[0] ?? '').slice(prefix.length));
  const last = Array.from((sample.at(-1) ?? '').slice(prefix.length));
  let differ = 0;
  while (differ < last.length && first[differ] === last[differ]) differ += 1;
  const candidates: string[] = [];
  for (let i = 0; i <= differ && i < last.length && candidates.length < max; i += 1) {
    const stem = prefix + last.slice(0, i).join('');
    const at = last[i] ?? '';
    for (const character of alphabet) {
      if (candidates.length >= max) break;
      if (compareKeys(character, at) > 0) candidates.push(stem + character);
    }
  }
  return candidates;
}
