/**
 * Synthetic S3 events for integration tests: moto gives every real event the same sequencer
 * (docs/event-driven.md), so tests build their own, read by the worker's reader, with real increasing
 * sequencers, pointing at real objects.
 * Also what the tests of a pass racing an event share: the race's gates, the event worker's clients, and
 * the clean-up of the shared table.
 */
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { DeleteCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { onTestFinished } from 'vitest';
import { sourceCredentials } from '../../functions/core/access/source-credentials.js';
import type { ChangeDependencies } from '../../functions/core/events/apply-change.js';
import { type ObjectChange, parseObjectChange } from '../../functions/core/events/object-change.js';
import type { Job } from '../../functions/core/job.js';
import type { SyncDependencies } from '../../functions/core/run/sync-types.js';
import { StateStore } from '../../functions/core/state/state-store.js';
import { sandboxDynamo, sandboxS3 } from '../../sandbox/clients.js';
import type { SandboxInfo } from '../../sandbox/sandbox.js';

// Sequencers grow with time, as S3's do: 18 hexadecimal digits from a counter started at the clock.
let counter = BigInt(Date.now()) << 12n;

/** A sequencer later than every one handed out before in this process. */
export function nextSequencer(): string {
  counter += 1n;
  return counter.toString(16).toUpperCase().padStart(18, '0');
}

/** The Object Created event S3 sends (through the producer's rule) for `key` in `bucket`, just written. */
export function objectCreated(bucket: string, key: string): ObjectChange {
  return objectEvent('Object Created', bucket, key);
}

/** The Object Deleted event S3 sends (through the producer's rule) for `key` in `bucket`, just deleted. */
export function objectDeleted(bucket: string, key: string): ObjectChange {
  return objectEvent('Object Deleted', bucket, key);
}

function objectEvent(type: 'Object Created' | 'Object Deleted', bucket: string, key: string): ObjectChange {
  return parseObjectChange({
    id: randomUUID(),
    source: 'aws.s3',
    'detail-type': type,
    time: new Date().toISOString(),
    detail: { bucket: { name: bucket }, object: { key, sequencer: nextSequencer() } },
  });
}

/**
 * Removes every item of `jobId` from the shared sandbox table once the test ends (ledger, lease, runs,
 * passes, part uploads, intents), so tests sharing the table never see each other's state.
 */
export function forgetJobWhenDone(deps: Pick<SyncDependencies, 'state'>, jobId: string): void {
  onTestFinished(async () => {
    const doc = DynamoDBDocumentClient.from(deps.state.client);
    const table = deps.state.tableName;
    for (const pk of [`ledger#${jobId}`, `job#${jobId}`]) {
      const { Items = [] } = await doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
        }),
      );
      await Promise.all(
        Items.map((item) => doc.send(new DeleteCommand({ TableName: table, Key: { pk, sk: item.sk } }))),
      );
    }
  });
}

/** Where a pass's race with an event is run: before one of its S3 requests, or before a ledger write. */
export type RaceAt =
  | { s3Command: string; destinationKey: string }
  | { ledgerKey: string; ledgerCommand?: LedgerCommand }
  | { byTheTest: true };

/** A ledger write a race is run before; 'any write' is the first of PutItem, UpdateItem and DeleteItem. */
export type LedgerCommand = 'PutItemCommand' | 'DeleteItemCommand' | 'UpdateItemCommand' | 'any write';
const LEDGER_WRITES = ['PutItemCommand', 'DeleteItemCommand', 'UpdateItemCommand'];

/**
 * The pass's clients (own S3 and DynamoDB clients over `deps`'s table), with `race` run once, once armed,
 * `at`: just before the pass's `s3Command` request (say `PutObjectCommand`) for `destinationKey`, or just
 * before its PutItem (or `ledgerCommand`, say its DeleteItem) of source key `ledgerKey`'s ledger item;
 * `byTheTest`: when the test calls `race`.
 */
export function racingDependencies(
  sandbox: SandboxInfo,
  deps: SyncDependencies,
  at: RaceAt,
  race: () => Promise<void>,
) {
  let armed = false;
  let raced = false;
  const once = async () => {
    if (!armed || raced) return;
    raced = true;
    await race();
  };
  const destinationS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
  destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string };
      if ('s3Command' in at && context.commandName === at.s3Command && input.Key === at.destinationKey) {
        await once();
      }
      return next(args);
    },
    { step: 'initialize' },
  );
  const dynamodb = sandboxDynamo(sandbox);
  // The state table's DocumentClient shares this stack: its PutCommand shows as PutItemCommand, unmarshalled.
  dynamodb.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as {
        Item?: { pk?: unknown; sk?: unknown };
        Key?: { pk?: unknown; sk?: unknown };
      };
      const command = 'ledgerKey' in at ? (at.ledgerCommand ?? 'PutItemCommand') : undefined;
      const gated =
        command === 'any write'
          ? LEDGER_WRITES.includes(String(context.commandName))
          : context.commandName === command;
      if ('ledgerKey' in at && gated) {
        const item = input.Item ?? input.Key;
        if (String(item?.pk).startsWith('ledger#') && item?.sk === at.ledgerKey) await once();
      }
      return next(args);
    },
    { step: 'initialize' },
  );
  return {
    deps: { ...deps, destinationS3, state: new StateStore(dynamodb, deps.state.tableName) },
    arm: () => {
      armed = true;
    },
    race: once,
    raced: () => raced,
  };
}

/** The event worker's dependencies for `job`, with clients of its own (no gate of the pass's). */
export function eventDependencies(
  sandbox: SandboxInfo,
  deps: SyncDependencies,
  job: Job,
  session: string,
): ChangeDependencies {
  return {
    sourceS3: deps.sourceS3(sourceCredentials(deps.sts, job, session)) as S3Client,
    destinationS3: sandboxS3(sandbox, sandbox.accountB.syncer),
    state: deps.state,
  };
}
