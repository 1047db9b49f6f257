/**
 * Reading a fan-out pass as stored (state/pass-tally.ts): its outstanding tasks, totals and state, and which
 * pass is the job's newest. Every read is strongly consistent: the worker that settles last decides from it
 * whether the pass may end.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { CURRENT_PASS, type PassItem, passKey, passName } from './pass-item.js';
import type { PassState } from './pass-types.js';

/** The fence of job `jobId`'s newest pass, or undefined if it never had one. */
export async function currentPassFence(
  client: DynamoDBClient,
  table: string,
  jobId: string,
): Promise<number | undefined> {
  const { Item } = await DynamoDBDocumentClient.from(client).send(
    new GetCommand({ TableName: table, Key: { pk: `job#${jobId}`, sk: CURRENT_PASS }, ConsistentRead: true }),
  );
  return Item?.fence;
}

/** The pass as stored now; throws if it was never opened. */
export async function readPass(pass: PassItem): Promise<PassState> {
  const found = await findPass(pass);
  if (!found) throw new Error(`pass ${passName(pass)} does not exist`);
  return found;
}

/** The pass as stored now, or undefined if it was never opened. */
export async function findPass(pass: PassItem): Promise<PassState | undefined> {
  const { Item } = await pass.doc.send(
    new GetCommand({ TableName: pass.table, Key: passKey(pass), ConsistentRead: true }),
  );
  if (!Item) return undefined;
  return {
    outstanding: Item.outstanding,
    state: Item.state,
    totals: Item.totals,
    startedAt: Item.startedAt,
    updatedAt: Item.updatedAt,
    ...(Item.runId && { runId: Item.runId, job: Item.job }),
    ...(Item.eventWindow && { eventWindow: Item.eventWindow }),
    ...(Item.endedBy && { endedBy: Item.endedBy }),
    ...(Item.endingUntil && { endingUntil: Item.endingUntil }),
    ...(Item.eventPublishedAt && { eventPublishedAt: Item.eventPublishedAt }),
    ...(Item.finishedAt && { finishedAt: Item.finishedAt }),
  };
}
