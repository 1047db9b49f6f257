import { REQUEST_TYPES } from './request-counts.js';
import type { Tool } from './tools.js';
import type { RunRecord, WorkloadOutcome } from './workloads.js';

/** Median of the runs, with the smallest and largest. */
export interface Range {
  min: number;
  median: number;
  max: number;
}

/** One tool's figures in one workload. */
export interface ToolFigures {
  tool: Tool;
  runs: number;
  wallSeconds: Range;
  objectsPerSecond: Range;
  megabytesPerSecond: Range;
  peakRssMb: Range;
  /** CPU seconds per run: the tool's processes, moto, DynamoDB Local, the benchmark's own process. */
  cpuSeconds: { tool: Range; moto: Range; dynamodb: Range; bench: Range };
  requests: Record<(typeof REQUEST_TYPES)[number], Range>;
  dynamodb?: { readCapacityUnits: Range; writeCapacityUnits: Range };
  steps?: { step: string; wallSeconds: Range; peakRssMb: Range }[];
  /** What the tool itself printed, per run (the sync's summary and memory breakdown). */
  reportedByRun?: Record<string, unknown>[];
}

/** One workload's figures, and the sync against each other tool. */
export interface WorkloadFigures {
  id: number;
  name: string;
  description: string;
  objects: number;
  megabytes: number;
  tools: ToolFigures[];
  /**
   * The sync's median against each other tool's: objects/s ratio (above 1: the sync is faster); for the
   * no-change workload, wall-time ratio (below 1: the sync is faster).
   */
  ratios: Record<string, number>;
  setup: Record<string, number | string>;
  notes: string[];
}

/** One target from the issue, measured. */
export interface TargetCheck {
  workload: number;
  target: string;
  measured: string;
  met: boolean;
}

const SYNC: Tool = 'cross-account-sync';

/** Reduces the runs of each tool to median, min and max. */
export function summarize(outcome: WorkloadOutcome): WorkloadFigures {
  const tools = outcome.tools
    .map((tool) =>
      figures(
        tool,
        outcome.runs.filter((run) => run.tool === tool),
      ),
    )
    .filter((item): item is ToolFigures => item !== undefined);
  const sync = tools.find((item) => item.tool === SYNC);
  const ratios: Record<string, number> = {};
  for (const other of tools) {
    if (!sync || other.tool === SYNC) continue;
    ratios[`vs ${other.tool}`] =
      outcome.id === 4
        ? round(sync.wallSeconds.median / other.wallSeconds.median, 3)
        : round(sync.objectsPerSecond.median / other.objectsPerSecond.median, 3);
  }
  return {
    id: outcome.id,
    name: outcome.name,
    description: outcome.description,
    objects: outcome.objects,
    megabytes: round(outcome.bytes / 1e6, 2),
    tools,
    ratios,
    setup: outcome.setup,
    notes: outcome.notes,
  };
}

function figures(tool: Tool, runs: RunRecord[]): ToolFigures | undefined {
  const first = runs[0];
  if (!first) return undefined;
  const result: ToolFigures = {
    tool,
    runs: runs.length,
    wallSeconds: range(runs.map((run) => run.wallSeconds)),
    objectsPerSecond: range(runs.map((run) => run.objects / run.wallSeconds)),
    megabytesPerSecond: range(runs.map((run) => run.bytes / 1e6 / run.wallSeconds)),
    peakRssMb: range(runs.map((run) => run.peakRssMb)),
    cpuSeconds: {
      tool: range(runs.map((run) => run.cpuSeconds.tool ?? 0)),
      moto: range(runs.map((run) => run.cpuSeconds.moto)),
      dynamodb: range(runs.map((run) => run.cpuSeconds.dynamodb)),
      bench: range(runs.map((run) => run.cpuSeconds.bench)),
    },
    requests: Object.fromEntries(
      REQUEST_TYPES.map((type) => [type, range(runs.map((run) => run.requests[type]))]),
    ) as ToolFigures['requests'],
  };
  if (first.dynamodb) {
    result.dynamodb = {
      readCapacityUnits: range(runs.map((run) => run.dynamodb?.readCapacityUnits ?? 0)),
      writeCapacityUnits: range(runs.map((run) => run.dynamodb?.writeCapacityUnits ?? 0)),
    };
  }
  if (first.reported) result.reportedByRun = runs.map((run) => run.reported ?? {});
  if (first.steps) {
    result.steps = first.steps.map((step, index) => ({
      step: step.step,
      wallSeconds: range(runs.map((run) => run.steps?.[index]?.wallSeconds ?? 0)),
      peakRssMb: range(runs.map((run) => run.steps?.[index]?.peakRssMb ?? 0)),
    }));
  }
  return result;
}

/** Median (the mean of the middle two for an even count), min and max, rounded for reading. */
export function range(values: number[]): Range {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { min: round(sorted[0] ?? 0), median: round(median), max: round(sorted.at(-1) ?? 0) };
}

/**
 * Issue 13's targets ("Lean per object"), checked against the medians: client CPU and objects/s against
 * the raw-SDK ceiling and peak RSS for many small objects (workload 1), peak RSS for one big object
 * (workload 3), and the no-change pass against a bare listing (workload 4). Ratios within one run only.
 */
export function checkTargets(workloads: WorkloadFigures[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const tool = (workload: WorkloadFigures, name: Tool) => workload.tools.find((item) => item.tool === name);
  for (const workload of workloads) {
    const sync = tool(workload, SYNC);
    if (!sync) continue;
    const ceiling = tool(workload, 'ceiling');
    const listing = tool(workload, 'bare-listing');
    if (workload.id === 1 && ceiling) {
      const cpu = sync.cpuSeconds.tool.median / ceiling.cpuSeconds.tool.median;
      checks.push({
        workload: 1,
        target: 'client CPU-s ≤ 1.2 × the ceiling',
        measured: `${fixed(cpu)} × (${fixed(sync.cpuSeconds.tool.median, 1)} vs ${fixed(ceiling.cpuSeconds.tool.median, 1)} CPU-s)`,
        met: cpu <= 1.2,
      });
      const speed = sync.objectsPerSecond.median / ceiling.objectsPerSecond.median;
      checks.push({
        workload: 1,
        target: 'objects/s ≥ 0.9 × the ceiling',
        measured: `${fixed(speed)} × (${fixed(sync.objectsPerSecond.median, 0)} vs ${fixed(ceiling.objectsPerSecond.median, 0)} obj/s)`,
        met: speed >= 0.9,
      });
    }
    if (workload.id === 1 || workload.id === 3) {
      checks.push({
        workload: workload.id,
        target: 'peak RSS ≤ 150 MB',
        measured: `${fixed(sync.peakRssMb.max, 0)} MB (worst run), ${fixed(sync.peakRssMb.median, 0)} MB median`,
        met: sync.peakRssMb.max <= 150,
      });
    }
    if (workload.id === 4 && listing) {
      const ratio = sync.wallSeconds.median / listing.wallSeconds.median;
      checks.push({
        workload: 4,
        target: 'within 1.15 × a bare listing',
        measured: `${fixed(ratio)} × (${fixed(sync.wallSeconds.median)} vs ${fixed(listing.wallSeconds.median)} s)`,
        met: ratio <= 1.15,
      });
    }
  }
  return checks;
}

/** The Markdown report: one table per workload, the targets, and how it was measured. */
export function markdownReport(
  workloads: WorkloadFigures[],
  targets: TargetCheck[],
  meta: { generatedAt: string; settings: Record<string, string>; environment: Record<string, string> },
): string {
  const lines: string[] = [
    '# cross-account-sync benchmark',
    '',
    `Generated ${meta.generatedAt} by \`npm run bench\`. Each figure is the median of the runs, with [min–max].`,
    "MB = 10^6 bytes. Requests are counted inside moto's server, the same for every tool.",
    '',
  ];
  for (const workload of workloads) {
    lines.push(
      `## Workload ${workload.id}: ${workload.name} (${workload.description}, ${fixed(workload.megabytes, 1)} MB)`,
      '',
    );
    lines.push(
      '| tool | wall s | objects/s | MB/s | peak RSS MB | LIST | GET | PUT | POST | HEAD | other | DynamoDB RCU / WCU | CPU s: tool / moto / DynamoDB | sync vs it |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const item of workload.tools) {
      const requests = item.requests;
      const other = requests.DELETE.median + requests.OTHER.median;
      const ratio = workload.ratios[`vs ${item.tool}`];
      lines.push(
        `| ${item.tool} | ${cell(item.wallSeconds, 2)} | ${cell(item.objectsPerSecond, item.objectsPerSecond.median < 10 ? 2 : 0)} | ${cell(item.megabytesPerSecond, 1)} | ${cell(item.peakRssMb, 0)} | ` +
          `${count(requests.LIST)} | ${count(requests.GET)} | ${count(requests.PUT)} | ${count(requests.POST)} | ${count(requests.HEAD)} | ${other} | ` +
          `${item.dynamodb ? `${fixed(item.dynamodb.readCapacityUnits.median, 1)} / ${fixed(item.dynamodb.writeCapacityUnits.median, 1)}` : '–'} | ` +
          `${fixed(item.cpuSeconds.tool.median, 1)} / ${fixed(item.cpuSeconds.moto.median, 1)} / ${fixed(item.cpuSeconds.dynamodb.median, 1)} | ` +
          `${ratio === undefined ? '–' : workload.id === 4 ? `${fixed(ratio)} × its time` : `${fixed(ratio)} × its obj/s`} |`,
      );
    }
    for (const item of workload.tools) {
      for (const step of item.steps ?? []) {
        lines.push(
          '',
          `${item.tool}, ${step.step}: ${cell(step.wallSeconds, 2)} s, peak RSS ${cell(step.peakRssMb, 0)} MB`,
        );
      }
    }
    const setup = Object.entries(workload.setup).map(([key, value]) => `${key} ${value}`);
    if (setup.length > 0) lines.push('', `Untimed setup: ${setup.join(', ')}.`);
    for (const note of workload.notes) lines.push('', `Note: ${note}`);
    lines.push('');
  }
  if (targets.length > 0) {
    lines.push('## Targets', '', '| workload | target | measured | met |', '|---|---|---|---|');
    for (const check of targets) {
      lines.push(
        `| ${check.workload} | ${check.target} | ${check.measured} | ${check.met ? 'yes' : '**no**'} |`,
      );
    }
    lines.push('');
  }
  lines.push('## How each tool ran', '');
  for (const [tool, setting] of Object.entries(meta.settings)) lines.push(`- **${tool}**: ${setting}`);
  lines.push('', '## Environment', '');
  for (const [name, value] of Object.entries(meta.environment)) lines.push(`- ${name}: ${value}`);
  lines.push('');
  return lines.join('\n');
}

function cell(value: Range, digits: number): string {
  return `${fixed(value.median, digits)} [${fixed(value.min, digits)}–${fixed(value.max, digits)}]`;
}

function count(value: Range): string {
  return value.min === value.max ? String(value.median) : `${value.median} [${value.min}–${value.max}]`;
}

export function fixed(value: number, digits = 2): string {
  return value.toFixed(digits);
}

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
