import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { TaskQueues } from '../../functions/core/dispatch/task-queue.js';
import { fansOut } from '../../functions/core/fanout/choose-mode.js';
import { parseJob } from '../../functions/core/job.js';
import type { SyncDependencies } from '../../functions/core/run/sync-types.js';
import type { PassState } from '../../functions/core/state/pass-tally.js';

/** The pass tally as a stub: `current` names the job's newest fence, `find` reads that pass. */
const tally = vi.hoisted(() => ({
  current: vi.fn(async (): Promise<number | undefined> => undefined),
  find: vi.fn(async (): Promise<Partial<PassState> | undefined> => undefined),
  constructed: [] as unknown[][],
}));
vi.mock('../../functions/core/state/pass-tally.js', () => ({
  PassTally: class {
    static current = tally.current;
    constructor(...args: unknown[]) {
      tally.constructed.push(args);
    }
    find = tally.find;
  },
}));

const client = new DynamoDBClient({ region: 'us-east-1' });
const recentRuns = vi.fn(async (): Promise<Record<string, unknown>[]> => []);
const queues: TaskQueues = { planShard: vi.fn(async () => {}), copy: vi.fn(async () => {}) };
const deps = (withQueues = true) =>
  ({
    state: { client, tableName: 'sync-state', recentRuns },
    ...(withQueues && { queues }),
  }) as unknown as SyncDependencies;
const job = (mode: 'auto' | 'always' | 'never', aboveKeys = 500) =>
  parseJob({
    jobId: 'job-1',
    source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'source-bucket' },
    destination: { bucket: 'destination-bucket' },
    options: { fanOut: { mode, aboveKeys } },
  });
const lastRunListed = (listed: unknown) => recentRuns.mockResolvedValue([{ runId: 'r', listed }]);

describe('fansOut: inline or fan-out', () => {
  beforeEach(() => {
    tally.current.mockReset().mockResolvedValue(undefined);
    tally.find.mockReset().mockResolvedValue(undefined);
    tally.constructed.length = 0;
    recentRuns.mockReset().mockResolvedValue([]);
  });

  it('runs inline in a deployment without the queues, whatever the job asks, reading nothing', async () => {
    lastRunListed(1_000_000);
    tally.current.mockResolvedValue(4);
    tally.find.mockResolvedValue({ state: 'running' });

    for (const mode of ['always', 'auto', 'never'] as const) {
      expect(await fansOut(deps(false), job(mode))).toBe(false);
    }
    expect(tally.current).not.toHaveBeenCalled();
    expect(tally.find).not.toHaveBeenCalled();
    expect(recentRuns).not.toHaveBeenCalled();
  });

  it("runs inline for mode 'never', however big the last run", async () => {
    lastRunListed(1_000_000);
    tally.current.mockResolvedValue(4);
    tally.find.mockResolvedValue({ state: 'running' });

    expect(await fansOut(deps(), job('never'))).toBe(false);
    expect(recentRuns).not.toHaveBeenCalled();
  });

  it("fans out for mode 'always', reading nothing", async () => {
    expect(await fansOut(deps(), job('always'))).toBe(true);
    expect(tally.current).not.toHaveBeenCalled();
    expect(tally.find).not.toHaveBeenCalled();
    expect(recentRuns).not.toHaveBeenCalled();
  });

  it.each(['running', 'ending'] as const)(
    "'auto' stays in fan-out while the current pass is %s, even after a small run",
    async (state) => {
      tally.current.mockResolvedValue(6);
      tally.find.mockResolvedValue({ state, outstanding: 1 });
      lastRunListed(1);

      expect(await fansOut(deps(), job('auto'))).toBe(true);
      expect(tally.current).toHaveBeenCalledWith(client, 'sync-state', 'job-1');
      expect(tally.constructed).toEqual([[client, 'sync-state', 'job-1', 6]]);
    },
  );

  it.each(['ended', 'abandoned'] as const)(
    "'auto' goes by the last run once the current pass is %s",
    async (state) => {
      tally.current.mockResolvedValue(6);
      tally.find.mockResolvedValue({ state });

      lastRunListed(499);
      expect(await fansOut(deps(), job('auto', 500))).toBe(false);
      lastRunListed(500);
      expect(await fansOut(deps(), job('auto', 500))).toBe(true);
    },
  );

  it("'auto' fans out when the last run listed exactly aboveKeys, not one less", async () => {
    lastRunListed(500);
    expect(await fansOut(deps(), job('auto', 500))).toBe(true);
    expect(recentRuns).toHaveBeenLastCalledWith('job-1', 1);

    lastRunListed(499);
    expect(await fansOut(deps(), job('auto', 500))).toBe(false);

    lastRunListed(501);
    expect(await fansOut(deps(), job('auto', 500))).toBe(true);
  });

  it("'auto' runs inline for a job that never ran, nor passed", async () => {
    expect(await fansOut(deps(), job('auto', 1))).toBe(false);
    expect(tally.find).not.toHaveBeenCalled();
    expect(recentRuns).toHaveBeenCalledWith('job-1', 1);
  });

  it("'auto' runs inline when the last run record has no listed count", async () => {
    recentRuns.mockResolvedValue([{ runId: 'r' }]);
    expect(await fansOut(deps(), job('auto', 1))).toBe(false);
    lastRunListed('900');
    expect(await fansOut(deps(), job('auto', 1))).toBe(false);
  });

  it("'auto' goes by the last run when the current pass's item is gone", async () => {
    tally.current.mockResolvedValue(3);
    tally.find.mockResolvedValue(undefined);

    lastRunListed(10);
    expect(await fansOut(deps(), job('auto', 10))).toBe(true);
    lastRunListed(9);
    expect(await fansOut(deps(), job('auto', 10))).toBe(false);
  });
});
