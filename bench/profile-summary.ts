/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, as BENCH_NODE_FLAGS_<CHILD> passes them to a benchmark
 * child) by self time, grouped by function and file, so two tools' profiles from one run can be compared
 * entry by entry without opening DevTools.
 *
 *   node --experimental-strip-types bench/profile-summary.ts <file.cpuprofile | dir> [top=25]
 *
 * A directory sums every profile in it (one per process). Times are milliseconds of self time; `%` is of
 * the profile's total, idle included, so "(idle)" says how long the process waited.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function profileFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(path, name));
}

/** Self time per "function file" in microseconds, from each sample's node and the time to the next one. */
function selfTimes(profile: Profile, into: Map<string, number>): number {
  const names = new Map<number, string>();
  for (const { id, callFrame } of profile.nodes) {
    const file = callFrame.url ? basename(callFrame.url.replace(/^file:\/\//, '')) : '';
    // A bundle's anonymous functions are told apart by their line (1-based, as editors count).
    const name = callFrame.functionName || `(anonymous):${callFrame.lineNumber + 1}`;
    names.set(id, `${name} ${file}`.trim());
  }
  let total = 0;
  profile.samples.forEach((id, index) => {
    const micros = profile.timeDeltas[index + 1] ?? 0;
    const name = names.get(id) ?? '?';
    into.set(name, (into.get(name) ?? 0) + micros);
    total += micros;
  });
  return total;
}

const [path, top = '25'] = process.argv.slice(2);
if (!path)
  throw new Error(
    'usage: profile-summary.ts <file.cpuprofile | dir> [top]: name a profile or a directory of them',
  );
const totals = new Map<string, number>();
let total = 0;
for (const file of profileFiles(path))
  total += selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile, totals);
const busy = total - (totals.get('(idle)') ?? 0);
console.log(`total ${(total / 1e3).toFixed(0)} ms, busy (not idle) ${(busy / 1e3).toFixed(0)} ms`);
for (const [name, micros] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
  console.log(
    `${(micros / 1e3).toFixed(0).padStart(8)} ms ${((100 * micros) / total).toFixed(1).padStart(5)} %  ${name}`,
  );
}
