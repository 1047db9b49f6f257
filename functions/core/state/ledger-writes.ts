/**
 * A pass's writes to the ledger: each outcome it records or removes, fenced by the lease, and kept from
 * moving a key backwards over an event's change or a deleter's mark (a refused write returns the entry
 * kept instead).
 */
import { ConditionalCheckFailedException, ReturnConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { LeaseLostError } from '../errors.js';
import { allOf, heldMark, isMarkedForDeletion, noLiveMark } from './deletion-marks.js';
import { storedItem } from './ledger.js';
import { fromLedgerItem, type LedgerEntry, toLedgerItem } from './ledger-item.js';
import { call, fenceCondition, fencedWrite, ledgerLost, ledgerPk, type StateTable } from './state-table.js';

/**
 * Records the outcome for one key. The write carries the lease's fencing token and is refused when a
 * newer lease holder has already written the key, so a stale run cannot roll the ledger back.
 */
export async function putLedgerEntry(
  table: StateTable,
  jobId: string,
  entry: LedgerEntry,
  fence: number,
): Promise<void> {
  const { key } = entry;
  const result = await fencedWrite(ledgerLost(jobId, key), () =>
    call(table, 'putLedgerEntry (PutItem)', () =>
      table.doc.send(
        new PutCommand({
          TableName: table.name,
          Item: toLedgerItem(jobId, entry, fence),
          ...fenceCondition(fence),
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    ),
  );
  table.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
}

/**
 * Records what a pass did with a key it planned from the ledger as read, carrying the sequencer that read
 * found (`entry.sequencer`, or none): refused when an event has recorded a change of the key since (the
 * sequencer on record is no longer that one), since the event copied a version at least as new as the
 * pass's and this entry would move the key backwards. Fenced like every ledger write. Refused too while a
 * deleter holds the item, unless `written` (the unquoted destination ETag of the copy this entry records)
 * is not the copy that deleter deletes (deletion-marks.ts, noLiveMark): its delete cannot remove this copy.
 *
 * @returns the event's entry (or the deleter's marked item), kept instead of this one, or undefined when
 *   this one was written
 * @throws LeaseLostError when a pass with a newer fence has written the key
 */
export async function putPlannedEntry(
  table: StateTable,
  jobId: string,
  entry: LedgerEntry,
  fence: number,
  written?: string,
): Promise<LedgerEntry | undefined> {
  const kept = entry.sequencer;
  try {
    const result = await call(table, 'putPlannedEntry (PutItem)', () =>
      table.doc.send(
        new PutCommand({
          TableName: table.name,
          Item: toLedgerItem(jobId, entry, fence),
          ...plannedCondition(fence, kept, undefined, written),
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    table.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
    return undefined;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // One condition refused, two meanings: read which (the item as it is now, its fence included).
    const Item = await storedItem(table, 'putPlannedEntry (GetItem)', jobId, entry.key);
    if (Item && !(Number(Item.fence) > fence) && (Item.sequencer !== kept || markedItem(Item)))
      return fromLedgerItem(Item);
    throw new LeaseLostError(ledgerLost(jobId, entry.key), { cause: error });
  }
}

/** The key's sequencer on record is still `kept`, the one the plan read (none: still none). */
const unchangedSequencer = (kept: string | undefined) =>
  kept === undefined
    ? 'attribute_not_exists(sequencer)'
    : 'attribute_not_exists(sequencer) OR sequencer = :kept';

/**
 * Records that the copy of `entry.key` did not complete (it failed, or the deadline cut it), unless a
 * copy newer than `plannedCopiedAt` (the one the writer planned from) is on record: a twin delivery of the
 * same task (same fence) recorded it meanwhile, and this entry, built from the older plan, would erase it
 * and have the next pass copy the object again. Nor while an event has recorded a change of the key since
 * the plan (the sequencer on record is no longer `entry.sequencer`, the one the plan read): a deletion mark
 * has no copy time, so only the sequencer tells it from the planned entry, and writing over it would move
 * the key backwards. Nor while a deleter holds the item (deletion-marks.ts): this whole-item write would
 * erase its mark, and its final record would then be refused.
 *
 * @returns the entry kept instead of this one, or undefined when this one was written
 * @throws LeaseLostError when a pass with a newer fence has written the key
 */
export async function putUncopiedEntry(
  table: StateTable,
  jobId: string,
  entry: LedgerEntry,
  fence: number,
  plannedCopiedAt?: string,
): Promise<LedgerEntry | undefined> {
  const planned = plannedCopiedAt === undefined ? 0 : Date.parse(plannedCopiedAt);
  const kept = entry.sequencer;
  // A newer lease holder owns the item, a copy recorded after the plan stays, and so does an event's
  // change (a copy or a deletion mark) recorded after the plan, and a deleter's live mark.
  const condition = allOf(
    fenceCondition(fence),
    {
      ConditionExpression: 'attribute_not_exists(ca) OR ca <= :planned',
      ExpressionAttributeValues: { ':planned': planned },
    },
    {
      ConditionExpression: unchangedSequencer(kept),
      ExpressionAttributeValues: kept !== undefined ? { ':kept': kept } : {},
    },
    noLiveMark(),
  );
  try {
    const result = await call(table, 'putUncopiedEntry (PutItem)', () =>
      table.doc.send(
        new PutCommand({
          TableName: table.name,
          Item: toLedgerItem(jobId, entry, fence),
          ...condition,
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    table.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
    return undefined;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // One condition refused, several meanings: read which (the item as it is now, its fence included).
    const Item = await storedItem(table, 'putUncopiedEntry (GetItem)', jobId, entry.key);
    const newer = Item && (Number(Item.ca) > planned || Item.sequencer !== kept || markedItem(Item));
    if (Item && newer && !(Number(Item.fence) > fence)) return fromLedgerItem(Item);
    throw new LeaseLostError(ledgerLost(jobId, entry.key), { cause: error });
  }
}

/**
 * Removes a key from the ledger after its destination copy was deleted (mirror jobs), carrying the
 * sequencer the plan read (`readSequencer`, or none): refused when an event has recorded a change of the
 * key since (it re-created the key and copied it, or marked it deleted), since removing the event's entry
 * would have a later run take the event's copy for someone else's. Fenced like every ledger write.
 *
 * @returns the event's entry, kept instead of removed, or undefined when the entry was removed
 * @throws LeaseLostError when a pass with a newer fence has written the key
 */
export async function deleteLedgerEntry(
  table: StateTable,
  jobId: string,
  key: string,
  fence: number,
  readSequencer?: string,
  token?: string,
): Promise<LedgerEntry | undefined> {
  try {
    await call(table, 'deleteLedgerEntry (DeleteItem)', () =>
      table.doc.send(
        new DeleteCommand({
          TableName: table.name,
          Key: { pk: ledgerPk(jobId), sk: key },
          ...plannedCondition(fence, readSequencer, token),
        }),
      ),
    );
    return undefined;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // One condition refused, two meanings: read which (the item as it is now, its fence included).
    const Item = await storedItem(table, 'deleteLedgerEntry (GetItem)', jobId, key);
    if (
      Item &&
      !(Number(Item.fence) > fence) &&
      (Item.sequencer !== readSequencer || markedItem(Item, token))
    )
      return fromLedgerItem(Item);
    throw new LeaseLostError(ledgerLost(jobId, key), { cause: error });
  }
}

/**
 * The condition of a pass's write of what it planned: a newer lease holder owns the item, an event's
 * change recorded after the plan stays (the sequencer on record is still `kept`, the one the plan read),
 * and no deleter holds the item (but one whose delete cannot remove the copy `written`); or, for a
 * deleter's own final record (`token`), it still holds it.
 */
export function plannedCondition(
  fence: number,
  kept: string | undefined,
  token?: string,
  written?: string,
): { ConditionExpression: string; ExpressionAttributeValues: Record<string, unknown> } {
  return allOf(
    fenceCondition(fence),
    {
      ConditionExpression: unchangedSequencer(kept),
      ExpressionAttributeValues: kept !== undefined ? { ':kept': kept } : {},
    },
    token === undefined ? noLiveMark(Date.now(), written) : heldMark(token),
  );
}

/**
 * Whether a stored item refused a planned write for a deletion mark: another deleter's live mark, or, for
 * a deleter's final record (`token`), a mark that is no longer its own.
 */
export function markedItem(item: Record<string, unknown>, token?: string): boolean {
  if (token !== undefined) return item.deletingBy !== token;
  return isMarkedForDeletion(fromLedgerItem(item));
}
