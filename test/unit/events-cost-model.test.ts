import { describe, expect, it } from 'vitest';
import { type Deployment, FULL_VCPU_MB, type Measured, US_EAST_1 } from '../../bench/lib/cost-model.js';
import { eventDrivenComparison } from '../../bench/lib/events-cost-model.js';

// Round figures, so the expected values are worked out by hand.
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
// 1,000,000 keys, 1 % a day for 30 days: 300,000 changes.
const work = {
  keys: 1_000_000,
  dailyChangeRate: 0.01,
  objectBytes: 1e6,
  keysPerShard: 100_000,
  daysPerMonth: 30,
};

describe('eventDrivenComparison', () => {
  const [events, every5, every15] = eventDrivenComparison(work, [5, 15], measured, deployment, US_EAST_1);
  const line = (mode: typeof events, prefix: string) =>
    mode?.lines.find((l) => l.component.startsWith(prefix));

  it('prices each change’s event to AccountA at $1/million and its HEAD at the GET price, both paid by A', () => {
    expect(line(events, 'EventBridge')).toMatchObject({ payer: 'A', quantity: 300_000, usd: 0.3 });
    expect(line(events, 'S3 HEAD')).toMatchObject({ payer: 'A', quantity: 300_000 });
    expect(line(events, 'S3 HEAD')?.usd).toBeCloseTo(0.12, 10);
    expect(line(events, 'SQS requests')).toMatchObject({ payer: 'B', quantity: 900_000 });
    expect(line(events, 'DynamoDB consistent reads')).toMatchObject({ payer: 'B', quantity: 600_000 });
  });

  it('lists once a day with events and 8,640 or 2,880 times a month without, LIST paid by A', () => {
    // 1,000 pages a pass.
    expect(line(events, 'pass: S3 LIST')).toMatchObject({ payer: 'A', quantity: 30_000 });
    expect(line(every5, 'pass: S3 LIST')).toMatchObject({ payer: 'A', quantity: 8_640_000 });
    expect(line(every15, 'pass: S3 LIST')).toMatchObject({ payer: 'A', quantity: 2_880_000 });
  });

  it('copies the same changes in every mode, and splits each total between the accounts', () => {
    for (const mode of [events, every5, every15]) {
      expect(line(mode, 'S3 PUT')).toMatchObject({ payer: 'B', quantity: 300_000 });
      expect(line(mode, 'S3 GET')).toMatchObject({ payer: 'A', quantity: 300_000 });
      expect((mode?.accountA ?? 0) + (mode?.accountB ?? 0)).toBeCloseTo(mode?.usd ?? -1, 10);
    }
    expect(events?.usd).toBeLessThan(every15?.usd ?? 0);
    expect(every15?.usd).toBeLessThan(every5?.usd ?? 0);
  });
});
