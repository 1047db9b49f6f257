import { describe, expect, it } from 'vitest';
import { checkTargets, range, type ToolFigures, type WorkloadFigures } from '../../bench/lib/report.js';

/** A tool's figures with every run alike, from the few values the targets read. */
function toolFigures(
  tool: ToolFigures['tool'],
  values: { cpu?: number; objectsPerSecond?: number; rss?: number[]; wall?: number },
): ToolFigures {
  const one = (value: number) => range([value]);
  return {
    tool,
    runs: 1,
    wallSeconds: one(values.wall ?? 1),
    objectsPerSecond: one(values.objectsPerSecond ?? 1),
    megabytesPerSecond: one(1),
    peakRssMb: range(values.rss ?? [100]),
    cpuSeconds: { tool: one(values.cpu ?? 1), moto: one(0), dynamodb: one(0), bench: one(0) },
    requests: {} as ToolFigures['requests'],
  };
}

function workload(id: number, tools: ToolFigures[]): WorkloadFigures {
  return {
    id,
    name: `w${id}`,
    description: '',
    objects: 1,
    megabytes: 1,
    tools,
    ratios: {},
    setup: {},
    notes: [],
  };
}

describe("checkTargets (issue 13's targets)", () => {
  it('holds many small objects to 1.2 × the ceiling’s CPU, 0.9 × its objects/s and 150 MB at the worst run', () => {
    const checks = checkTargets([
      workload(1, [
        toolFigures('cross-account-sync', { cpu: 7.3, objectsPerSecond: 175, rss: [146, 163, 165] }),
        toolFigures('ceiling', { cpu: 4.7, objectsPerSecond: 251 }),
      ]),
    ]);

    expect(checks.map(({ target, met }) => [target, met])).toEqual([
      ['client CPU-s ≤ 1.2 × the ceiling', false],
      ['objects/s ≥ 0.9 × the ceiling', false],
      ['peak RSS ≤ 150 MB', false],
    ]);
    expect(checks[0]?.measured).toBe('1.55 × (7.3 vs 4.7 CPU-s)');
    expect(checks[2]?.measured).toBe('165 MB (worst run), 163 MB median');
  });

  it('meets each target exactly at its bound', () => {
    const checks = checkTargets([
      workload(1, [
        toolFigures('cross-account-sync', { cpu: 6, objectsPerSecond: 90, rss: [150] }),
        toolFigures('ceiling', { cpu: 5, objectsPerSecond: 100 }),
      ]),
      workload(3, [toolFigures('cross-account-sync', { rss: [150] })]),
      workload(4, [
        toolFigures('cross-account-sync', { wall: 11.5 }),
        toolFigures('bare-listing', { wall: 10 }),
      ]),
    ]);

    expect(checks.map(({ workload: id, met }) => [id, met])).toEqual([
      [1, true],
      [1, true],
      [1, true],
      [3, true],
      [4, true],
    ]);
  });

  it('checks nothing for a workload the sync did not run, or a reference that did not run', () => {
    expect(checkTargets([workload(1, [toolFigures('ceiling', {})])])).toEqual([]);
    expect(checkTargets([workload(4, [toolFigures('cross-account-sync', {})])])).toEqual([]);
  });
});
