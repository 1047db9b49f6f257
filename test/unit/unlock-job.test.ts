import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import { unlockJob } from '../../functions/core/diagnose/unlock-job.js';
import { LeaseHeldError, UnknownJobError } from '../../functions/core/errors.js';
import { StateStore } from '../../functions/core/state/state-store.js';

const dynamoMock = mockClient(DynamoDBDocumentClient);
const deps = () => ({ state: new StateStore(new DynamoDBClient({ region: 'us-east-1' }), 'table') });
const now = 1_800_000_000_000;
const TTL = 120_000;

/** A lease last renewed `agoMs` before now. */
const lease = (agoMs: number) => ({
  owner: 'run-1',
  fence: 4,
  acquiredAt: now - 300_000,
  expiresAt: now - agoMs + TTL,
});

describe('unlockJob', () => {
  beforeEach(() => {
    dynamoMock.reset();
    dynamoMock.on(UpdateCommand).resolves({});
  });

  it('ends the lease of a holder that stopped renewing, conditional on owner, fence and expiry', async () => {
    const held = lease(90_000);
    dynamoMock.on(GetCommand).resolves({ Item: held });

    const result = await unlockJob(deps(), 'nightly', { force: false, now });

    expect(result.outcome).toBe('ended');
    expect(dynamoMock).toReceiveCommandWith(UpdateCommand, {
      Key: { pk: 'job#nightly', sk: 'lease' },
      ConditionExpression: '#owner = :owner AND fence = :fence AND expiresAt = :expiresAt',
      ExpressionAttributeValues: { ':owner': 'run-1', ':fence': 4, ':expiresAt': held.expiresAt, ':zero': 0 },
    });
  });

  it('refuses while the holder renews it, exit 4, and ends it with --force', async () => {
    dynamoMock.on(GetCommand).resolves({ Item: lease(10_000) });

    const refused = await unlockJob(deps(), 'nightly', { force: false, now }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LeaseHeldError);
    expect(exitCodeFor(refused)).toBe(EXIT.alreadyRunning);
    expect((refused as Error).message).toMatch(/held by run run-1 .*it looks alive.*--force ends the lease/);
    expect(dynamoMock).toReceiveCommandTimes(UpdateCommand, 0);

    const forced = await unlockJob(deps(), 'nightly', { force: true, now });
    expect(forced.outcome).toBe('ended');
  });

  it('says the holder is alive when the lease changed between the read and the write', async () => {
    dynamoMock.on(GetCommand).resolves({ Item: lease(90_000) });
    dynamoMock
      .on(UpdateCommand)
      .rejects(new ConditionalCheckFailedException({ message: 'failed', $metadata: {} }));

    await expect(unlockJob(deps(), 'nightly', { force: false, now })).rejects.toThrow(
      /lease changed while unlocking.*it is alive/,
    );
  });

  it('ends nothing when the lease has expired or there is none', async () => {
    dynamoMock.on(GetCommand).resolves({ Item: lease(TTL + 1) });
    expect((await unlockJob(deps(), 'nightly', { force: false, now })).outcome).toBe('expired');

    dynamoMock.on(GetCommand).resolves({});
    dynamoMock.on(QueryCommand).resolves({ Items: [{ pk: 'job#nightly' }] });
    expect((await unlockJob(deps(), 'nightly', { force: false, now })).outcome).toBe('none');
    expect(dynamoMock).toReceiveCommandTimes(UpdateCommand, 0);
  });

  it('says an unknown job id does not exist, exit 2', async () => {
    dynamoMock.on(GetCommand).resolves({});
    dynamoMock.on(QueryCommand).resolves({ Items: [] });
    dynamoMock.on(ScanCommand).resolves({ Items: [{ pk: 'job#nightly' }] });

    const error = await unlockJob(deps(), 'nigthly', { force: false, now }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(UnknownJobError);
    expect(exitCodeFor(error)).toBe(EXIT.usage);
    expect((error as Error).message).toMatch(/known job ids: nightly$/);
  });

  it('says what it ended: the holder, since when, its fence and expiry', async () => {
    const held = lease(90_000);
    dynamoMock.on(GetCommand).resolves({ Item: held });

    const result = await unlockJob(deps(), 'nightly', { force: false, now });

    const expiresAt = new Date(held.expiresAt).toISOString();
    expect(result).toEqual({
      jobId: 'nightly',
      outcome: 'ended',
      lease: { owner: 'run-1', fence: 4, acquiredAt: new Date(held.acquiredAt).toISOString(), expiresAt },
      message: `ended job nightly's lease, held by run run-1 (since ${new Date(held.acquiredAt).toISOString()}, fence 4, expires ${expiresAt})`,
    });
  });

  it('says "unknown" for a lease that does not record when it was acquired', async () => {
    const { acquiredAt: _, ...held } = lease(90_000);
    dynamoMock.on(GetCommand).resolves({ Item: held });

    const result = await unlockJob(deps(), 'nightly', { force: false, now });

    expect(result.lease).toEqual({
      owner: 'run-1',
      fence: 4,
      acquiredAt: undefined,
      expiresAt: new Date(held.expiresAt).toISOString(),
    });
    expect(result.message).toContain('held by run run-1 (since unknown, fence 4,');
  });

  it('calls a lease expiring exactly now expired, and says the next run takes it', async () => {
    dynamoMock.on(GetCommand).resolves({ Item: { ...lease(0), expiresAt: now } });

    const result = await unlockJob(deps(), 'nightly', { force: false, now });

    expect(result.outcome).toBe('expired');
    expect(result.message).toBe(
      `job nightly's lease (run run-1) expired at ${new Date(now).toISOString()}: the next run takes it; nothing to unlock`,
    );
    expect(dynamoMock).toReceiveCommandTimes(UpdateCommand, 0);
  });

  it('says there is no lease to unlock for a known job without one', async () => {
    dynamoMock.on(GetCommand).resolves({});
    dynamoMock.on(QueryCommand).resolves({ Items: [{ pk: 'job#nightly' }] });

    const result = await unlockJob(deps(), 'nightly', { force: false, now });

    expect(result).toEqual({
      jobId: 'nightly',
      outcome: 'none',
      message: 'job nightly holds no lease: nothing to unlock',
    });
  });

  it('names the unknown job id it was given', async () => {
    dynamoMock.on(GetCommand).resolves({});
    dynamoMock.on(QueryCommand).resolves({ Items: [] });
    dynamoMock.on(ScanCommand).resolves({ Items: [{ pk: 'job#nightly' }] });

    const error = await unlockJob(deps(), 'nigthly', { force: false, now }).catch((e: unknown) => e);

    expect((error as Error).message).toMatch(/^no job "nigthly" in the state table/);
  });

  it('judges the holder alive by the TTL it is given, and says how to end it anyway', async () => {
    // renewed 10 s ago under a 30 s TTL: on time (a 120 s TTL would call it overdue)
    dynamoMock.on(GetCommand).resolves({ Item: { ...lease(0), expiresAt: now + 20_000 } });

    const refused = await unlockJob(deps(), 'nightly', { force: false, now, ttlMs: 30_000 }).catch(
      (e: unknown) => e,
    );

    expect(refused).toBeInstanceOf(LeaseHeldError);
    expect((refused as Error).message).toBe(
      `job nightly's lease is held by run run-1 (since ${new Date(now - 300_000).toISOString()}, fence 4, ` +
        `expires ${new Date(now + 20_000).toISOString()}), which renewed it on schedule: it looks alive. ` +
        'Wait for it to finish, or stop it; --force ends the lease anyway (its writes are then fenced off ' +
        'once another run takes the job)',
    );
  });
});
