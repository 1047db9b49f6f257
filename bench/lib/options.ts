import { parseArgs } from 'node:util';
import { RESULTS_DIR } from './bundle.js';

/** What one `npm run bench` does. */
export interface BenchOptions {
  workloads: number[];
  runs: number;
  concurrency: number;
  smallCount: number;
  smallKib: number;
  largeCount: number;
  largeMib: number;
  bigMib: number;
  noChangeCount: number;
  noChangeKib: number;
  /** Peers to run besides the sync and its baselines; a missing one is installed, or skipped. */
  peers: ('rclone' | 'aws-cli')[];
  install: boolean;
  /** Workload 4 starts from a real first copy by the sync instead of the state one leaves, built directly. */
  firstCopy: boolean;
  outDir: string;
  quick: boolean;
  /** The fan-out workload (`--workloads fan-out`), run after the numbered ones; not in the default set. */
  fanOut?: FanOutOptions;
  /** The event-lag workload (`--workloads event-lag`), run after the others; not in the default set. */
  eventLag?: EventLagOptions;
}

/** The event-lag workload's sizes: bench/lib/event-lag.ts. */
export interface EventLagOptions {
  /** Objects the steady writer PUTs. */
  count: number;
  /** PUTs started per second. */
  rate: number;
  /** Each object's size in bytes. */
  bytes: number;
  /** Copy workers (the copy mapping's MaximumConcurrency). */
  workers: number;
}

/** The fan-out workload's sizes: bench/lib/fan-out.ts. */
export interface FanOutOptions {
  count: number;
  latencyMs: number;
  workers: number[];
  /** Objects in flight per copy worker, and for inline; rclone runs at each fan-out mode's total. */
  concurrency: number;
}

export const USAGE = `npm run bench -- [flags]

  --quick              tiny sizes, 1 run: a smoke test of the harness (about a minute)
  --workloads 1,2,3,4  which workloads to run (default 1-4); \`fan-out\` adds the fan-out workload
                       (bench/results/fan-out.md; over an hour at its defaults on 2 shared cores, so
                       not in the default set); \`event-lag\` adds the event-lag workload
                       (bench/results/event-lag.md; 100 s of writes at its defaults, 20 min in all on 2 loaded cores)
  --runs N             runs per tool and workload; figures are the median (default 3)
  --concurrency N      objects in flight for every tool (default 16, the sync's default)
  --small-count N      workload 1: objects (default 2000)       --small-kib N   their size (16)
  --large-count N      workload 2: objects (default 8)          --large-mib N   their size (64)
  --big-mib N          workload 3: the one big object (default 1024)
  --nochange-count N   workload 4: objects (default 20000)      --nochange-kib N their size (1)
  --fan-out-count N    fan-out: 1 KiB objects (default 20000)   --fan-out-latency-ms N  per S3 request (40)
  --fan-out-workers L  fan-out: worker counts (default 1,2,4)   --fan-out-concurrency N per worker (4)
  --event-lag-count N  event-lag: objects written (default 2000)  --event-lag-rate N PUTs per second (20)
  --event-lag-workers N  event-lag: copy workers (default 4)    --event-lag-bytes N each object's size (1024)
  --peers LIST         rclone,aws-cli (default both); "none" runs only the sync and its baselines
  --no-install         do not apt-get install missing peers; skip them instead
  --first-copy         workload 4 starts from a real first copy by the sync (untimed, ~100 s at 20,000
                       objects) instead of the destination objects and ledger records one leaves, built directly
  --out DIR            where latest.json, latest.md and latest.svg go (default bench/results)`;

const QUICK = {
  runs: 1,
  smallCount: 40,
  smallKib: 16,
  largeCount: 2,
  largeMib: 6,
  bigMib: 24,
  noChangeCount: 300,
  noChangeKib: 1,
};

const DEFAULTS = {
  runs: 3,
  smallCount: 2000,
  smallKib: 16,
  largeCount: 8,
  largeMib: 64,
  bigMib: 1024,
  noChangeCount: 20000,
  noChangeKib: 1,
};

export class UsageError extends Error {}

/** Parses the command line; throws UsageError naming the bad flag. */
export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      quick: { type: 'boolean' },
      workloads: { type: 'string' },
      runs: { type: 'string' },
      concurrency: { type: 'string' },
      'small-count': { type: 'string' },
      'small-kib': { type: 'string' },
      'large-count': { type: 'string' },
      'large-mib': { type: 'string' },
      'big-mib': { type: 'string' },
      'nochange-count': { type: 'string' },
      'nochange-kib': { type: 'string' },
      peers: { type: 'string' },
      'no-install': { type: 'boolean' },
      'first-copy': { type: 'boolean' },
      out: { type: 'string' },
      'fan-out-count': { type: 'string' },
      'fan-out-latency-ms': { type: 'string' },
      'fan-out-workers': { type: 'string' },
      'fan-out-concurrency': { type: 'string' },
      'event-lag-count': { type: 'string' },
      'event-lag-rate': { type: 'string' },
      'event-lag-bytes': { type: 'string' },
      'event-lag-workers': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const base = values.quick ? QUICK : DEFAULTS;
  const int = (flag: keyof typeof values, fallback: number, min = 1) => {
    const raw = values[flag];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      throw new UsageError(`--${flag} must be an integer ≥ ${min}, got "${raw}"`);
    }
    return value;
  };
  const listed = (values.workloads ?? '1,2,3,4').split(',').map((item) => item.trim());
  const named = ['fan-out', 'event-lag'];
  const workloads = listed.filter((item) => !named.includes(item)).map(Number);
  if (workloads.some((item) => ![1, 2, 3, 4].includes(item))) {
    throw new UsageError(
      `--workloads takes numbers 1-4, fan-out and event-lag separated by commas, got "${values.workloads}"`,
    );
  }
  const fanOutWorkers = (values['fan-out-workers'] ?? '1,2,4').split(',').map(Number);
  if (fanOutWorkers.some((item) => !Number.isInteger(item) || item < 1)) {
    throw new UsageError(
      `--fan-out-workers takes integers ≥ 1 separated by commas, got "${values['fan-out-workers']}"`,
    );
  }
  const peerList = values.peers === 'none' ? [] : (values.peers ?? 'rclone,aws-cli').split(',');
  for (const peer of peerList) {
    if (peer !== 'rclone' && peer !== 'aws-cli') {
      throw new UsageError(`--peers takes rclone, aws-cli or none, got "${peer}"`);
    }
  }
  const largeMib = int('large-mib', base.largeMib);
  if (largeMib < 2) throw new UsageError('--large-mib must be at least 2, so the objects go multipart');
  return {
    workloads: [...new Set(workloads)].sort(),
    runs: int('runs', base.runs),
    concurrency: int('concurrency', 16),
    smallCount: int('small-count', base.smallCount),
    smallKib: int('small-kib', base.smallKib),
    largeCount: int('large-count', base.largeCount),
    largeMib,
    bigMib: int('big-mib', base.bigMib),
    noChangeCount: int('nochange-count', base.noChangeCount),
    noChangeKib: int('nochange-kib', base.noChangeKib, 0),
    peers: peerList as BenchOptions['peers'],
    install: !values['no-install'],
    firstCopy: Boolean(values['first-copy']),
    outDir: values.out ?? RESULTS_DIR,
    quick: Boolean(values.quick),
    ...(listed.includes('fan-out') && {
      fanOut: {
        count: int('fan-out-count', values.quick ? 200 : 20_000),
        latencyMs: int('fan-out-latency-ms', 40, 0),
        workers: fanOutWorkers,
        concurrency: int('fan-out-concurrency', 4),
      },
    }),
    ...(listed.includes('event-lag') && {
      eventLag: {
        count: int('event-lag-count', values.quick ? 40 : 2000),
        rate: int('event-lag-rate', values.quick ? 10 : 20),
        bytes: int('event-lag-bytes', 1024, 0),
        workers: int('event-lag-workers', values.quick ? 2 : 4),
      },
    }),
  };
}
