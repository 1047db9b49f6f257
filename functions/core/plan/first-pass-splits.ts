/**
 * Cut points for a pass whose ledger gave none (a first pass, or a ledger smaller than one shard), found
 * from the source itself in a bounded number of LIST requests, so that one planner is not left to list a
 * whole bucket within its 15 minutes.
 *
 * The first page is read as a planner would. If it holds every key, the cuts fall every `keysPerShard`
 * keys of it, exactly as from a ledger. Otherwise the search gathers candidate points (the source's
 * folders from delimiter listings, and the strings after the first page's last key, cut-candidates.ts)
 * and probes them in order, spread over what is left of the budget: a probe is one page of keys
 * `StartAfter` the candidate. Each page counts the keys up to the next probe exactly, unless it fills
 * before reaching it: then what lies between is unmeasured. Requests left after the probes list on into
 * those stretches (probed-stretches.ts), so a source the budget can read through is counted exactly and cut
 * every `keysPerShard` keys, none empty. A stretch still unmeasured when the budget is spent gets shards of
 * its own, cut further at the unprobed candidates inside it: a shard too many costs one planner
 * invocation, a shard too few can cost the pass its planner's 15 minutes.
 *
 * Where the cuts fall never decides which keys are copied: rangesBetween covers every key by
 * construction. A failed or refused request only ends the search with the cuts found so far.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { folderCandidates, successorCandidates } from './cut-candidates.js';
import { compareKeys } from './keys.js';
import { fillGaps, gapAfter, type Probe, withoutEmptyShards } from './probed-stretches.js';
import { SourcePages } from './source-pages.js';

/** The bounds of a first-pass search. */
export interface FirstPassLimits {
  /**
   * LIST requests at most: 50 cost $0.00025 and a few seconds of the pass starter, next to the thousands a
   * planner of a bucket that needs splitting makes. Half at most go to the folder walk, the rest to probes.
   * The pages are kept until the cuts are made: at most `maxRequests × pageSize` keys, 50,000 (under 50 MiB
   * even at S3's 1,024-byte key cap).
   */
  maxRequests: number;
  /**
   * Cut points at most: each shard is a plan-shard message, a planner invocation and a ledger Query per
   * pass, and the pass item counts them; 1,000 shards of a 50-million-key bucket are 50,000 keys each.
   */
  maxCuts: number;
  /** Keys per page: S3's most, 1,000 (smaller only for tests that reach the probes with few objects). */
  pageSize: number;
}

export const FIRST_PASS_LIMITS: FirstPassLimits = { maxRequests: 50, maxCuts: 1000, pageSize: 1000 };

/** What the search found, and what it cost. */
export interface FirstPassSplits {
  /** Cut points in S3 byte order, for rangesBetween. */
  splits: string[];
  requests: number;
  /** Keys the pages listed (each once). */
  keysSeen: number;
  /** Stretches of the key space between probes that no page reached: their keys are not counted. */
  unmeasured: number;
  /** The failure that ended the search early, if one did. */
  failure?: string;
}

/**
 * Cut points for `keysPerShard`-key shards of `bucket/prefix`, from at most `limits.maxRequests` LIST
 * requests with `s3` (the source role's client). No cut means one shard, as without the search.
 */
export async function firstPassSplits(
  s3: S3Client,
  source: { bucket: string; prefix: string },
  keysPerShard: number,
  options: { limits?: Partial<FirstPassLimits>; signal?: AbortSignal } = {},
): Promise<FirstPassSplits> {
  const limits = { ...FIRST_PASS_LIMITS, ...options.limits };
  const { prefix } = source;
  const pages = new SourcePages(s3, source.bucket, limits.pageSize, limits.maxRequests, options.signal);
  const first = await pages.page({ prefix });
  const probes: Probe[] = first ? [{ after: undefined, page: first }] : [];
  const last = first?.keys.at(-1);
  let unprobed: string[] = [];
  let folderSet = new Set<string>();
  if (first?.truncated && last !== undefined) {
    const walkRequests = Math.floor(limits.maxRequests / 2);
    const folders = await folderCandidates(pages, prefix, {
      want: pages.left - walkRequests,
      requests: walkRequests,
      maxCuts: limits.maxCuts,
    });
    const flat = folders.length < pages.left ? successorCandidates(prefix, first.keys, limits.maxCuts) : [];
    const candidates = [...new Set([...folders, ...flat])]
      .filter((candidate) => compareKeys(candidate, last) > 0)
      .sort(compareKeys);
    const probed = await probeInOrder(pages, prefix, candidates, last, probes);
    await fillGaps(pages, prefix, probes);
    unprobed = candidates.filter((candidate) => !probed.has(candidate));
    folderSet = new Set(folders);
  }
  const { cuts, keysSeen, unmeasured } = cutsFrom(probes, unprobed, folderSet, keysPerShard);
  return {
    splits: thin(withoutEmptyShards(cuts, probes), limits.maxCuts),
    requests: pages.requests,
    keysSeen,
    unmeasured,
    ...(pages.failure !== undefined && { failure: pages.failure }),
  };
}

/**
 * Probes `candidates` (sorted, all after `seen`) in order, each stride spread over the requests left and
 * none inside a stretch a page already listed; appends each probe to `probes` and returns the candidates
 * probed. Stops at a page that ends the listing.
 */
async function probeInOrder(
  pages: SourcePages,
  prefix: string,
  candidates: readonly string[],
  seen: string,
  probes: Probe[],
): Promise<Set<string>> {
  const probed = new Set<string>();
  let next = 0;
  let reached = seen;
  while (pages.left > 0) {
    while (next < candidates.length && compareKeys(candidates[next] ?? '', reached) <= 0) next += 1;
    const candidate = candidates[next];
    if (candidate === undefined) break;
    const stride = Math.max(1, Math.floor((candidates.length - next) / pages.left));
    const page = await pages.page({ prefix, startAfter: candidate });
    if (!page) break;
    probes.push({ after: candidate, page });
    probed.add(candidate);
    const end = page.keys.at(-1);
    if (!page.truncated || end === undefined) break;
    reached = end;
    next += stride;
  }
  return probed;
}

/**
 * The cuts from `probes` (in key order): every `keysPerShard` keys the pages listed, and around each
 * stretch no page reached, which is cut further at the unprobed candidates inside it.
 */
function cutsFrom(
  probes: readonly Probe[],
  unprobed: readonly string[],
  folders: ReadonlySet<string>,
  keysPerShard: number,
): { cuts: string[]; keysSeen: number; unmeasured: number } {
  const cuts: string[] = [];
  let keysSeen = 0;
  let unmeasured = 0;
  let count = 0;
  probes.forEach(({ page }, index) => {
    const upTo = probes[index + 1]?.after;
    const known = page.keys.filter((key) => upTo === undefined || compareKeys(key, upTo) <= 0);
    for (const key of known) {
      count += 1;
      if (count % keysPerShard === 0) cuts.push(key);
    }
    keysSeen += known.length;
    const lastKnown = gapAfter(probes, index);
    // A page that filled before the next probe: the keys after it, up to that probe, were not listed.
    if (lastKnown === undefined) return;
    unmeasured += 1;
    if (count % keysPerShard !== 0) cuts.push(lastKnown);
    count = 0;
    // Between two probes keys lie on both sides, so each candidate skipped there likely starts some; past
    // the last probe only a folder is known to.
    cuts.push(
      ...unprobed.filter(
        (candidate) =>
          compareKeys(candidate, lastKnown) > 0 &&
          (upTo === undefined ? folders.has(candidate) : compareKeys(candidate, upTo) < 0),
      ),
    );
    if (upTo !== undefined) cuts.push(upTo);
  });
  return { cuts, keysSeen, unmeasured };
}

/** At most `max` of `cuts` (sorted), evenly spread: fewer, larger shards, still covering every key. */
function thin(cuts: readonly string[], max: number): string[] {
  const sorted = [...new Set(cuts)].sort(compareKeys);
  if (sorted.length <= max) return sorted;
  const step = sorted.length / max;
  return Array.from({ length: max }, (_, i) => sorted[Math.floor(i * step)] ?? '');
}
