import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const QUICK_TIMEOUT_MS = 240_000; // about 40 s on an idle 2-core machine; other test files may share it

interface Range {
  min: number;
  median: number;
  max: number;
}

interface Report {
  workloads: {
    id: number;
    name: string;
    objects: number;
    setup: Record<string, number | string>;
    tools: {
      tool: string;
      wallSeconds: Range;
      objectsPerSecond: Range;
      megabytesPerSecond: Range;
      peakRssMb: Range;
      requests: Record<'LIST' | 'GET' | 'PUT' | 'POST' | 'HEAD', Range>;
      dynamodb?: { readCapacityUnits: Range; writeCapacityUnits: Range };
    }[];
  }[];
  targets: { workload: number; target: string; met: boolean }[];
}

async function benchReport(outDir: string, flags: string[]): Promise<Report> {
  await run(process.execPath, ['--import', 'tsx', 'bench/bench.ts', ...flags, '--out', outDir], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(await readFile(join(outDir, 'latest.json'), 'utf8')) as Report;
}

describe('npm run bench -- --quick', () => {
  let outDir = '';
  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'bench-test-'));
  });
  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it(
    'runs every workload end to end and writes the JSON, Markdown and chart reports',
    async () => {
      // prepare: its own sandbox and output folder; peers that are not installed are skipped, not installed
      const peers = ['/usr/bin/rclone', '/usr/bin/aws'].filter((binary) => !existsSync(binary));
      if (peers.length > 0)
        console.warn(`bench smoke test: ${peers.join(', ')} not installed; those peers are skipped`);

      // act
      const report = await benchReport(outDir, ['--quick', '--no-install']);

      // assess
      expect(report.workloads.map((workload) => workload.id)).toEqual([1, 2, 3, 4]);
      for (const workload of report.workloads) {
        const tools = workload.tools.map((tool) => tool.tool);
        expect(tools).toContain('cross-account-sync');
        expect(tools).toContain(workload.id === 4 ? 'bare-listing' : 'ceiling');
        for (const tool of workload.tools) {
          for (const figure of [tool.wallSeconds, tool.objectsPerSecond, tool.peakRssMb]) {
            expect(figure.min).toBeGreaterThan(0);
            expect(figure.min).toBeLessThanOrEqual(figure.median);
            expect(figure.median).toBeLessThanOrEqual(figure.max);
          }
          expect(tool.requests.LIST.median + tool.requests.GET.median).toBeGreaterThan(0);
        }
        const sync = workload.tools.find((tool) => tool.tool === 'cross-account-sync');
        if (workload.id === 4) {
          // One GET: preflight's one-byte read of a listed object; no copy.
          expect(sync?.requests.GET.median).toBe(1);
          expect(sync?.dynamodb?.readCapacityUnits.median).toBeGreaterThan(0);
        } else {
          expect(sync?.requests.GET.median).toBeGreaterThanOrEqual(workload.objects);
          expect(sync?.dynamodb?.writeCapacityUnits.median).toBeGreaterThan(0);
        }
      }
      expect(report.targets.length).toBeGreaterThan(0);
      expect(await readFile(join(outDir, 'latest.md'), 'utf8')).toContain('| cross-account-sync |');
      expect(await readFile(join(outDir, 'latest.svg'), 'utf8')).toMatch(/^<svg [^>]*>/);
    },
    QUICK_TIMEOUT_MS,
  );

  it(
    'starts workload 4 from a real first copy with --first-copy, and its sync passes still copy nothing',
    async () => {
      const report = await benchReport(outDir, [
        '--quick',
        '--workloads',
        '4',
        '--peers',
        'none',
        '--first-copy',
      ]);
      const [workload] = report.workloads;
      const sync = workload?.tools.find((tool) => tool.tool === 'cross-account-sync');

      expect(workload?.setup.firstCopySeconds).toBeGreaterThan(0);
      expect(workload?.setup.primeSeconds).toBeUndefined();
      // One GET: preflight's one-byte read of a listed object; no copy.
      expect(sync?.requests.GET.median).toBe(1);
      expect(sync?.requests.PUT.median).toBe(0);
      expect(sync?.requests.LIST.median).toBeGreaterThan(0);
    },
    QUICK_TIMEOUT_MS,
  );

  it(
    'copies the fan-out workload inline and by fan-out, each destination equal to the source, into fan-out.json and fan-out.md',
    async () => {
      // prepare: its own output folder, so the numbered workloads' reports are not there
      const fanOutDir = await mkdtemp(join(tmpdir(), 'bench-fan-out-test-'));
      try {
        // act: 200 objects (the --quick size), two modes: inline and fan-out with one worker
        await run(
          process.execPath,
          [
            '--import',
            'tsx',
            'bench/bench.ts',
            '--quick',
            '--workloads',
            'fan-out',
            '--fan-out-workers',
            '1',
            '--peers',
            'none',
            '--out',
            fanOutDir,
          ],
          { maxBuffer: 16 * 1024 * 1024 },
        );

        // assess
        const report = JSON.parse(await readFile(join(fanOutDir, 'fan-out.json'), 'utf8')) as FanOutJson;
        expect(report.objects).toBe(200);
        expect(report.modes.map((mode) => mode.mode)).toEqual(['inline', 'fan-out ×1']);
        for (const mode of report.modes) {
          expect(mode.destinationMatches).toBe(true);
          expect(mode.objectsPerSecond).toBeGreaterThan(0);
          expect(mode.clientCpuSecondsPer1000).toBeGreaterThan(0);
          // Every object read once from the source and written once, and the source listed.
          expect(mode.requestsPer1000.GET).toBeGreaterThanOrEqual(1000);
          expect(mode.requestsPer1000.PUT).toBeGreaterThanOrEqual(1000);
          expect(mode.requestsPer1000.LIST).toBeGreaterThan(0);
        }
        expect(report.runs.find((item) => item.kind === 'fan-out')?.reported).toMatchObject({
          mode: 'fan-out',
          copied: 200,
          failed: 0,
        });
        expect(report.scaling).toEqual({});
        expect(await readFile(join(fanOutDir, 'fan-out.md'), 'utf8')).toContain('| fan-out ×1 | 1 × 4 |');
        expect(existsSync(join(fanOutDir, 'latest.json'))).toBe(false);
      } finally {
        await rm(fanOutDir, { recursive: true, force: true });
      }
    },
    QUICK_TIMEOUT_MS,
  );

  it(
    'measures the event lag of every object through the real event path, each arriving byte for byte, into event-lag.json and event-lag.md',
    async () => {
      // prepare: its own output folder, so the other workloads' reports are not there
      const eventLagDir = await mkdtemp(join(tmpdir(), 'bench-event-lag-test-'));
      try {
        // act: 20 objects at 10/s, 2 workers, then one inline run over them
        await run(
          process.execPath,
          [
            '--import',
            'tsx',
            'bench/bench.ts',
            '--quick',
            '--workloads',
            'event-lag',
            '--event-lag-count',
            '20',
            '--peers',
            'none',
            '--out',
            eventLagDir,
          ],
          { maxBuffer: 16 * 1024 * 1024 },
        );

        // assess: every object copied by its event and read back equal; figures ordered, the scheduled ones from D
        const report = JSON.parse(
          await readFile(join(eventLagDir, 'event-lag.json'), 'utf8'),
        ) as EventLagJson;
        expect(report.objects).toBe(20);
        expect(report.workers).toBe(2);
        expect(report.destinationMatches).toBe(true);
        expect(report.lagsMs).toHaveLength(20);
        const { p50, p90, p99, max } = report.eventLagMs;
        expect(p50).toBeLessThanOrEqual(p90);
        expect(p90).toBeLessThanOrEqual(p99);
        expect(p99).toBeLessThanOrEqual(max);
        expect(max).toBe(Math.max(...report.lagsMs));
        expect(report.eventObjectsPerSecond).toBeGreaterThan(0);
        expect(report.scheduled.intervalSeconds).toBe(900);
        expect(report.scheduled.runSeconds).toBeGreaterThan(0);
        expect(report.scheduled.lagMs.max).toBe(Math.round((900 + report.scheduled.runSeconds) * 1000));
        const markdown = await readFile(join(eventLagDir, 'event-lag.md'), 'utf8');
        expect(markdown).toContain('| events |');
        expect(markdown).toContain('| scheduled, 15 min |');
        expect(existsSync(join(eventLagDir, 'latest.json'))).toBe(false);
      } finally {
        await rm(eventLagDir, { recursive: true, force: true });
      }
    },
    QUICK_TIMEOUT_MS,
  );
});

interface EventLagJson {
  objects: number;
  workers: number;
  destinationMatches: boolean;
  lagsMs: number[];
  eventLagMs: { p50: number; p90: number; p99: number; max: number };
  eventObjectsPerSecond: number;
  scheduled: { intervalSeconds: number; runSeconds: number; lagMs: { max: number } };
}

interface FanOutJson {
  objects: number;
  modes: {
    mode: string;
    destinationMatches: boolean;
    objectsPerSecond: number;
    clientCpuSecondsPer1000: number;
    requestsPer1000: { LIST: number; GET: number; PUT: number };
  }[];
  runs: { kind: string; reported?: Record<string, unknown> }[];
  scaling: Record<string, number>;
}
