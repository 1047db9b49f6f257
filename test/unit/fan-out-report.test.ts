import { describe, expect, it } from 'vitest';
import {
  type FanOutRun,
  fanOutFigures,
  fanOutMarkdown,
  fanOutModes,
  scalingRatios,
} from '../../bench/lib/fan-out-report.js';

const requests = { LIST: 2, GET: 2000, PUT: 2000, POST: 0, HEAD: 0, DELETE: 0, OTHER: 0 };

function run(overrides: Partial<FanOutRun>): FanOutRun {
  return {
    mode: 'fan-out ×1',
    kind: 'fan-out',
    workers: 1,
    concurrency: 4,
    objects: 2000,
    wallSeconds: 100,
    cpuSeconds: { tool: 10, moto: 50, dynamodb: 5, bench: 3 },
    requests,
    loadAverage: 1.5,
    destinationMatches: true,
    ...overrides,
  };
}

describe('fanOutModes', () => {
  it('runs inline, each worker count once in order, and rclone at each fan-out total concurrency', () => {
    expect(
      fanOutModes([4, 1, 2, 2], 4, true).map((mode) => [mode.mode, mode.workers, mode.concurrency]),
    ).toEqual([
      ['inline', 1, 4],
      ['fan-out ×1', 1, 4],
      ['fan-out ×2', 2, 4],
      ['fan-out ×4', 4, 4],
      ['rclone 4', 1, 4],
      ['rclone 8', 1, 8],
      ['rclone 16', 1, 16],
    ]);
  });

  it('leaves rclone out when it is not available', () => {
    expect(fanOutModes([1], 16, false).map((mode) => mode.kind)).toEqual(['inline', 'fan-out']);
  });
});

describe('fanOutFigures', () => {
  it('gives objects/s, client CPU-seconds and requests per 1,000 objects, and how busy moto was', () => {
    const figures = fanOutFigures(
      run({ workers: 2, wallSeconds: 80, cpuSeconds: { tool: 9, moto: 72, dynamodb: 1, bench: 1 } }),
    );

    expect(figures).toMatchObject({
      totalConcurrency: 8,
      objectsPerSecond: 25,
      clientCpuSecondsPer1000: 4.5,
      motoCpuSeconds: 72,
      motoBusy: 0.9,
      motoSaturated: true,
      requestsPer1000: { LIST: 1, GET: 1000, PUT: 1000 },
    });
  });

  it('calls moto unsaturated below 0.85 of a core', () => {
    expect(fanOutFigures(run({ cpuSeconds: { tool: 1, moto: 84, dynamodb: 0, bench: 0 } }))).toMatchObject({
      motoBusy: 0.84,
      motoSaturated: false,
    });
  });
});

describe('scalingRatios', () => {
  it('divides each fan-out mode’s objects/s by one worker’s, ignoring inline and rclone', () => {
    const modes = [
      run({ mode: 'inline', kind: 'inline', wallSeconds: 10 }),
      run({ wallSeconds: 100 }),
      run({ mode: 'fan-out ×2', workers: 2, wallSeconds: 50 }),
      run({ mode: 'fan-out ×4', workers: 4, wallSeconds: 40 }),
      run({ mode: 'rclone 16', kind: 'rclone', concurrency: 16, wallSeconds: 5 }),
    ].map(fanOutFigures);

    expect(scalingRatios(modes)).toEqual({ '×2 / ×1': 2, '×4 / ×1': 2.5 });
  });

  it('has no ratio without a one-worker mode', () => {
    expect(scalingRatios([fanOutFigures(run({ mode: 'fan-out ×2', workers: 2 }))])).toEqual({});
  });
});

describe('fanOutMarkdown', () => {
  const report = (modes: FanOutRun[]) => {
    const figures = modes.map(fanOutFigures);
    return fanOutMarkdown({
      generatedAt: '2026-12-03T06:00:00.000Z',
      objects: 2000,
      objectKib: 1,
      latencyMs: 40,
      modes: figures,
      scaling: scalingRatios(figures),
      environment: { machine: '2 × test CPU' },
    });
  };

  it('prints a row per mode, the scaling ratios and the environment', () => {
    const markdown = report([
      run({ reported: { cpuWaitSeconds: 12.34 } }),
      run({ mode: 'fan-out ×2', workers: 2, wallSeconds: 60 }),
    ]);

    expect(markdown).toContain('2,000 objects of 1 KiB, 40 ms added to every S3 request');
    expect(markdown).toContain(
      '| fan-out ×1 | 1 × 4 | 100.0 | 20.0 | 5.00 | 12.3 | 50.0 (0.50) | 1 / 1000 / 1000 | 1.50 | yes |',
    );
    expect(markdown).toContain('| fan-out ×2 | 2 × 4 | 60.0 | 33.3 | 5.00 | – |');
    expect(markdown).toContain('×2 / ×1 = 1.67');
    expect(markdown).toContain('- machine: 2 × test CPU');
  });

  it('marks a saturated moto and a destination that differs from the source', () => {
    const markdown = report([
      run({ destinationMatches: false, cpuSeconds: { tool: 1, moto: 95, dynamodb: 0, bench: 0 } }),
    ]);

    expect(markdown).toContain('95.0 (0.95, saturated)');
    expect(markdown).toMatch(/\| \*\*no\*\* \|$/m);
    expect(markdown).toContain('Scaling of fan-out: no ratio');
  });
});
