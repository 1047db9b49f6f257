/**
 * Deletion marks: how a destination delete and a write of the same key are ordered through the key's
 * ledger item (DynamoDB's conditional writes are linearizable per item). A delete is conditional on the
 * destination ETag, which cannot tell a copy from a newer copy of the same bytes (a key deleted and
 * re-created with identical content), so the deleter first marks the item "deleting" (only while it is
 * still what the deleter read), then deletes, then replaces the mark by its final record (the event's
 * deletion mark, or the item's removal), and every writer's ledger write is refused while a live mark is
 * there or once the item changed since the writer read it (docs/event-driven.md, "Deletions and
 * writers of the same bytes").
 */
import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException, ReturnConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { stripQuotes } from '../copy/integrity.js';
import { LeaseLostError } from '../errors.js';
import { storedItem } from './ledger.js';
import { fromLedgerItem, type LedgerEntry } from './ledger-item.js';
import { call, fenceCondition, ledgerLost, ledgerPk, type StateTable } from './state-table.js';

/**
 * How long a mark blocks writers: Lambda's longest timeout (900 s), after which the deleter that set it
 * has been stopped, plus a minute for the clocks of two containers to disagree. A deleter that died
 * between its mark and its final record blocks the key's writers no longer than that.
 */
export const DELETION_MARK_TTL_MS = (900 + 60) * 1000;

/** A condition with its values (and names, when an attribute needs one). */
export interface Condition {
  ConditionExpression: string;
  ExpressionAttributeValues: Record<string, unknown>;
}

/** Whether `entry` carries a deletion mark that still blocks writers at `now`. */
export function isMarkedForDeletion(entry: LedgerEntry | undefined, now = Date.now()): boolean {
  return entry?.deletingUntil !== undefined && entry.deletingUntil >= now;
}

/** `entry` without its deletion mark, for a writer that builds its item from an entry it read. */
export function withoutMark(entry: LedgerEntry): LedgerEntry {
  const { deletingBy: _by, deletingUntil: _until, deletingEtag: _etag, ...rest } = entry;
  return rest;
}

/**
 * No deleter holds the item: a writer's write would otherwise land between its mark and its delete. A
 * writer that wrote a copy with another ETag (`written`, unquoted) than the one the deleter deletes
 * (If-Match) may record it over the mark: that delete cannot remove its copy, and the deleter, finding
 * its mark gone, leaves the key to it.
 */
export function noLiveMark(now = Date.now(), written?: string): Condition {
  const free = 'attribute_not_exists(deletingUntil) OR deletingUntil < :markNow';
  if (written === undefined) {
    return { ConditionExpression: free, ExpressionAttributeValues: { ':markNow': now } };
  }
  return {
    ConditionExpression: `${free} OR (attribute_exists(deletingEtag) AND deletingEtag <> :written)`,
    // Compared unquoted, as markDeletion stores the ETag it deletes.
    ExpressionAttributeValues: { ':markNow': now, ':written': stripQuotes(written) },
  };
}

/** The deleter that set mark `token` still holds the item: its final record replaces only its own mark. */
export function heldMark(token: string): Condition {
  return {
    ConditionExpression: 'deletingBy = :markToken',
    ExpressionAttributeValues: { ':markToken': token },
  };
}

/**
 * The item is still the one `read` was (or still absent): same sequencer, same copy time, so no writer
 * (an event's change, a pass's copy, a deleter's final record) has written it since.
 */
export function unchangedSince(read: LedgerEntry | undefined): Condition {
  if (read === undefined) {
    return { ConditionExpression: 'attribute_not_exists(sk)', ExpressionAttributeValues: {} };
  }
  const values: Record<string, unknown> = {};
  const parts = ['attribute_exists(sk)'];
  if (read.sequencer === undefined) parts.push('attribute_not_exists(sequencer)');
  else {
    parts.push('sequencer = :readSequencer');
    values[':readSequencer'] = read.sequencer;
  }
  if (read.copiedAt === undefined) parts.push('attribute_not_exists(ca)');
  else {
    parts.push('ca = :readCopiedAt');
    values[':readCopiedAt'] = Date.parse(read.copiedAt);
  }
  return { ConditionExpression: parts.join(' AND '), ExpressionAttributeValues: values };
}

/** All of `conditions` at once. */
export function allOf(...conditions: Condition[]): Condition {
  return {
    ConditionExpression: conditions.map((c) => `(${c.ConditionExpression})`).join(' AND '),
    ExpressionAttributeValues: Object.assign({}, ...conditions.map((c) => c.ExpressionAttributeValues)),
  };
}

/** What a deleter's attempt to mark a key found. */
export type MarkResult =
  /** Marked by this deleter, or by another delivery of the same deletion (`owner`), whose mark it shares. */
  | { marked: true; token: string }
  /** The item changed since it was read (`now`, undefined when gone), or another deleter holds it. */
  | { marked: false; now: LedgerEntry | undefined };

/**
 * Marks `read.key`'s ledger item "deleting" for `DELETION_MARK_TTL_MS`, only while it is still what the
 * deleter read (`read`), no other deleter holds it, and no newer lease holder owns it. The mark names the
 * destination ETag the deleter deletes (If-Match), when it has one. The deleter deletes the destination
 * copy only once marked, and ends with a write conditional on the returned token. `owner` names the
 * deletion (a pass's run, an event's change): another delivery of it that finds the item held by its
 * twin, and otherwise as it read it, shares that mark (both delete the same copy; one records it).
 *
 * @throws LeaseLostError when a pass with a newer fence has written the key
 */
export async function markDeletion(
  table: StateTable,
  jobId: string,
  read: LedgerEntry,
  fence: number,
  owner: string,
  now = Date.now(),
): Promise<MarkResult> {
  const token = `${owner}#${randomUUID()}`;
  const condition = allOf(fenceCondition(fence), unchangedSince(read), noLiveMark(now));
  const target = read.destinationEtag === undefined ? undefined : stripQuotes(read.destinationEtag);
  try {
    const result = await call(table, 'markDeletion (UpdateItem)', () =>
      table.doc.send(
        new UpdateCommand({
          TableName: table.name,
          Key: { pk: ledgerPk(jobId), sk: read.key },
          UpdateExpression:
            target === undefined
              ? 'SET deletingBy = :token, deletingUntil = :until REMOVE deletingEtag'
              : 'SET deletingBy = :token, deletingUntil = :until, deletingEtag = :target',
          ConditionExpression: condition.ConditionExpression,
          ExpressionAttributeValues: {
            ...condition.ExpressionAttributeValues,
            ':token': token,
            ':until': now + DELETION_MARK_TTL_MS,
            ...(target !== undefined && { ':target': target }),
          },
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    table.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
    return { marked: true, token };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // One condition refused, three meanings: read which (the item as it is now, its fence included).
    const Item = await storedItem(table, 'markDeletion (GetItem)', jobId, read.key);
    if (Item !== undefined && Number(Item.fence) > fence) {
      throw new LeaseLostError(ledgerLost(jobId, read.key), { cause: error });
    }
    const stored = Item === undefined ? undefined : fromLedgerItem(Item);
    if (stored && heldByTwin(stored, read, owner, now))
      return { marked: true, token: String(stored.deletingBy) };
    return { marked: false, now: stored };
  }
}

/** `stored` is `read` with a live mark of another delivery of the same deletion (`owner`) on it. */
function heldByTwin(stored: LedgerEntry, read: LedgerEntry, owner: string, now: number): boolean {
  return (
    isMarkedForDeletion(stored, now) &&
    stored.deletingBy?.startsWith(`${owner}#`) === true &&
    stored.sequencer === read.sequencer &&
    stored.copiedAt === read.copiedAt
  );
}

/**
 * Widens mark `token` to any object at the key, for a deleter whose If-Match was refused and that deletes
 * what is there (a mirror pass): a writer that has not recorded its copy yet is then refused and copies
 * again after this deletion. False when the mark is no longer this deleter's (a writer recorded since).
 */
export async function widenDeletionMark(
  table: StateTable,
  jobId: string,
  key: string,
  token: string,
): Promise<boolean> {
  try {
    await call(table, 'widenDeletionMark (UpdateItem)', () =>
      table.doc.send(
        new UpdateCommand({
          TableName: table.name,
          Key: { pk: ledgerPk(jobId), sk: key },
          UpdateExpression: 'REMOVE deletingEtag',
          ...heldMark(token),
        }),
      ),
    );
    return true;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    return false;
  }
}

/**
 * Takes mark `token` off `key`'s item when the deleter does not delete after all (its conditional delete
 * refused, or failed): writers need not wait for the mark to expire. Nothing is done when the mark is no
 * longer this deleter's.
 */
export async function clearDeletionMark(
  table: StateTable,
  jobId: string,
  key: string,
  token: string,
): Promise<void> {
  const held = heldMark(token);
  try {
    await call(table, 'clearDeletionMark (UpdateItem)', () =>
      table.doc.send(
        new UpdateCommand({
          TableName: table.name,
          Key: { pk: ledgerPk(jobId), sk: key },
          UpdateExpression: 'REMOVE deletingBy, deletingUntil, deletingEtag',
          ...held,
        }),
      ),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}
