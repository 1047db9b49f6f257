/**
 * Where a fan-out pass's items live in the state table (the layout: state/pass-tally.ts), shared by the
 * tally's operations (state/pass-*.ts): the pass's key, the document client, and the TTL every item of it
 * carries.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';

/** How long a pass's items are kept: 30 days. */
export const PASS_RETENTION_SECONDS = 30 * 24 * 3600;
/** The item naming the job's newest pass. */
export const CURRENT_PASS = 'current-pass';

/**
 * A condition on another item of the state table, checked in the same transaction as a settlement or a
 * claim (a DynamoDB ConditionCheck): what makes "settle with nothing" and "claim the object for this task"
 * exclude each other (fanout/part-task.ts).
 */
export type ConditionItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** One pass of one job: `pk = "job#<jobId>"`, `sk = "pass#<fence>"`; its other items are `<sk>#…`. */
export interface PassItem {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly pk: string;
  readonly sk: string;
  /**
   * When DynamoDB's TTL (the table's `purgeAt`) may remove the pass's items: long after any message of it
   * could still arrive (SQS keeps them 14 days at most), so a pass's bookkeeping does not pile up.
   */
  readonly purgeAt: number;
}

/** The items of pass `fence` of job `jobId`, kept `PASS_RETENTION_SECONDS` from now. */
export function passItem(client: DynamoDBClient, table: string, jobId: string, fence: number): PassItem {
  return {
    doc: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }),
    table,
    pk: `job#${jobId}`,
    sk: `pass#${fence}`,
    purgeAt: Math.floor(Date.now() / 1000) + PASS_RETENTION_SECONDS,
  };
}

/** The pass's own item, as a key. */
export function passKey(pass: PassItem): { pk: string; sk: string } {
  return { pk: pass.pk, sk: pass.sk };
}

/** The pass's own item with `attributes`, and the TTL every item of the pass carries. */
export function passRecord(pass: PassItem, attributes: Record<string, unknown>): Record<string, unknown> {
  return { ...passKey(pass), ...attributes, purgeAt: pass.purgeAt };
}

/**
 * A transaction's write of an item of this pass, `<pass>#<suffix>`, refused if it exists: what makes an
 * announcement, a settlement or a deletion count once however often its message is delivered.
 */
export function writeOnce(pass: PassItem, suffix: string, attributes: Record<string, unknown> = {}) {
  return {
    Put: {
      TableName: pass.table,
      Item: { pk: pass.pk, sk: `${pass.sk}#${suffix}`, ...attributes, purgeAt: pass.purgeAt },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  };
}

/** The pass's name in messages: `pass#<fence> of job#<jobId>`. */
export function passName(pass: PassItem): string {
  return `${pass.sk} of ${pass.pk}`;
}
