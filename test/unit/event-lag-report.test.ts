import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SCHEDULE_SECONDS,
  type EventLagReport,
  eventLagMarkdown,
  lagFigures,
  percentile,
  scheduledLag,
} from '../../bench/lib/event-lag-report.js';
import { parseOptions, UsageError } from '../../bench/lib/options.js';

describe('percentile', () => {
  it('takes the nearest rank, whatever the order of the values', () => {
    const values = [50, 10, 40, 30, 20, 100, 90, 80, 70, 60];
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 90)).toBe(90);
    expect(percentile(values, 99)).toBe(100);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
  });

  it('refuses no values, rather than reporting undefined as a lag', () => {
    expect(() => percentile([], 50)).toThrow('percentile of no values');
  });
});

describe('lagFigures', () => {
  it('gives p50 / p90 / p99 / max and the rounded mean of per-object lags', () => {
    const lags = Array.from({ length: 1000 }, (_, index) => index + 1);
    expect(lagFigures(lags)).toEqual({ p50: 500, p90: 900, p99: 990, max: 1000, mean: 501 });
  });
});

describe('scheduledLag', () => {
  it('is T/2 + D on average and at p50, 0.99·T + D at p99 and T + D at worst', () => {
    expect(scheduledLag(900, 12.5)).toEqual({ p50: 462_500, mean: 462_500, p99: 903_500, max: 912_500 });
  });

  it("uses template.yaml's default schedule interval", async () => {
    const template = await readFile('template.yaml', 'utf8');
    const [, amount, unit] =
      /ScheduleExpression:\n(?:\s+\w+:.*\n)*?\s+Default: rate\((\d+) (minutes?|hours?)\)/.exec(template) ?? [
        '',
        '',
        '',
      ];
    const seconds = Number(amount) * (unit.startsWith('hour') ? 3600 : 60);
    expect(seconds).toBe(DEFAULT_SCHEDULE_SECONDS);
  });
});

describe('eventLagMarkdown', () => {
  it('labels the event figures measured and the scheduled ones computed, with D', () => {
    const report: EventLagReport = {
      generatedAt: '2026-12-03T10:00:00.000Z',
      objects: 2000,
      objectBytes: 1024,
      targetRate: 20,
      issuedRate: 19.9,
      achievedRate: 19.5,
      workers: 4,
      eventLagMs: { p50: 1200, p90: 2500, p99: 4000, max: 6100, mean: 1400 },
      eventObjectsPerSecond: 19.4,
      destinationMatches: true,
      scheduled: { intervalSeconds: 900, runSeconds: 30, lagMs: scheduledLag(900, 30) },
      environment: { loadAverage: '3.2 on 2 cores' },
    };
    const markdown = eventLagMarkdown(report);
    expect(markdown).toContain('| events | 1.20 s | 2.50 s | 4.00 s | 6.10 s | 1.40 s | measured:');
    expect(markdown).toContain('| scheduled, 15 min | 480.0 s | – | 921.0 s | 930.0 s | 480.0 s | computed:');
    expect(markdown).toContain('D = 30.0 s measured');
    expect(markdown).toContain('byte for byte: equal');
    expect(markdown).toContain('- loadAverage: 3.2 on 2 cores');
  });
});

describe('--workloads event-lag', () => {
  it('is not in the default set', () => {
    expect(parseOptions([])).toMatchObject({ workloads: [1, 2, 3, 4] });
    expect(parseOptions([])).not.toHaveProperty('eventLag');
  });

  it('runs 2,000 writes at 20/s with 4 workers by default, and takes flags', () => {
    expect(parseOptions(['--workloads', 'event-lag'])).toMatchObject({
      workloads: [],
      eventLag: { count: 2000, rate: 20, bytes: 1024, workers: 4 },
    });
    expect(
      parseOptions([
        '--workloads',
        '1,event-lag',
        '--event-lag-count',
        '500',
        '--event-lag-rate',
        '50',
        '--event-lag-workers',
        '2',
      ]),
    ).toMatchObject({ workloads: [1], eventLag: { count: 500, rate: 50, workers: 2 } });
  });

  it('refuses a rate of zero, naming the flag', () => {
    expect(() => parseOptions(['--workloads', 'event-lag', '--event-lag-rate', '0'])).toThrow(
      new UsageError('--event-lag-rate must be an integer ≥ 1, got "0"'),
    );
  });
});
