/**
 * A ledger entry, and the compact item it is stored as (one per source key).
 */
import { ledgerPk } from './state-table.js';

/** What the ledger remembers about one source key. */
export interface LedgerEntry {
  key: string;
  /** Source ETag of the version last copied; absent when no copy has succeeded yet. */
  etag?: string;
  size?: number;
  lastModified?: string;
  /** SHA-256 (base64) of the bytes copied, computed on the stream. */
  sha256?: string;
  destinationKey?: string;
  /** Destination ETag this sync wrote; a later overwrite is conditional on it. */
  destinationEtag?: string;
  /**
   * How the copy was checked: the stored ETag against MD5s of the streamed bytes, or SDK checksums; for a
   * server-side copy (S3 moved the bytes of the version pinned by the listed ETag), the destination's ETag
   * equal to the source's (`copy-etag`), or only the pin and the part ranges' sizes (`copy-pinned`).
   */
  verifiedBy?: 'etag-md5' | 'sdk-checksum' | 'copy-etag' | 'copy-pinned';
  copiedAt?: string;
  runId?: string;
  /**
   * Written just before an upload starts and cleared when it is recorded: if the run dies in between,
   * the next run knows the object at the destination may be this job's own unrecorded write.
   */
  pending?: UnrecordedWrite;
  /** Set while the last attempt at the current source version failed. */
  failure?: { reason: string; attempts: number; at: string; etag?: string };
  /**
   * When a run first found this key needing a copy and left it uncopied (failed, cut by the deadline, or
   * not started before it): kept by every later run that leaves it uncopied, gone once a copy is
   * recorded. The replication lag counts from it, not from LastModified, so a backfill of old objects
   * does not look like a sync falling behind.
   */
  firstSeenAt?: string;
  /**
   * The S3 sequencer of the last change an event applied to this key, in the stored form (upper case,
   * right-padded: events/sequencer.ts `storedSequencer`), so a condition's string `<` orders it. Absent
   * when no event has applied a change since the key was last written by a pass.
   */
  sequencer?: string;
  /**
   * Set by a deleter of the destination copy between its mark and its final record (state/deletion-marks.ts):
   * who marked the key (a token of that one deletion) and until when (epoch ms) the mark blocks writers.
   */
  deletingBy?: string;
  deletingUntil?: number;
  /** The destination ETag (unquoted) the marking deleter deletes If-Match; absent: whatever is there. */
  deletingEtag?: string;
}

/** Destination writes a run may have made without recording them: of one of these sizes, after `since`. */
export interface UnrecordedWrite {
  sizes: number[];
  since: string;
}

/*
 * A ledger item as stored. A no-change run Queries the whole ledger, and a Query is billed on the size of
 * the items it reads (a ProjectionExpression does not lower it), so the item is kept small: short names,
 * times as epoch milliseconds, the SHA-256 as 32 raw bytes, the destination key relative to the source
 * key, and the destination ETag only when it differs from the source's. About 190 B for a typical key:
 * ~23 read units per 1,000 unchanged keys instead of ~44 (test/integration/ledger-cost.test.ts).
 * `etag`, `fence`, `pending` and `failure` keep their names: conditions and ledgerFailures use them;
 * so does any field added to LedgerEntry without a compact form here.
 * Items written with the older long names are still read.
 */
interface LedgerItem {
  pk: string;
  sk: string;
  fence?: number;
  etag?: string;
  /** size */
  n?: number;
  /** lastModified, epoch ms */
  lm?: number;
  /** sha256, raw */
  h?: Uint8Array;
  /** destinationKey as `<n>|<head>`: head + key.slice(n) */
  dk?: string;
  /** destinationEtag, unquoted; absent when it equals etag, '' when there is none */
  de?: string;
  /** verifiedBy: 0 etag-md5, 1 sdk-checksum, 2 copy-etag, 3 copy-pinned */
  v?: number;
  /** copiedAt, epoch ms */
  ca?: number;
  /** runId */
  r?: string;
  pending?: UnrecordedWrite;
  failure?: LedgerEntry['failure'];
}

const VERIFIED_BY = ['etag-md5', 'sdk-checksum', 'copy-etag', 'copy-pinned'] as const;
const unquote = (etag: string) => etag.replace(/^"|"$/g, '');

/** Encodes `destinationKey` by what it shares with the end of `key` (usually all but the prefix). */
function relativeKey(key: string, destinationKey: string): string {
  let common = 0;
  while (
    // Stryker disable next-line LogicalOperator,ConditionalExpression,EqualityOperator: past either end the index reads undefined, which equals no character, so the comparison below stops the loop anyway
    common < key.length &&
    // Stryker disable next-line ConditionalExpression,EqualityOperator: as above
    common < destinationKey.length &&
    key[key.length - 1 - common] === destinationKey[destinationKey.length - 1 - common]
  ) {
    common += 1;
  }
  return `${key.length - common}|${destinationKey.slice(0, destinationKey.length - common)}`;
}

function absoluteKey(key: string, relative: string): string {
  const bar = relative.indexOf('|');
  return relative.slice(bar + 1) + key.slice(Number(relative.slice(0, bar)));
}

/** The item `entry` is stored as, under the writer's fence. */
export function toLedgerItem(jobId: string, entry: LedgerEntry, fence: number): LedgerItem {
  const {
    key,
    etag,
    size,
    lastModified,
    sha256,
    destinationKey,
    destinationEtag,
    verifiedBy,
    copiedAt,
    runId,
    pending,
    failure,
    ...others
  } = entry;
  return {
    // Fields added to LedgerEntry later keep their own names.
    ...others,
    pk: ledgerPk(jobId),
    sk: key,
    fence,
    etag,
    n: size,
    lm: lastModified === undefined ? undefined : Date.parse(lastModified),
    h: sha256 === undefined ? undefined : Buffer.from(sha256, 'base64'),
    dk: destinationKey === undefined ? undefined : relativeKey(key, destinationKey),
    // Absent means "same as etag"; '' means there is none.
    de:
      destinationEtag === undefined
        ? etag === undefined
          ? undefined
          : ''
        : etag !== undefined && unquote(etag) === unquote(destinationEtag)
          ? undefined
          : unquote(destinationEtag),
    v: verifiedBy === undefined ? undefined : VERIFIED_BY.indexOf(verifiedBy),
    ca: copiedAt === undefined ? undefined : Date.parse(copiedAt),
    r: runId,
    pending,
    failure,
  };
}

/** The entry an item holds, in the compact form or the older long names. */
export function fromLedgerItem(item: Record<string, unknown>): LedgerEntry {
  if (
    'size' in item ||
    'lastModified' in item ||
    'sha256' in item ||
    'destinationKey' in item ||
    'runId' in item
  ) {
    // Written before the compact form: the attributes are the entry's own names.
    const { pk: _pk, sk, fence: _fence, ...rest } = item;
    return { key: sk as string, ...rest } as LedgerEntry;
  }
  const stored = item as unknown as LedgerItem;
  const { pk: _pk, sk: key, fence: _fence, etag, n, lm, h, dk, de, v, ca, r, ...others } = stored;
  // Only the fields the item holds are set: an entry is read per listed key (20,000 in a no-change pass
  // over 20,000 objects), and deleting the undefined ones afterwards put every entry in V8's slow
  // dictionary mode: building an entry took about twice as long (a micro-benchmark of 20,000 items).
  const entry = { key } as LedgerEntry;
  for (const [name, value] of Object.entries(others)) {
    if (value !== undefined) (entry as unknown as Record<string, unknown>)[name] = value;
  }
  if (etag !== undefined) entry.etag = etag;
  if (n !== undefined) entry.size = n;
  if (lm !== undefined) entry.lastModified = new Date(lm).toISOString();
  if (h !== undefined) entry.sha256 = Buffer.from(h).toString('base64');
  if (dk !== undefined) entry.destinationKey = absoluteKey(key, dk);
  const destinationEtag = de === '' ? undefined : (de ?? (etag === undefined ? undefined : unquote(etag)));
  if (destinationEtag !== undefined) entry.destinationEtag = destinationEtag;
  const verifiedBy = v === undefined ? undefined : VERIFIED_BY[v];
  if (verifiedBy !== undefined) entry.verifiedBy = verifiedBy;
  if (ca !== undefined) entry.copiedAt = new Date(ca).toISOString();
  if (r !== undefined) entry.runId = r;
  return entry;
}
