/**
 * The fan-out workload's figures and report (bench/results/fan-out.{json,md}): pure, so the arithmetic
 * and the table are unit-tested without a sandbox.
 */
import type { RequestCounts } from './request-counts.js';
import type { CpuSeconds } from './tools.js';

/** How one mode copied: the sync in one process, fan-out with N copy workers, or rclone. */
export type FanOutKind = 'inline' | 'fan-out' | 'rclone';

/** One measured mode. */
export interface FanOutMode {
  /** `inline`, `fan-out ×2`, `rclone 8`. */
  mode: string;
  kind: FanOutKind;
  /** Copy workers (1 for inline and rclone). */
  workers: number;
  /** Objects in flight per worker; the total is workers × concurrency. */
  concurrency: number;
}

/** What one mode's run measured. */
export interface FanOutRun extends FanOutMode {
  objects: number;
  wallSeconds: number;
  cpuSeconds: CpuSeconds;
  requests: RequestCounts;
  /** 1-minute load average when the run started. */
  loadAverage: number;
  /** Destination keys, sizes and ETags equal the source's after the run. */
  destinationMatches: boolean;
  /** What the mode reported itself (the pass's record, the copy mapping's counts, cpuWaitSeconds). */
  reported?: Record<string, unknown>;
}

/** One mode's figures, as the report states them. */
export interface FanOutFigures extends FanOutMode {
  totalConcurrency: number;
  wallSeconds: number;
  objectsPerSecond: number;
  /** The client's own CPU (user + system, from the OS) per 1,000 objects copied. */
  clientCpuSecondsPer1000: number;
  /**
   * Seconds the client's main thread waited runnable for a CPU (its own /proc/self/schedstat): the time a
   * loaded machine took from it. Undefined for rclone, which does not report it.
   */
  clientCpuWaitSeconds?: number;
  motoCpuSeconds: number;
  /** moto's CPU seconds per wall second: near 1, its one Python process was the bottleneck. */
  motoBusy: number;
  motoSaturated: boolean;
  requestsPer1000: { LIST: number; GET: number; PUT: number };
  loadAverage: number;
  destinationMatches: boolean;
}

/** The whole report. */
export interface FanOutReport {
  generatedAt: string;
  objects: number;
  objectKib: number;
  latencyMs: number;
  modes: FanOutFigures[];
  /** Fan-out ×N's objects/s over fan-out ×1's, keyed `×N / ×1`. */
  scaling: Record<string, number>;
  environment: Record<string, string>;
}

/**
 * moto is one Python process: one core at most, whatever its threads. Above this share of a core over a
 * run, more clients only queue behind it.
 */
export const MOTO_SATURATED_BUSY = 0.85;

/**
 * The modes of one fan-out benchmark: inline and fan-out ×1 at `concurrency`, fan-out with each of
 * `workers`, and (with rclone) rclone at each distinct total concurrency of the fan-out modes.
 */
export function fanOutModes(workers: number[], concurrency: number, rclone: boolean): FanOutMode[] {
  const counts = [...new Set(workers)].sort((a, b) => a - b);
  const modes: FanOutMode[] = [{ mode: 'inline', kind: 'inline', workers: 1, concurrency }];
  for (const count of counts) {
    modes.push({ mode: `fan-out ×${count}`, kind: 'fan-out', workers: count, concurrency });
  }
  if (rclone) {
    for (const count of counts) {
      const total = count * concurrency;
      modes.push({ mode: `rclone ${total}`, kind: 'rclone', workers: 1, concurrency: total });
    }
  }
  return modes;
}

/** One run's figures. */
export function fanOutFigures(run: FanOutRun): FanOutFigures {
  const per1000 = (value: number) => round((value / run.objects) * 1000, 2);
  const motoBusy = round(run.cpuSeconds.moto / run.wallSeconds, 2);
  return {
    mode: run.mode,
    kind: run.kind,
    workers: run.workers,
    concurrency: run.concurrency,
    totalConcurrency: run.workers * run.concurrency,
    wallSeconds: round(run.wallSeconds, 2),
    objectsPerSecond: round(run.objects / run.wallSeconds, 1),
    clientCpuSecondsPer1000: per1000(run.cpuSeconds.tool ?? 0),
    ...(typeof run.reported?.cpuWaitSeconds === 'number' && {
      clientCpuWaitSeconds: round(run.reported.cpuWaitSeconds, 1),
    }),
    motoCpuSeconds: round(run.cpuSeconds.moto, 2),
    motoBusy,
    motoSaturated: motoBusy >= MOTO_SATURATED_BUSY,
    requestsPer1000: {
      LIST: per1000(run.requests.LIST),
      GET: per1000(run.requests.GET),
      PUT: per1000(run.requests.PUT),
    },
    loadAverage: run.loadAverage,
    destinationMatches: run.destinationMatches,
  };
}

/**
 * Each fan-out ×N mode's objects/s over fan-out ×1's (none without a ×1 mode), from the wall times: every
 * mode copies the same objects, and the objects/s figures are rounded.
 */
export function scalingRatios(modes: FanOutFigures[]): Record<string, number> {
  const fanOut = modes.filter((mode) => mode.kind === 'fan-out');
  const one = fanOut.find((mode) => mode.workers === 1);
  if (!one) return {};
  return Object.fromEntries(
    fanOut
      .filter((mode) => mode.workers > 1)
      .map((mode) => [`×${mode.workers} / ×1`, round(one.wallSeconds / mode.wallSeconds, 2)]),
  );
}

/** The Markdown report: the table, the scaling ratios, how it ran. */
export function fanOutMarkdown(report: FanOutReport): string {
  const lines = [
    '# Fan-out benchmark',
    '',
    `Generated ${report.generatedAt} by \`npm run bench -- --workloads fan-out\`: ${report.objects.toLocaleString('en-US')} objects of ${report.objectKib} KiB, ` +
      `${report.latencyMs} ms added to every S3 request by the sandbox's proxy; one run per mode.`,
    '',
    '| mode | in flight | wall s | objects/s | client CPU-s / 1,000 obj | client waited for a CPU, s | moto CPU-s (busy) | LIST / GET / PUT per 1,000 | load | destination = source |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const mode of report.modes) {
    const busy = `${mode.motoCpuSeconds.toFixed(1)} (${mode.motoBusy.toFixed(2)}${mode.motoSaturated ? ', saturated' : ''})`;
    const requests = mode.requestsPer1000;
    lines.push(
      `| ${mode.mode} | ${mode.workers} × ${mode.concurrency} | ${mode.wallSeconds.toFixed(1)} | ${mode.objectsPerSecond.toFixed(1)} | ` +
        `${mode.clientCpuSecondsPer1000.toFixed(2)} | ${mode.clientCpuWaitSeconds?.toFixed(1) ?? '–'} | ${busy} | ${requests.LIST} / ${requests.GET} / ${requests.PUT} | ` +
        `${mode.loadAverage.toFixed(2)} | ${mode.destinationMatches ? 'yes' : '**no**'} |`,
    );
  }
  const ratios = Object.entries(report.scaling);
  lines.push(
    '',
    ratios.length > 0
      ? `Scaling of fan-out (objects/s against one worker): ${ratios.map(([name, value]) => `${name} = ${value.toFixed(2)}`).join(', ')}.`
      : 'Scaling of fan-out: no ratio (the run had no fan-out ×1 mode, or no other).',
    '',
    `moto busy = its CPU seconds per wall second of the run, from /proc; at ${MOTO_SATURATED_BUSY} or more ` +
      'its one Python process was the bottleneck, and more workers only queue behind it. Client waited for a ' +
      "CPU = the time the sync's main thread was runnable but not running (/proc/self/schedstat): other work on the machine.",
    '',
    '## Environment',
    '',
  );
  for (const [name, value] of Object.entries(report.environment)) lines.push(`- ${name}: ${value}`);
  lines.push('');
  return lines.join('\n');
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
