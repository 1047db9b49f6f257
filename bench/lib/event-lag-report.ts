/**
 * The event-lag workload's figures and report (bench/results/event-lag.{json,md}): pure, so the
 * percentiles, the scheduled mode's computed lag and the table are unit-tested without a sandbox.
 */

/** template.yaml's ScheduleExpression default, `rate(15 minutes)`, in seconds (a unit test reads it back). */
export const DEFAULT_SCHEDULE_SECONDS = 15 * 60;

/** Lag figures in milliseconds. */
export interface LagFigures {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** What the run measured and computed; the JSON report holds this plus the per-object lags. */
export interface EventLagReport {
  generatedAt: string;
  objects: number;
  objectBytes: number;
  /**
   * Writes per second: aimed at; started (first PUT's start to the last's, the writer's own pace); and
   * completed (first PUT's start to the last PUT's response: moto's pace under the machine's load).
   */
  targetRate: number;
  issuedRate: number;
  achievedRate: number;
  workers: number;
  /** Measured: ledger `copiedAt` − the PUT's completion, per object. */
  eventLagMs: LagFigures;
  /** Objects copied per second by the event path: first PUT's completion to the last copy recorded. */
  eventObjectsPerSecond: number;
  /** Every destination object read back and equal, byte for byte, to what the writer PUT. */
  destinationMatches: boolean;
  scheduled: {
    intervalSeconds: number;
    /** Measured: spawn to exit of one inline run copying the same objects. */
    runSeconds: number;
    /** Computed from the interval and the measured run time, not measured. */
    lagMs: Pick<LagFigures, 'p50' | 'p99' | 'max' | 'mean'>;
  };
  environment: Record<string, string>;
}

/** The nearest-rank percentile `p` (0–100] of `values` (not empty). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** p50 / p90 / p99 / max / mean of per-object lags. */
export function lagFigures(lagsMs: number[]): LagFigures {
  const mean = lagsMs.reduce((sum, lag) => sum + lag, 0) / lagsMs.length;
  return {
    p50: percentile(lagsMs, 50),
    p90: percentile(lagsMs, 90),
    p99: percentile(lagsMs, 99),
    max: percentile(lagsMs, 100),
    mean: Math.round(mean),
  };
}

/**
 * The scheduled mode's lag, computed: an object written at a uniformly random moment waits for the next
 * run (on average T/2, at most T), then for that run to record it (at most the run's duration D, counted
 * whole, as if every object were recorded at the run's end). So p50 ≈ mean = T/2 + D, p99 = 0.99·T + D,
 * max = T + D.
 */
export function scheduledLag(
  intervalSeconds: number,
  runSeconds: number,
): EventLagReport['scheduled']['lagMs'] {
  const at = (fraction: number) => Math.round((fraction * intervalSeconds + runSeconds) * 1000);
  return { p50: at(0.5), mean: at(0.5), p99: at(0.99), max: at(1) };
}

const seconds = (ms: number) => (ms / 1000).toFixed(ms < 10_000 ? 2 : 1);

/** The Markdown report. */
export function eventLagMarkdown(report: EventLagReport): string {
  const { eventLagMs: lag, scheduled } = report;
  const environment = Object.entries(report.environment).map(([name, value]) => `- ${name}: ${value}`);
  return [
    '# Event lag on the sandbox',
    '',
    `Generated ${report.generatedAt} by \`npm run bench -- --workloads event-lag\`.`,
    '',
    `${report.objects.toLocaleString('en-US')} objects of ${report.objectBytes} B PUT into AccountA at ` +
      `${report.targetRate}/s (started at ${report.issuedRate.toFixed(1)}/s, completed at ${report.achievedRate.toFixed(1)}/s), applied by ${report.workers} ` +
      `copy worker(s) through moto's real event path (A's bucket → A's default bus → B's S3-event bus → copy queue). ` +
      `Every destination object read back and compared byte for byte: ${report.destinationMatches ? 'equal' : 'DIFFERENT'}.`,
    '',
    '| mode | p50 | p90 | p99 | max | mean | how |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    `| events | ${seconds(lag.p50)} s | ${seconds(lag.p90)} s | ${seconds(lag.p99)} s | ${seconds(lag.max)} s | ${seconds(lag.mean)} s | measured: ledger copiedAt − PUT completion, per object |`,
    `| scheduled, ${scheduled.intervalSeconds / 60} min | ${seconds(scheduled.lagMs.p50)} s | – | ${seconds(scheduled.lagMs.p99)} s | ${seconds(scheduled.lagMs.max)} s | ${seconds(scheduled.lagMs.mean)} s | computed: T/2 + D, 0.99·T + D, T + D with D = ${scheduled.runSeconds.toFixed(1)} s measured |`,
    '',
    `Event path throughput: ${report.eventObjectsPerSecond.toFixed(1)} objects/s (first PUT's completion to the last copy recorded).`,
    '',
    ...environment,
    '',
  ].join('\n');
}
