/**
 * The ledger: what was copied, one item per source key, read in key order by the planner and written
 * under the lease's fence (and, for an event's change, in sequencer order). This file reads it;
 * ledger-writes.ts writes a pass's outcomes, ledger-in-order.ts an event's.
 */
import { ReturnConsumedCapacity } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import type { KeyRange } from '../plan/list-source.js';
import { fromLedgerItem, type LedgerEntry } from './ledger-item.js';
import { call, ledgerPk, type StateTable } from './state-table.js';

/** Streams a job's ledger in sort-key (UTF-8 byte) order, restricted to `range`. */
export async function* ledger(
  table: StateTable,
  jobId: string,
  range: KeyRange = {},
): AsyncGenerator<LedgerEntry> {
  const names: Record<string, string> = { '#pk': 'pk' };
  const values: Record<string, unknown> = { ':pk': ledgerPk(jobId) };
  let condition = '#pk = :pk';
  if (range.through !== undefined) {
    names['#sk'] = 'sk';
    values[':through'] = range.through;
    condition += ' AND #sk <= :through';
  }
  const fetchPage = (startKey: QueryCommandInput['ExclusiveStartKey']): Promise<QueryCommandOutput> =>
    call(table, 'ledger (Query)', () =>
      table.doc.send(
        new QueryCommand({
          TableName: table.name,
          KeyConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ExclusiveStartKey: startKey,
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
  // One page ahead, as in listSource, so the merge waits on neither stream.
  let next: ReturnType<typeof fetchPage> | undefined = fetchPage(
    range.after === undefined ? undefined : { pk: ledgerPk(jobId), sk: range.after },
  );
  try {
    while (next) {
      const page: QueryCommandOutput = await next;
      table.capacity.readCapacityUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
      next = page.LastEvaluatedKey ? fetchPage(page.LastEvaluatedKey) : undefined;
      for (const item of page.Items ?? []) yield fromLedgerItem(item);
    }
  } finally {
    // Stryker disable next-line ConditionalExpression: Promise.resolve(undefined).catch does nothing
    if (next) Promise.resolve(next).catch(() => {});
  }
}

/**
 * The ledger entries of `jobId` whose last attempt failed, in key order. The Query reads the whole
 * ledger partition (a FilterExpression does not reduce read units): the price of a report run by hand;
 * the sync itself never calls this.
 */
export async function* ledgerFailures(
  table: StateTable,
  jobId: string,
): AsyncGenerator<{ key: string; failure: LedgerEntry['failure'] }> {
  let startKey: QueryCommandInput['ExclusiveStartKey'];
  do {
    const page = await call(table, 'ledgerFailures (Query)', () =>
      table.doc.send(
        new QueryCommand({
          TableName: table.name,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: 'attribute_exists(failure)',
          ExpressionAttributeValues: { ':pk': ledgerPk(jobId) },
          ProjectionExpression: 'sk, failure',
          ExclusiveStartKey: startKey,
        }),
      ),
    );
    for (const item of page.Items ?? []) yield { key: String(item.sk), failure: item.failure };
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** One key's ledger entry (a consistent read), or undefined when the ledger has none. */
export async function ledgerEntry(
  table: StateTable,
  jobId: string,
  key: string,
): Promise<LedgerEntry | undefined> {
  const result = await call(table, 'ledgerEntry (GetItem)', () =>
    table.doc.send(
      new GetCommand({
        TableName: table.name,
        Key: { pk: ledgerPk(jobId), sk: key },
        ConsistentRead: true,
        ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
      }),
    ),
  );
  table.capacity.readCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
  return result.Item ? fromLedgerItem(result.Item) : undefined;
}

/** The ledger item of `key` as stored (a consistent read, its fence included), to tell why a write was refused. */
export async function storedItem(
  table: StateTable,
  operation: string,
  jobId: string,
  key: string,
): Promise<Record<string, unknown> | undefined> {
  const { Item } = await call(table, operation, () =>
    table.doc.send(
      new GetCommand({ TableName: table.name, Key: { pk: ledgerPk(jobId), sk: key }, ConsistentRead: true }),
    ),
  );
  return Item;
}
