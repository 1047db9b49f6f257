/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, as BENCH_NODE_FLAGS_<CHILD> passes them to a benchmark
 * child) by self time, so two tools' profiles from one run can be compared entry by entry without
 * opening DevTools.
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile | dir> [top=25] [--by-module]
 *
 * A directory sums every profile in it (one per process). Entries are function and file; a bundle's
 * anonymous functions carry their line. With --by-module, a bundle's frames are summed by the source
 * module esbuild names in its `// path` comments (`@smithy/core/...`, `functions/core/...`), which is
 * where a per-request cost shows as one line rather than fifty anonymous middlewares. Times are ms of
 * self time; `%` is of the profile's total, idle included. On a loaded machine the sampled times include
 * waiting for a core, so compare shares, and take CPU-seconds from the benchmark's own figures.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface Profile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}

function profileFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(path, name));
}

/** For each line of a bundle, the module esbuild's last `// path` comment above it names. */
const bundleModules = new Map<string, string[]>();
function moduleOf(url: string, line: number): string | undefined {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (!path.endsWith('.mjs') || !existsSync(path)) return undefined;
  let modules = bundleModules.get(path);
  if (!modules) {
    let current = basename(path);
    modules = readFileSync(path, 'utf8')
      .split('\n')
      .map((text) => {
        const comment = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(text);
        if (comment)
          current = (comment[1] as string).replace(/^.*node_modules\//, '').replace(/^(\.\.\/)+/, '');
        return current;
      });
    bundleModules.set(path, modules);
  }
  return modules[line];
}

function entryName({ functionName, url, lineNumber }: CallFrame, byModule: boolean): string {
  const module = byModule ? moduleOf(url, lineNumber) : undefined;
  if (module) return module;
  const file = url ? basename(url.replace(/^file:\/\//, '')) : '';
  // A bundle's anonymous functions are told apart by their line (1-based, as editors count).
  return `${functionName || `(anonymous):${lineNumber + 1}`} ${file}`.trim();
}

/** Adds each sample's time (to the next sample, in µs) to its entry; returns the profile's total. */
function selfTimes(profile: Profile, into: Map<string, number>, byModule: boolean): number {
  const names = new Map(profile.nodes.map(({ id, callFrame }) => [id, entryName(callFrame, byModule)]));
  let total = 0;
  profile.samples.forEach((id, index) => {
    const micros = profile.timeDeltas[index + 1] ?? 0;
    const name = names.get(id) ?? '?';
    into.set(name, (into.get(name) ?? 0) + micros);
    total += micros;
  });
  return total;
}

const args = process.argv.slice(2);
const byModule = args.includes('--by-module');
const [path, top = '25'] = args.filter((arg) => arg !== '--by-module');
if (!path) {
  throw new Error(
    'usage: profile-summary.ts <file.cpuprofile | dir> [top] [--by-module]: name a profile or a directory of them',
  );
}
const totals = new Map<string, number>();
let total = 0;
for (const file of profileFiles(path)) {
  total += selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile, totals, byModule);
}
const busy = total - (totals.get('(idle)') ?? 0);
console.log(`total ${(total / 1e3).toFixed(0)} ms, busy (not idle) ${(busy / 1e3).toFixed(0)} ms`);
for (const [name, micros] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
  const share = ((100 * micros) / total).toFixed(1);
  console.log(`${(micros / 1e3).toFixed(0).padStart(8)} ms ${share.padStart(5)} %  ${name}`);
}
