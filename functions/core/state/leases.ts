/**
 * The job's lease: one run at a time holds it, and each acquisition raises the fencing token that every
 * ledger and checkpoint write carries.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { JobAlreadyRunningError, LeaseLostError } from '../errors.js';
import { call, jobPk, type StateTable } from './state-table.js';

/** The job's lease, with the fencing token that orders its holders. */
export interface Lease {
  owner: string;
  expiresAt: number;
  fence: number;
  /** When the holder took the lease (epoch ms); absent on leases taken before it was recorded. */
  acquiredAt?: number;
}

/**
 * Takes the job's lease for `ttlMs`, or throws JobAlreadyRunningError naming the holder.
 * Each acquisition increments the fencing token.
 */
export async function acquireLease(
  table: StateTable,
  jobId: string,
  owner: string,
  ttlMs: number,
  now = Date.now(),
): Promise<Lease> {
  try {
    const result = await call(table, 'acquireLease (UpdateItem)', () =>
      table.doc.send(
        new UpdateCommand({
          TableName: table.name,
          Key: { pk: jobPk(jobId), sk: 'lease' },
          UpdateExpression:
            'SET #owner = :owner, expiresAt = :expiresAt, acquiredAt = :now, fence = if_not_exists(fence, :zero) + :one',
          // Free, expired (its holder died or overran), or already ours (a retried acquire).
          ConditionExpression: 'attribute_not_exists(expiresAt) OR expiresAt < :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':owner': owner,
            ':expiresAt': now + ttlMs,
            ':now': now,
            ':zero': 0,
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    const item = result.Attributes as Lease;
    return { owner: item.owner, expiresAt: item.expiresAt, fence: item.fence, acquiredAt: item.acquiredAt };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const holder = await readLease(table, jobId);
    const iso = (ms: number | undefined) => (ms === undefined ? 'unknown' : new Date(ms).toISOString());
    throw new JobAlreadyRunningError(
      `job ${jobId} is already running (run ${holder?.owner ?? 'unknown'}, holding the lease since ` +
        `${iso(holder?.acquiredAt)}, until ${iso(holder?.expiresAt)} unless it renews it); ` +
        'this invocation copied nothing. It will run on the next schedule.',
      { cause: error },
    );
  }
}

/** Extends a held lease; throws LeaseLostError when another run has taken it. */
export async function renewLease(
  table: StateTable,
  jobId: string,
  lease: Lease,
  ttlMs: number,
  now = Date.now(),
): Promise<Lease> {
  try {
    await call(table, 'renewLease (UpdateItem)', () =>
      table.doc.send(
        new UpdateCommand({
          TableName: table.name,
          Key: { pk: jobPk(jobId), sk: 'lease' },
          UpdateExpression: 'SET expiresAt = :expiresAt',
          // Only the holder of this exact acquisition may extend it.
          ConditionExpression: '#owner = :owner AND fence = :fence',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':owner': lease.owner,
            ':fence': lease.fence,
            ':expiresAt': now + ttlMs,
          },
        }),
      ),
    );
    return { ...lease, expiresAt: now + ttlMs };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new LeaseLostError(`job ${jobId}: lease taken over by another run; stopping`, { cause: error });
    }
    throw error;
  }
}

/** Gives the lease back so the next run need not wait for it to expire. */
export async function releaseLease(table: StateTable, jobId: string, lease: Lease): Promise<void> {
  await zeroLease(table, 'releaseLease', jobId, lease, false);
}

/**
 * Sets the lease's expiry to 0 if `lease` still holds it (owner and fence; with `asRead`, also not
 * renewed since it was read). Returns false when the condition refused the write.
 */
async function zeroLease(
  table: StateTable,
  operation: string,
  jobId: string,
  lease: Lease,
  asRead: boolean,
): Promise<boolean> {
  try {
    await call(table, `${operation} (UpdateItem)`, () =>
      table.doc.send(
        new UpdateCommand({
          TableName: table.name,
          Key: { pk: jobPk(jobId), sk: 'lease' },
          UpdateExpression: 'SET expiresAt = :zero',
          // Releasing someone else's lease would let a third run in beside them; `asRead` also
          // spares a holder that renewed it since it was read (it is alive).
          ConditionExpression: `#owner = :owner AND fence = :fence${asRead ? ' AND expiresAt = :expiresAt' : ''}`,
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':owner': lease.owner,
            ':fence': lease.fence,
            ':zero': 0,
            ...(asRead && { ':expiresAt': lease.expiresAt }),
          },
        }),
      ),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** The lease as stored (a consistent read), or undefined when the job never took one. */
export async function readLease(table: StateTable, jobId: string): Promise<Lease | undefined> {
  const result = await call(table, 'readLease (GetItem)', () =>
    table.doc.send(
      new GetCommand({
        TableName: table.name,
        Key: { pk: jobPk(jobId), sk: 'lease' },
        ConsistentRead: true,
      }),
    ),
  );
  return result.Item as Lease | undefined;
}

/**
 * Ends the lease `lease` as read, for `unlock`: only if it still has that holder, fence and expiry, so
 * a holder that renewed it since it was read (it is alive) or a run that took it over keeps it.
 *
 * @returns whether the lease was ended; false when it changed since it was read
 */
export async function endLease(table: StateTable, jobId: string, lease: Lease): Promise<boolean> {
  return zeroLease(table, 'endLease', jobId, lease, true);
}
