/**
 * One batch's deletion budget (events/deletion-budget.ts) over a job's allowance: what it asks, what a
 * refusal says, counts and logs. The allowance is a stub (its own tests cover the conditions).
 */
import { describe, expect, it, vi } from 'vitest';
import { DeletionBudget } from '../../functions/core/events/deletion-budget.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { parseJob } from '../../functions/core/job.js';
import type { SyncMetrics } from '../../functions/core/run/sync-types.js';
import type {
  DeletionRequest,
  EventDeletionAllowance,
} from '../../functions/core/state/event-deletion-allowance.js';

const job = (jobId = 'ev-job') =>
  parseJob({
    jobId,
    source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'producer', prefix: 'in/' },
    destination: { bucket: 'consumer' },
    options: { events: true, mirror: true, maxDeletesPerRun: 2, eventDeletionWindowMinutes: 30 },
  });
const change = (key: string): ObjectChange => ({
  eventId: `e-${key}`,
  bucket: 'producer',
  key,
  change: 'deleted',
  sequencer: '0064D3901D00059242',
  eventTime: new Date('2026-12-03T12:00:00Z'),
});
const window = { start: new Date('2026-12-03T12:00:00Z'), end: new Date('2026-12-03T12:30:00Z') };
const now = new Date('2026-12-03T12:10:00Z');

function budget(granted: boolean | Error) {
  const requests: DeletionRequest[] = [];
  const allowance: Pick<EventDeletionAllowance, 'reserve'> = {
    reserve: async (request) => {
      requests.push(request);
      if (granted instanceof Error) throw granted;
      return { granted, window };
    },
  };
  const emitted: { name: string; value: number; dimensions: Record<string, string>[] }[] = [];
  const metrics: SyncMetrics = {
    addMetric: () => {},
    addDimensions: () => {},
    singleMetric: () => {
      const dimensions: Record<string, string>[] = [];
      return {
        addDimensions: (set) => dimensions.push(set),
        addMetric: (name, _unit, value) => emitted.push({ name, value, dimensions }),
      };
    },
  };
  const log = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
  const settings = { log, metrics, now: () => now };
  return { deletions: new DeletionBudget(allowance, settings), requests, emitted, log, allowance, settings };
}

describe('DeletionBudget', () => {
  it('asks the job’s allowance for the change, with the job’s cap and window and the batch’s clock', async () => {
    const { deletions, requests, emitted, log } = budget(true);

    expect(await deletions.take(job(), change('in/a.csv'))).toEqual({ granted: true });

    expect(requests).toEqual([
      {
        jobId: 'ev-job',
        key: 'in/a.csv',
        sequencer: '0064D3901D00059242',
        max: 2,
        windowMinutes: 30,
        now,
      },
    ]);
    expect(emitted).toEqual([]);
    expect(log.warn).not.toHaveBeenCalled();
  });

  it('refuses with a reason naming the cap, the window and the fix, counting every refusal', async () => {
    const { deletions, emitted } = budget(false);

    const verdict = await deletions.take(job(), change('in/a.csv'));
    await deletions.take(job(), change('in/b.csv'));

    expect(verdict).toEqual({
      granted: false,
      reason:
        "the job's event deletion cap is spent: options.maxDeletesPerRun 2 deletions per " +
        'options.eventDeletionWindowMinutes 30 window (this one 2026-12-03T12:00:00.000Z to ' +
        '2026-12-03T12:30:00.000Z); the copy stays for a mirror pass to delete under its own cap. If the ' +
        'deletions are meant, raise options.maxDeletesPerRun or shorten options.eventDeletionWindowMinutes',
    });
    expect(emitted).toEqual([
      { name: 'eventsDeletionsCapped', value: 1, dimensions: [{}, { jobId: 'ev-job' }] },
      { name: 'eventsDeletionsCapped', value: 1, dimensions: [{}, { jobId: 'ev-job' }] },
    ]);
  });

  it('logs a spent cap once per job per batch', async () => {
    const { deletions, log, allowance, settings } = budget(false);

    await deletions.take(job(), change('in/a.csv'));
    await deletions.take(job(), change('in/b.csv'));
    await deletions.take(job('other-job'), change('in/a.csv'));
    await new DeletionBudget(allowance, settings).take(job(), change('in/c.csv'));

    expect(log.warn.mock.calls.map(([message, fields]) => [message, fields.jobId])).toEqual([
      ['event deletions capped', 'ev-job'],
      ['event deletions capped', 'other-job'],
      ['event deletions capped', 'ev-job'],
    ]);
    expect(log.warn).toHaveBeenCalledWith('event deletions capped', {
      jobId: 'ev-job',
      maxDeletesPerRun: 2,
      windowStart: '2026-12-03T12:00:00.000Z',
      windowEnd: '2026-12-03T12:30:00.000Z',
      reason: expect.stringMatching(/^the job's event deletion cap is spent/),
    });
  });

  it('throws what the allowance threw, granting nothing, so the record comes back', async () => {
    const { deletions, emitted } = budget(new Error('state table "state": unreachable'));

    await expect(deletions.take(job(), change('in/a.csv'))).rejects.toThrow('unreachable');
    expect(emitted).toEqual([]);
  });
});
