/**
 * The deletion mark that orders a destination delete against a writer of the same key
 * (state/deletion-marks.ts, docs/event-driven.md "Deletions and writers of the same bytes"): the mark is
 * set only on the item as read, an event's write is refused while it is live or once the item moved, and
 * the deleter's final record needs its own mark.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DELETION_MARK_TTL_MS, isMarkedForDeletion } from '../../functions/core/state/deletion-marks.js';
import { StateStore } from '../../functions/core/state/state-store.js';

const dynamoMock = mockClient(DynamoDBDocumentClient);
const store = () => new StateStore(new DynamoDBClient({ region: 'us-east-1' }), 'table');
const refused = () => new ConditionalCheckFailedException({ message: 'refused', $metadata: {} });
const read = 'A'.repeat(63);
const later = 'B'.repeat(63);
const copiedAt = '2026-12-03T09:00:00.000Z';
const entry = { key: 'k', etag: '"e"', destinationEtag: '"e"', copiedAt, sequencer: read };

describe('StateStore.markDeletion', () => {
  beforeEach(() => dynamoMock.reset());

  it('marks the item only while it is the one read, unheld, under the fence, until the longest Lambda run', async () => {
    dynamoMock.on(UpdateCommand).resolves({});

    const result = await store().markDeletion('job', entry, 7, 'pass#run', 1_000);

    expect(result).toMatchObject({ marked: true, token: expect.stringMatching(/^pass#run#/) });
    const input = dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      Key: { pk: 'ledger#job', sk: 'k' },
      UpdateExpression: 'SET deletingBy = :token, deletingUntil = :until, deletingEtag = :target',
      ConditionExpression:
        '(attribute_not_exists(fence) OR fence <= :fence) AND ' +
        '(attribute_exists(sk) AND sequencer = :readSequencer AND ca = :readCopiedAt) AND ' +
        '(attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
      ExpressionAttributeValues: {
        ':fence': 7,
        ':readSequencer': read,
        ':readCopiedAt': Date.parse(copiedAt),
        ':markNow': 1_000,
        ':until': 1_000 + DELETION_MARK_TTL_MS,
        ':token': result.marked ? result.token : '',
        ':target': 'e',
      },
    });
    expect(DELETION_MARK_TTL_MS).toBeGreaterThan(900_000);
  });

  it('requires no sequencer and no copy time when the read entry had none', async () => {
    dynamoMock.on(UpdateCommand).resolves({});

    await store().markDeletion('job', { key: 'k' }, 7, 'pass#run', 1_000);

    expect(dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input.ConditionExpression).toContain(
      '(attribute_exists(sk) AND attribute_not_exists(sequencer) AND attribute_not_exists(ca))',
    );
  });

  it('returns the item as it is now when refused, or nothing when it is gone', async () => {
    dynamoMock.on(UpdateCommand).rejects(refused());
    dynamoMock
      .on(GetCommand)
      .resolvesOnce({ Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: later } })
      .resolves({});

    expect(await store().markDeletion('job', entry, 7, 'pass#run')).toEqual({
      marked: false,
      now: expect.objectContaining({ key: 'k', sequencer: later }),
    });
    expect(await store().markDeletion('job', entry, 7, 'pass#run')).toEqual({
      marked: false,
      now: undefined,
    });
  });

  it('names the copy it deletes, and shares the live mark of another delivery of the same deletion', async () => {
    dynamoMock.on(UpdateCommand).rejects(refused());
    const held = { deletingBy: 'pass#run#twin', deletingUntil: 9e15, deletingEtag: 'e' };
    dynamoMock
      .on(GetCommand)
      .resolvesOnce({
        Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: read, ca: Date.parse(copiedAt), ...held },
      })
      .resolves({
        Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: read, ca: Date.parse(copiedAt), ...held },
      });

    expect(await store().markDeletion('job', entry, 7, 'pass#run')).toEqual({
      marked: true,
      token: 'pass#run#twin',
    });
    expect(await store().markDeletion('job', entry, 7, 'pass#other')).toMatchObject({ marked: false });
    expect(dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      UpdateExpression: 'SET deletingBy = :token, deletingUntil = :until, deletingEtag = :target',
      ExpressionAttributeValues: { ':target': 'e' },
    });
  });

  it('widens only its own mark to whatever is at the key', async () => {
    dynamoMock.on(UpdateCommand).resolvesOnce({}).rejects(refused());

    expect(await store().widenDeletionMark('job', 'k', 'mine')).toBe(true);
    expect(await store().widenDeletionMark('job', 'k', 'mine')).toBe(false);
    expect(dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      UpdateExpression: 'REMOVE deletingEtag',
      ConditionExpression: 'deletingBy = :markToken',
    });
  });

  it('stops the deleter when a newer fence owns the key', async () => {
    dynamoMock.on(UpdateCommand).rejects(refused());
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 8, sequencer: read } });

    await expect(store().markDeletion('job', entry, 7, 'pass#run')).rejects.toMatchObject({
      name: 'LeaseLostError',
    });
  });

  it('clears only its own mark, and ignores a mark that is no longer its own', async () => {
    dynamoMock.on(UpdateCommand).rejectsOnce(refused());

    await store().clearDeletionMark('job', 'k', 'mine');

    expect(dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      UpdateExpression: 'REMOVE deletingBy, deletingUntil, deletingEtag',
      ConditionExpression: 'deletingBy = :markToken',
      ExpressionAttributeValues: { ':markToken': 'mine' },
    });
  });

  it('tells a live mark from an expired one', () => {
    expect(isMarkedForDeletion({ key: 'k', deletingBy: 't', deletingUntil: 2_000 }, 1_000)).toBe(true);
    expect(isMarkedForDeletion({ key: 'k', deletingBy: 't', deletingUntil: 999 }, 1_000)).toBe(false);
    expect(isMarkedForDeletion({ key: 'k' }, 1_000)).toBe(false);
  });
});

describe('StateStore.putLedgerEntryInOrder with a guard', () => {
  beforeEach(() => dynamoMock.reset());

  it("is refused, as 'changed', once the item moved since the writer read it or while a deleter holds it", async () => {
    dynamoMock.on(PutCommand).resolves({});

    const event = { key: 'k', etag: '"e"', sequencer: later, deletingBy: 'old', deletingUntil: 1 };
    expect(await store().putLedgerEntryInOrder('job', event, 7, { read: entry })).toBe('recorded');

    const input = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe(
      '(attribute_not_exists(sequencer) OR sequencer < :sequencer) AND ' +
        '(attribute_not_exists(fence) OR fence <= :fence) AND ' +
        '(attribute_exists(sk) AND sequencer = :readSequencer AND ca = :readCopiedAt) AND ' +
        '(attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
    );
    // A mark copied from the entry read is never written back.
    expect(input?.Item).not.toHaveProperty('deletingBy');
    expect(input?.Item).not.toHaveProperty('deletingUntil');

    dynamoMock.on(PutCommand).rejects(refused());
    dynamoMock
      .on(GetCommand)
      .resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: read, deletingUntil: 9e15 } });
    expect(await store().putLedgerEntryInOrder('job', event, 7, { read: entry })).toBe('changed');
  });

  it('lets a copy of other bytes than the one a deleter deletes be recorded over its mark', async () => {
    dynamoMock.on(PutCommand).resolves({});

    await store().putLedgerEntryInOrder('job', { key: 'k', sequencer: later }, 7, {
      read: entry,
      written: 'e2',
    });

    const input = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toContain(
      '(attribute_not_exists(deletingUntil) OR deletingUntil < :markNow OR (attribute_exists(deletingEtag) AND deletingEtag <> :written))',
    );
    expect(input?.ExpressionAttributeValues).toMatchObject({ ':written': 'e2' });
  });

  it('requires no item at all when the writer read none', async () => {
    dynamoMock.on(PutCommand).resolves({});

    await store().putLedgerEntryInOrder('job', { key: 'k', sequencer: later }, 7, { read: undefined });

    expect(dynamoMock.commandCalls(PutCommand)[0]?.args[0].input.ConditionExpression).toContain(
      '(attribute_not_exists(sk))',
    );
  });

  it("replaces only the deleter's own mark with its final record", async () => {
    dynamoMock.on(PutCommand).resolves({});

    await store().putLedgerEntryInOrder('job', { key: 'k', sequencer: later }, 7, { token: 'mine' });

    const input = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toContain('(deletingBy = :markToken)');
    expect(input?.ExpressionAttributeValues).toMatchObject({ ':markToken': 'mine' });
  });

  it("is still 'stale' when a later change is on record, guard or not", async () => {
    dynamoMock.on(PutCommand).rejects(refused());
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: later } });

    expect(await store().putLedgerEntryInOrder('job', { key: 'k', sequencer: read }, 7, { token: 't' })).toBe(
      'stale',
    );
  });
});
