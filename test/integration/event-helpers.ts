/**
 * Synthetic S3 events for integration tests: moto gives every real event the same sequencer
 * (docs/event-driven.md), so tests build their own, read by the worker's reader, with real increasing
 * sequencers, pointing at real objects. (Older test files still keep their own copy of `nextSequencer`.)
 */
import { randomUUID } from 'node:crypto';
import { DeleteCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { onTestFinished } from 'vitest';
import { type ObjectChange, parseObjectChange } from '../../functions/core/events/object-change.js';
import type { SyncDependencies } from '../../functions/core/run/sync-types.js';

// Sequencers grow with time, as S3's do: 18 hexadecimal digits from a counter started at the clock.
let counter = BigInt(Date.now()) << 12n;

/** A sequencer later than every one handed out before in this process. */
export function nextSequencer(): string {
  counter += 1n;
  return counter.toString(16).toUpperCase().padStart(18, '0');
}

/** The Object Created event S3 sends (through the producer's rule) for `key` in `bucket`, just written. */
export function objectCreated(bucket: string, key: string): ObjectChange {
  return parseObjectChange({
    id: randomUUID(),
    source: 'aws.s3',
    'detail-type': 'Object Created',
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
