import { describe, expect, it } from 'vitest';
import {
  backfillCost,
  costPerChangedObject,
  type Deployment,
  type Estimate,
  FULL_VCPU_MB,
  keepInSyncCost,
  lambdaGbSeconds,
  type Measured,
  peerBackfillCosts,
  peerKeepInSyncCosts,
  US_EAST_1,
} from '../../bench/lib/cost-model.js';

// Round figures, so every expected value below is worked out by hand.
const measured: Measured = {
  listsPer1000Keys: 1,
  getsPerObject: 1,
  putsPerObject: 1,
  writeUnitsPerObject: 1,
  readUnitsPerKey: 0.025,
  cpuSecondsPerObject: 0.005,
  cpuSecondsPerMb: 0.01,
  cpuSecondsPerKeyListed: 0.00005,
  sources: {},
};
// One full vCPU per worker, always busy: GB-s = CPU-s × 1,769 / 1,024.
const deployment: Deployment = {
  copyWorkers: 10,
  planners: 10,
  copyWorkerMemoryMb: FULL_VCPU_MB,
  plannerMemoryMb: FULL_VCPU_MB,
  objectsPerTask: 100,
  cpuUtilization: 1,
  listPageSeconds: 0.1,
  ledgerWritesPerSecond: 1000,
  crossRegion: false,
};
const MILLION_1MB = { objects: 1_000_000, bytes: 1e12 };
const HOURLY_1M_KEYS = { keys: 1_000_000, intervalMinutes: 60, keysPerShard: 100_000, daysPerMonth: 1 };

const usdOf = (estimate: Estimate, prefix: string) =>
  estimate.lines.find((line) => line.component.startsWith(prefix))?.usd;

describe('lambdaGbSeconds', () => {
  it('bills CPU-bound work the same GB-seconds below one vCPU, whatever the memory', () => {
    expect(lambdaGbSeconds(1, 512, 1)).toBeCloseTo(1769 / 1024, 9);
    expect(lambdaGbSeconds(1, 1024, 1)).toBeCloseTo(1769 / 1024, 9);
  });

  it('bills memory above one vCPU for nothing faster, and idle time at the utilization', () => {
    expect(lambdaGbSeconds(1, 2048, 1)).toBeCloseTo(2, 9);
    expect(lambdaGbSeconds(1, 2048, 0.5)).toBeCloseTo(4, 9);
  });
});

describe('backfillCost', () => {
  const estimate = backfillCost(MILLION_1MB, measured, deployment, US_EAST_1);

  it('prices each component from the measured counts', () => {
    expect(usdOf(estimate, 'S3 LIST')).toBeCloseTo(0.005, 9); // 1,000 pages at $0.005 per 1,000
    expect(usdOf(estimate, 'S3 GET')).toBeCloseTo(0.4, 9); // 1,000,000 at $0.0004 per 1,000
    expect(usdOf(estimate, 'S3 PUT')).toBeCloseTo(5, 9); // at $0.005 per 1,000
    expect(usdOf(estimate, 'DynamoDB writes')).toBeCloseTo(0.625, 9);
    expect(usdOf(estimate, 'SQS')).toBeCloseTo(0.012, 9); // 10,000 tasks × 3 requests at $0.40 per million
    // 1,000,000 × 5 ms + 1,000,000 MB × 10 ms = 15,000 CPU-s = 25,913.09 GB-s
    expect(usdOf(estimate, 'Lambda duration')).toBeCloseTo(((15_000 * 1769) / 1024) * 0.0000133334, 9);
    expect(usdOf(estimate, 'Lambda requests')).toBeCloseTo(0.002, 9);
    expect(usdOf(estimate, 'data transfer')).toBe(0);
    expect(estimate.usd).toBeCloseTo(6.044 + 0.345513, 5);
  });

  it('puts LIST, GET and transfer on the source account’s bill, the rest on the consumer’s', () => {
    const payers = Object.fromEntries(
      estimate.lines.map((line) => [line.component.split(' (')[0], line.payer]),
    );

    expect(payers).toMatchObject({ 'S3 LIST': 'A', 'S3 GET': 'A', 'data transfer': 'A', 'S3 PUT': 'B' });
    expect(estimate.lines.filter((line) => line.payer === 'B')).toHaveLength(5);
  });

  it('takes as long as the workers copy: 66.7 objects/s each when each costs 15 ms of CPU', () => {
    expect(estimate.hours).toBeCloseTo(1_000_000 / (10 / 0.015) / 3600, 9);
  });

  it('is capped by the ledger partition’s writes per second when the workers could go faster', () => {
    const wide = backfillCost(MILLION_1MB, measured, { ...deployment, copyWorkers: 100 }, US_EAST_1);

    expect(wide.hours).toBeCloseTo(1_000_000 / 1000 / 3600, 9);
    expect(wide.notes[0]).toContain('capped by the ledger');
    expect(estimate.notes[0]).not.toContain('capped');
  });

  it('says when the first pass’s one planner cannot list the source within its timeout', () => {
    const huge = backfillCost({ objects: 10_000_000, bytes: 1e13 }, measured, deployment, US_EAST_1);

    // 10,000 pages × 0.1 s = 1,000 s, over 15 minutes; 1,000 pages are not
    expect(huge.notes[1]).toContain("longer than a planner's 15-minute timeout");
    expect(estimate.notes[1]).not.toContain('timeout');
  });

  it('charges the source account $0.02 a GB across regions', () => {
    const across = backfillCost(MILLION_1MB, measured, { ...deployment, crossRegion: true }, US_EAST_1);

    expect(usdOf(across, 'data transfer')).toBeCloseTo(20, 9);
    expect(across.usd - estimate.usd).toBeCloseTo(20, 9);
  });

  it.each([
    ['listsPer1000Keys', 'S3 LIST'],
    ['getsPerObject', 'S3 GET'],
    ['putsPerObject', 'S3 PUT'],
    ['writeUnitsPerObject', 'DynamoDB writes'],
  ] as const)('doubles only its own component when %s doubles', (field, component) => {
    const doubled = backfillCost(
      MILLION_1MB,
      { ...measured, [field]: measured[field] * 2 },
      deployment,
      US_EAST_1,
    );

    for (const line of doubled.lines) {
      const before = usdOf(estimate, line.component) ?? Number.NaN;
      expect(line.usd).toBeCloseTo(line.component.startsWith(component) ? 2 * before : before, 9);
    }
  });

  it('moves only the Lambda duration with the CPU per object or per MB', () => {
    const perObject = backfillCost(
      MILLION_1MB,
      { ...measured, cpuSecondsPerObject: 0.01 },
      deployment,
      US_EAST_1,
    );
    const perMb = backfillCost(MILLION_1MB, { ...measured, cpuSecondsPerMb: 0.02 }, deployment, US_EAST_1);

    // 20,000 and 25,000 CPU-s against 15,000
    expect(usdOf(perObject, 'Lambda duration')).toBeCloseTo(
      ((usdOf(estimate, 'Lambda duration') ?? 0) * 20) / 15,
      9,
    );
    expect(usdOf(perMb, 'Lambda duration')).toBeCloseTo(
      ((usdOf(estimate, 'Lambda duration') ?? 0) * 25) / 15,
      9,
    );
    expect(perObject.usd - (usdOf(perObject, 'Lambda duration') ?? 0)).toBeCloseTo(
      estimate.usd - (usdOf(estimate, 'Lambda duration') ?? 0),
      9,
    );
  });
});

describe('keepInSyncCost', () => {
  const estimate = keepInSyncCost(HOURLY_1M_KEYS, measured, deployment, US_EAST_1);

  it('prices a day of hourly passes over a million unchanged keys', () => {
    expect(usdOf(estimate, 'S3 LIST')).toBeCloseTo(0.12, 9); // 24 passes × 1,000 pages
    expect(usdOf(estimate, 'DynamoDB reads')).toBeCloseTo(0.075, 9); // 24 × 25,000 read units
    // 10 shards a pass, each 10 s (100 pages × 0.1 s; its 5 s of CPU overlap them)
    expect(usdOf(estimate, 'Lambda duration')).toBeCloseTo(((24 * 10 * 10 * 1769) / 1024) * 0.0000133334, 9);
    expect(usdOf(estimate, 'SQS')).toBeCloseTo(0.000288, 9);
    expect(usdOf(estimate, 'Lambda requests')).toBeCloseTo(24 * 11 * 0.2e-6, 12);
    expect(estimate.hours).toBeCloseTo(10 / 3600, 9);
  });

  it('scales with the pass frequency and the read units per key', () => {
    const often = keepInSyncCost({ ...HOURLY_1M_KEYS, intervalMinutes: 5 }, measured, deployment, US_EAST_1);
    const heavier = keepInSyncCost(
      HOURLY_1M_KEYS,
      { ...measured, readUnitsPerKey: 0.05 },
      deployment,
      US_EAST_1,
    );

    expect(often.usd).toBeCloseTo(estimate.usd * 12, 9);
    expect(heavier.usd - estimate.usd).toBeCloseTo(0.075, 9);
  });

  it('takes the planner’s CPU time when it is longer than its pages, and says when a pass outlasts the interval', () => {
    const slow = keepInSyncCost(
      { ...HOURLY_1M_KEYS, intervalMinutes: 5 },
      { ...measured, cpuSecondsPerKeyListed: 0.004 }, // 400 s a shard
      { ...deployment, planners: 1 },
      US_EAST_1,
    );

    expect(slow.hours).toBeCloseTo((10 * 400) / 3600, 9);
    expect(slow.notes[0]).toContain('longer than the interval');
    expect(estimate.notes[0]).not.toContain('longer than the interval');
  });
});

describe('costPerChangedObject', () => {
  it('is a backfill of one object without its listing or queue share', () => {
    // GET $0.0000004 + PUT $0.000005 + 1 write unit $0.000000625 + 15 ms CPU + 1/100 invocation
    const expected = 0.0000004 + 0.000005 + 0.000000625 + ((0.015 * 1769) / 1024) * 0.0000133334 + 0.2e-6;

    expect(costPerChangedObject(1e6, measured, deployment, US_EAST_1)).toBeCloseTo(expected, 12);
  });
});

describe('the peers', () => {
  it('price a backfill by their published rates', () => {
    const [dataSync, hub, batch] = peerBackfillCosts(MILLION_1MB, deployment, US_EAST_1, 100);

    // 1,000 GB × $0.015 + GET and PUT ($5.40) + LIST of both buckets ($0.01)
    expect(dataSync?.usd).toBeCloseTo(15 + 5.4 + 0.01, 9);
    // the same requests + 3 SQS requests and 2 write units an object + 10,000 s of EC2 at $0.068/h
    expect(hub?.usd).toBeCloseTo(5.4 + 0.01 + 1.2 + 1.25 + (10_000 / 3600) * 0.068, 9);
    // $0.25 a job + $1 per million objects + a PUT each
    expect(batch?.usd).toBeCloseTo(0.25 + 1 + 5, 9);
  });

  it('cannot keep a bucket in sync every 5 minutes with DataSync, whose schedules are hourly at most', () => {
    const [dataSync, hub, replication] = peerKeepInSyncCosts(
      { keys: 1_000_000, intervalMinutes: 5, daysPerMonth: 1 },
      US_EAST_1,
      20_000,
    );

    expect(dataSync?.usd).toBeUndefined();
    expect(dataSync?.basis).toContain('$0 a month'); // 24 hourly passes × 2,000 pages = $0.24
    // 288 passes × 2,000 pages × $0.005 per 1,000 + 288 × 50 s of EC2
    expect(hub?.usd).toBeCloseTo(2.88 + ((288 * 50) / 3600) * 0.068, 9);
    expect(replication?.usd).toBe(0);
  });
});
