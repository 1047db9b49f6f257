import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import { showStatusCommand } from '../../cli/show-status-command.js';
import { UnknownJobError } from '../../functions/core/errors.js';
import { StateStore } from '../../functions/core/state/state-store.js';

const dynamoMock = mockClient(DynamoDBDocumentClient);
const deps = () => ({ state: new StateStore(new DynamoDBClient({ region: 'us-east-1' }), 'table') });

describe('showStatusCommand', () => {
  beforeEach(() => {
    dynamoMock.reset();
    dynamoMock.on(GetCommand).resolves({});
    dynamoMock.on(QueryCommand).resolves({ Items: [] });
  });

  it('says a mistyped job id does not exist and lists the known ones, with a bounded Scan', async () => {
    // prepare: the table knows "nightly" (a lease, a run) and "hourly" (only ledger items)
    dynamoMock
      .on(ScanCommand)
      .resolves({ Items: [{ pk: 'job#nightly' }, { pk: 'ledger#hourly' }, { pk: 'job#nightly' }] });

    // act
    const error = await showStatusCommand(deps(), ['nigthly']).catch((e: unknown) => e);

    // assess
    expect(error).toBeInstanceOf(UnknownJobError);
    expect(exitCodeFor(error)).toBe(EXIT.usage);
    expect((error as Error).message).toBe(
      'no job "nigthly" in the state table (no lease, checkpoint, run record or ledger item): check ' +
        '--job-id; known job ids: hourly, nightly',
    );
    expect(dynamoMock).toReceiveCommandWith(QueryCommand, {
      ExpressionAttributeValues: { ':pk': 'job#nigthly' },
    });
    expect(dynamoMock).toReceiveCommandWith(QueryCommand, {
      ExpressionAttributeValues: { ':pk': 'ledger#nigthly' },
      Limit: 1,
    });
    // The sort key too: a stored job (pk "jobs") is named by it.
    expect(dynamoMock).toReceiveCommandWith(ScanCommand, { ProjectionExpression: 'pk, sk', Limit: 1000 });
  });

  it('stops the Scan after 1000 items and says the list may be incomplete', async () => {
    dynamoMock.on(ScanCommand).resolves({
      Items: Array.from({ length: 1000 }, () => ({ pk: 'ledger#big' })),
      LastEvaluatedKey: { pk: 'ledger#big', sk: 'k' },
    });

    const error = await showStatusCommand(deps(), ['other']).catch((e: unknown) => e);

    expect((error as Error).message).toMatch(/known job ids \(among the first 1000 items\): big$/);
    expect(dynamoMock).toReceiveCommandTimes(ScanCommand, 1);
  });

  it('shows a job that never ran but has ledger items, without scanning', async () => {
    dynamoMock
      .on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'ledger#fresh' }, Limit: 1 })
      .resolves({ Items: [{ pk: 'ledger#fresh' }] });

    const result = await showStatusCommand(deps(), ['fresh']);

    expect(result.exitCode).toBe(EXIT.ok);
    expect(result.text).toMatch(/fresh +never ran/);
    expect(dynamoMock).toReceiveCommandTimes(ScanCommand, 0);
  });

  it('shows who holds the lease, since when, until when, and that a holder that stopped renewing may be dead', async () => {
    const now = Date.now();
    dynamoMock.on(GetCommand).resolves({
      // acquired 100 s ago and never renewed: the 120 s lease expires in 20 s
      Item: { owner: 'run-dead', fence: 3, acquiredAt: now - 100_000, expiresAt: now + 20_000 },
    });

    const result = await showStatusCommand(deps(), ['nightly']);

    expect(result.text).toContain(
      `held by run-dead since ${new Date(now - 100_000).toISOString()}, expires ${new Date(now + 20_000).toISOString()} ` +
        '(not renewed: its run may have died; `unlock` ends it)',
    );
  });
});
