/**
 * An event's ledger writes: in sequencer order, and (with a guard) ordered against a deleter of the same
 * key through its deletion mark (deletion-marks.ts).
 */
import { ConditionalCheckFailedException, ReturnConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { LeaseLostError } from '../errors.js';
import { allOf, heldMark, noLiveMark, unchangedSince, withoutMark } from './deletion-marks.js';
import { storedItem } from './ledger.js';
import { type LedgerEntry, toLedgerItem } from './ledger-item.js';
import { call, fenceCondition, ledgerLost, type StateTable } from './state-table.js';

/**
 * How an event's ledger write is ordered against a deleter of the same key (state/deletion-marks.ts):
 * `read`, the entry the writer read before writing the destination (the write is refused once the item
 * changed since, or while a deleter holds it, unless the copy `written`, its destination ETag, is not the
 * one that deleter deletes); `token`, a deleter's own mark, which its final record
 * replaces (refused when the mark is no longer its own).
 */
export type InOrderGuard = { read: LedgerEntry | undefined; written?: string } | { token: string };

/**
 * Records a change an event applied (`entry.sequencer` in the stored form): refused when the ledger
 * already holds this key's change at this sequencer or a later one, so the key never moves backwards,
 * and fenced like every ledger write; and, with a `guard`, ordered against a deleter of the key.
 *
 * @returns 'stale' when a change at this sequencer or later was already recorded; 'changed' when the
 *   guard refused it (the item changed since it was read, a deleter holds it, or the mark is not ours)
 * @throws LeaseLostError when a pass with a newer fence has written the key
 */
export async function putLedgerEntryInOrder(
  table: StateTable,
  jobId: string,
  entry: LedgerEntry & { sequencer: string },
  fence: number,
  guard?: InOrderGuard,
): Promise<'recorded' | 'stale' | 'changed'> {
  const fenced = fenceCondition(fence);
  const guarded =
    guard === undefined
      ? []
      : 'token' in guard
        ? [heldMark(guard.token)]
        : [unchangedSince(guard.read), noLiveMark(Date.now(), guard.written)];
  // A later change of the key was recorded (a sequencer only grows), and a newer lease holder owns the item.
  const condition = allOf(
    {
      ConditionExpression: 'attribute_not_exists(sequencer) OR sequencer < :sequencer',
      ExpressionAttributeValues: { ':sequencer': entry.sequencer },
    },
    fenced,
    ...guarded,
  );
  try {
    const result = await call(table, 'putLedgerEntryInOrder (PutItem)', () =>
      table.doc.send(
        new PutCommand({
          TableName: table.name,
          Item: toLedgerItem(jobId, withoutMark(entry), fence),
          ...condition,
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    table.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
    return 'recorded';
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // One condition refused, several meanings: read which (the item as it is now, its fence included).
    const Item = await storedItem(table, 'putLedgerEntryInOrder (GetItem)', jobId, entry.key);
    if (Item?.sequencer !== undefined && String(Item.sequencer) >= entry.sequencer) return 'stale';
    if (guard !== undefined && !(Number(Item?.fence) > fence)) return 'changed';
    throw new LeaseLostError(ledgerLost(jobId, entry.key), { cause: error });
  }
}
