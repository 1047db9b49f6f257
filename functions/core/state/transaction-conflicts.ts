/**
 * Reading a cancelled DynamoDB transaction (state/pass-*.ts, state/part-uploads.ts): which of its items was
 * refused and why, and how a writer that lost to another transaction on the same items goes again.
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';

/**
 * Attempts at a transaction that DynamoDB cancels for a conflicting transaction on the same items (two
 * deliveries of one task, parts recorded at the same moment): enough for any plausible pile-up of workers.
 */
export const MAX_CONFLICT_ATTEMPTS = 10;

/** Whether a cancelled transaction lost to another on the same items (it may go again). */
export function isConflict(...itemReasons: (string | undefined)[]): boolean {
  return itemReasons.includes('TransactionConflict');
}

/** A short random pause, longer with each attempt, so that two conflicting writers do not meet again. */
export function pauseAfterConflict(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
}

/** Why each item of a cancelled transaction was refused, in the transaction's order; empty otherwise. */
export function reasons(error: unknown): (string | undefined)[] {
  if (!(error instanceof TransactionCanceledException)) return [];
  return (error.CancellationReasons ?? []).map((reason) => reason.Code);
}
