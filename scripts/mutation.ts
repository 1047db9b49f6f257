/**
 * npm run test:mutation [-- <room>...] [--score-only]
 *
 * Runs Stryker over functions/core one room at a time (access, copy, diagnose, plan, report, run, state,
 * and `root` for the files directly under functions/core), each with its own incremental file, so a rerun
 * after a change tests only the mutants whose code or covering tests changed, and a room can be rerun on
 * its own. Then it writes reports/mutation/score.md: the share of mutants killed per core file, the
 * survivors, and the mutants marked equivalent in the code (`// Stryker disable next-line …: <why>`).
 */
import { readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeScoreReport } from './lib/mutation-score.js';

const CORE = 'functions/core';
const REPORTS = 'reports/mutation/rooms';

const rooms = (): string[] => [
  ...readdirSync(CORE, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort(),
  'root',
];

const mutateGlob = (room: string): string[] =>
  room === 'root' ? [`${CORE}/*.ts`] : [`${CORE}/${room}/**/*.ts`];

async function runRoom(room: string): Promise<void> {
  // Imported here so `--score-only` does not load Stryker.
  const { Stryker } = await import('@stryker-mutator/core');
  console.log(`\n== mutation testing ${CORE}/${room === 'root' ? '*.ts' : `${room}/`} ==`);
  await new Stryker({
    configFile: 'stryker.config.json',
    mutate: mutateGlob(room),
    incrementalFile: `${REPORTS}/${room}.incremental.json`,
    htmlReporter: { fileName: `${REPORTS}/${room}.html` },
    jsonReporter: { fileName: `${REPORTS}/${room}.json` },
  }).runMutationTest();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const scoreOnly = args.includes('--score-only');
  const known = rooms();
  const asked = args.filter((arg) => !arg.startsWith('--'));
  const unknown = asked.filter((room) => !known.includes(room));
  if (unknown.length > 0) {
    console.error(`unknown room ${unknown.join(', ')}: choose from ${known.join(', ')}`);
    process.exit(2);
  }
  await mkdir(REPORTS, { recursive: true });
  if (!scoreOnly) for (const room of asked.length > 0 ? asked : known) await runRoom(room);
  const summary = await writeScoreReport(
    known.map((room) => join(REPORTS, `${room}.json`)),
    'reports/mutation/score.md',
  );
  console.log(`\n${summary}\nper file: reports/mutation/score.md`);
}

await main();
