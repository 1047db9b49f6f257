/**
 * The cost of event-driven sync (docs/event-driven.md) beside listing on a schedule: a month of a bucket
 * whose objects change at a daily rate, kept current by S3 events plus a daily reconciling pass, or by a
 * listing pass every few minutes, split by the account that pays. Pure, like cost-model.ts, on whose
 * pass and per-copy figures it builds; checked by hand in test/unit/events-cost-model.test.ts.
 */
import {
  backfillCost,
  type CostLine,
  type Deployment,
  keepInSyncCost,
  type Measured,
  type Prices,
} from './cost-model.js';

/** EventBridge's price for an event put on another account's bus, billed to the sender (AccountA). */
export const EVENTBRIDGE_CROSS_ACCOUNT_PER_MILLION = 1;

/**
 * What applyChange does per change beyond the copy itself (functions/core/events/apply-change.ts): a HEAD
 * of the source with the read-only role, and two consistent GetItems (the lease's fence, the key's ledger
 * entry). SQS: EventBridge's SendMessage, the worker's ReceiveMessage and DeleteMessage, each for one
 * event at worst (batches of up to 10 share the last two).
 */
export const PER_CHANGE = { heads: 1, consistentReads: 2, sqsRequests: 3, invocations: 1 } as const;

export interface EventWorkload {
  keys: number;
  /** Share of the keys changed a day (each change a distinct key). */
  dailyChangeRate: number;
  objectBytes: number;
  keysPerShard: number;
  daysPerMonth: number;
}

/** One way of keeping the bucket current, for a month. */
export interface ModeCost {
  mode: string;
  accountA: number;
  accountB: number;
  usd: number;
  lines: CostLine[];
}

const sum = (lines: CostLine[], payer?: 'A' | 'B') =>
  lines
    .filter((line) => payer === undefined || line.payer === payer)
    .reduce((total, line) => total + line.usd, 0);

function mode(name: string, lines: CostLine[]): ModeCost {
  return { mode: name, accountA: sum(lines, 'A'), accountB: sum(lines, 'B'), usd: sum(lines), lines };
}

/** The copies of a month's changes, as a pass or the event worker makes them (GET, PUT, ledger, Lambda). */
function copyLines(
  changes: number,
  work: EventWorkload,
  measured: Measured,
  deployment: Deployment,
  prices: Prices,
) {
  return backfillCost(
    { objects: changes, bytes: changes * work.objectBytes },
    measured,
    deployment,
    prices,
  ).lines.filter(
    (line) =>
      !line.component.startsWith('S3 LIST') &&
      line.component !== 'SQS requests' &&
      line.component !== 'Lambda requests',
  );
}

/** Listing every `intervalMinutes`, and event-driven with a daily pass, for `work`. */
export function eventDrivenComparison(
  work: EventWorkload,
  intervalsMinutes: number[],
  measured: Measured,
  deployment: Deployment,
  prices: Prices,
): ModeCost[] {
  const changes = work.keys * work.dailyChangeRate * work.daysPerMonth;
  const copies = copyLines(changes, work, measured, deployment, prices);
  const passes = (intervalMinutes: number) =>
    keepInSyncCost({ ...work, intervalMinutes }, measured, deployment, prices).lines.map((line) => ({
      ...line,
      component: `pass: ${line.component}`,
    }));
  const listed = intervalsMinutes.map((minutes) =>
    mode(`listing every ${minutes} minutes`, [...passes(minutes), ...copies]),
  );
  const eventLines: CostLine[] = [
    {
      component: 'EventBridge events to AccountB’s bus',
      payer: 'A',
      quantity: changes,
      unit: 'events',
      usd: (changes / 1e6) * EVENTBRIDGE_CROSS_ACCOUNT_PER_MILLION,
    },
    {
      component: 'S3 HEAD (source)',
      payer: 'A',
      quantity: changes * PER_CHANGE.heads,
      unit: 'requests',
      usd: ((changes * PER_CHANGE.heads) / 1000) * prices.s3.getPer1000,
    },
    {
      component: 'DynamoDB consistent reads (lease, ledger entry)',
      payer: 'B',
      quantity: changes * PER_CHANGE.consistentReads,
      unit: 'read units',
      usd: ((changes * PER_CHANGE.consistentReads) / 1e6) * prices.dynamodb.perMillionReadUnits,
    },
    {
      component: 'SQS requests (send, receive, delete)',
      payer: 'B',
      quantity: changes * PER_CHANGE.sqsRequests,
      unit: 'requests',
      usd: ((changes * PER_CHANGE.sqsRequests) / 1e6) * prices.sqs.perMillionRequests,
    },
    {
      component: 'Lambda requests (event worker)',
      payer: 'B',
      quantity: changes * PER_CHANGE.invocations,
      unit: 'invocations',
      usd: ((changes * PER_CHANGE.invocations) / 1e6) * prices.lambda.perMillionRequests,
    },
  ];
  return [
    mode('S3 events + a daily reconciling pass', [...passes(24 * 60), ...eventLines, ...copies]),
    ...listed,
  ];
}
