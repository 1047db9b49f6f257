/**
 * npm run test:mutation [-- <room or room/file>...] [--score-only] [--concurrency=N]
 *
 * Runs Stryker over functions/core one room at a time (access, copy, diagnose, plan, report, run, state,
 * and `root` for the files directly under functions/core), each with its own incremental file, so a rerun
 * after a change tests only the mutants whose code or covering tests changed, and a room can be rerun on
 * its own. A big room can also be run one file at a time (`copy/copy-object`), so an hour's work is saved
 * when that file is done rather than lost with the whole room. Then it writes reports/mutation/score.md
 * from every report: the share of mutants killed per core file, the survivors, and the
 * mutants marked equivalent in the code (`// Stryker disable next-line …: <why>`). `--concurrency=3` runs
 * up to three Stryker test workers, each with its own sandbox, once the TypeScript checkers are done.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
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

/** A room's files, or one file's: `copy/copy-object` is functions/core/copy/copy-object.ts. */
const mutateGlob = (room: string): string[] => {
  if (room === 'root') return [`${CORE}/*.ts`];
  return room.includes('/') ? [`${CORE}/${room}.ts`] : [`${CORE}/${room}/**/*.ts`];
};

/** The name of a room's reports: `copy`, or `copy.copy-object` for one of its files. */
const reportName = (room: string): string => room.replace('/', '.');

const isKnown = (room: string, known: readonly string[]): boolean =>
  room.includes('/') ? existsSync(`${CORE}/${room}.ts`) : known.includes(room);

const reports = (): string[] =>
  readdirSync(REPORTS).filter((name) => name.endsWith('.json') && !name.endsWith('.incremental.json'));

/**
 * Rooms' reports first, then single files' (`copy.copy-object.json`), so a file measured on its own
 * counts that result; running the whole room again deletes its files' reports.
 */
const reportsRoomsFirst = (): string[] =>
  reports()
    .sort((a, b) => a.split('.').length - b.split('.').length || a.localeCompare(b))
    .map((name) => join(REPORTS, name));

async function runRoom(room: string, concurrency: number | undefined): Promise<void> {
  // Imported here so `--score-only` does not load Stryker.
  const { Stryker } = await import('@stryker-mutator/core');
  const mutate = mutateGlob(room);
  console.log(`\n== mutation testing ${mutate.join(', ')} ==`);
  const name = reportName(room);
  await new Stryker({
    configFile: 'stryker.config.json',
    mutate,
    ...(concurrency && { concurrency }),
    incrementalFile: `${REPORTS}/${name}.incremental.json`,
    htmlReporter: { fileName: `${REPORTS}/${name}.html` },
    jsonReporter: { fileName: `${REPORTS}/${name}.json` },
  }).runMutationTest();
  if (!room.includes('/')) {
    for (const stale of reports().filter((file) => file.startsWith(`${name}.`) && file !== `${name}.json`))
      await rm(join(REPORTS, stale));
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const scoreOnly = args.includes('--score-only');
  const concurrency =
    Number(args.find((arg) => arg.startsWith('--concurrency='))?.split('=')[1]) || undefined;
  const known = rooms();
  const asked = args.filter((arg) => !arg.startsWith('--'));
  const unknown = asked.filter((room) => !isKnown(room, known));
  if (unknown.length > 0) {
    console.error(
      `unknown room ${unknown.join(', ')}: choose from ${known.join(', ')}, or one file of a room as <room>/<file>`,
    );
    process.exit(2);
  }
  await mkdir(REPORTS, { recursive: true });
  if (!scoreOnly) for (const room of asked.length > 0 ? asked : known) await runRoom(room, concurrency);
  const summary = await writeScoreReport(reportsRoomsFirst(), 'reports/mutation/score.md');
  console.log(`\n${summary}\nper file: reports/mutation/score.md`);
}

await main();
