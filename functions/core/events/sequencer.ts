/**
 * S3's `sequencer`: the order of the changes to one key. Events arrive late, twice and out of order; the
 * ledger keeps the sequencer of the change it last applied to a key and refuses to move the key backwards.
 */

/**
 * Orders two sequencers of the same key: negative when `a` is the earlier change, 0 for the same change,
 * positive when `a` is the later one. As S3 documents it: right-pad the shorter value with zeros, then
 * compare the strings (sequencers are hexadecimal and grow with time; a shorter one has dropped trailing
 * zeros). Case is ignored, since hexadecimal digits may come in either. Never compare sequencers of two
 * different keys: S3 orders changes per key only.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const left = a.toUpperCase().padEnd(width, '0');
  const right = b.toUpperCase().padEnd(width, '0');
  if (left === right) return 0;
  return left < right ? -1 : 1;
}

/** True when `candidate` is a later change of the key than `applied` (or nothing was applied yet). */
export function isLaterChange(candidate: string, applied: string | undefined): boolean {
  return applied === undefined || compareSequencers(candidate, applied) > 0;
}

/** A sequencer is a non-empty string of hexadecimal digits. */
export const SEQUENCER_PATTERN = /^[0-9A-Fa-f]+$/;

/**
 * Room for any sequencer S3 writes (18 hex digits seen; nothing documents a maximum) with margin, so
 * every stored one is padded to the same width.
 */
export const SEQUENCER_WIDTH = 64;

/**
 * The sequencer as the ledger stores it: upper case, right-padded with zeros to {@link SEQUENCER_WIDTH}, so
 * DynamoDB's string `<` in a condition expression orders it as {@link compareSequencers} does.
 */
export function storedSequencer(sequencer: string): string {
  if (!SEQUENCER_PATTERN.test(sequencer) || sequencer.length > SEQUENCER_WIDTH) {
    throw new RangeError(
      `a sequencer is 1 to ${SEQUENCER_WIDTH} hexadecimal digits; got ${JSON.stringify(sequencer.slice(0, 80))}`,
    );
  }
  return sequencer.toUpperCase().padEnd(SEQUENCER_WIDTH, '0');
}
