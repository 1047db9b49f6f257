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
 * `requests`. The top level is read page by page up to `maxCuts` prefixes.
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
        // Only the top level is read past its first page: deeper, a first page is sample enough.
        token = depth === 0 && page.truncated ? page.nextToken : undefined;
      } while (token && next.length < limits.maxCuts && left() > 0);
    }
    found.push(...next);
    level = next;
  }
  return found;
}

/**
 * Strings after `from` that a flat key space may hold keys at: for each character of `from` past the
 * prefix, shallowest first, `from`'s characters before it followed by each larger character of the
 * `alphabet` (the characters seen in the sample). Shallow ones jump far (`b`, `c` after `a…`), deep ones
 * step close (`part-1`, `part-2` after `part-0999`). At most `max`, the shallow ones kept.
 */
export function successorCandidates(
  prefix: string,
  sample: readonly string[],
  from: string,
  max: number,
): string[] {
  const alphabet = [...new Set(sample.flatMap((key) => Array.from(key.slice(prefix.length))))].sort(
    compareKeys,
  );
  // Array.from splits by code point, so a character above U+FFFF is never cut in half.
  const characters = Array.from(from.slice(prefix.length));
  const candidates: string[] = [];
  for (let i = 0; i < characters.length && candidates.length < max; i += 1) {
    const stem = prefix + characters.slice(0, i).join('');
    const at = characters[i] ?? '';
    for (const character of alphabet) {
      if (candidates.length >= max) break;
      if (compareKeys(character, at) > 0) candidates.push(stem + character);
    }
  }
  return candidates;
}
