/**
 * Turns Stryker's JSON reports (mutation-testing-report-schema) into reports/mutation/score.md: the share of
 * mutants killed per core file, every survivor with its line and edit, and the mutants the code marks as
 * equivalent with the reason given there.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';

interface Position {
  readonly line: number;
  readonly column: number;
}
interface Mutant {
  readonly mutatorName: string;
  readonly replacement?: string;
  readonly status: string;
  readonly statusReason?: string;
  readonly location: { readonly start: Position; readonly end: Position };
}
interface FileReport {
  readonly source: string;
  readonly mutants: readonly Mutant[];
}
interface Report {
  readonly files: Record<string, FileReport>;
}

export interface FileScore {
  readonly file: string;
  readonly killed: number;
  readonly survived: number;
  readonly ignored: number;
  readonly compileErrors: number;
  /** Killed or timed out over killed, timed out, survived and uncovered; undefined with nothing testable. */
  readonly score: number | undefined;
}

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

export function scoreFile(file: string, report: FileReport): FileScore {
  const count = (statuses: Set<string>) => report.mutants.filter((m) => statuses.has(m.status)).length;
  const killed = count(DETECTED);
  const survived = count(UNDETECTED);
  return {
    file,
    killed,
    survived,
    ignored: count(new Set(['Ignored'])),
    compileErrors: count(new Set(['CompileError'])),
    score: killed + survived === 0 ? undefined : killed / (killed + survived),
  };
}

/** The mutated source text, on one line and cut short, for a list a person reads. */
function original(source: string, { start, end }: Mutant['location']): string {
  const lines = source.split('\n');
  const text =
    start.line === end.line
      ? (lines[start.line - 1] ?? '').slice(start.column - 1, end.column - 1)
      : `${(lines[start.line - 1] ?? '').slice(start.column - 1)} …`;
  return oneLine(text);
}

const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}…` : flat;
};

const percent = (score: number | undefined): string =>
  score === undefined ? 'n/a' : `${(score * 100).toFixed(1)} %`;

export async function writeScoreReport(reportFiles: readonly string[], outFile: string): Promise<string> {
  const files: Record<string, FileReport> = {};
  for (const reportFile of reportFiles) {
    if (!existsSync(reportFile)) continue;
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    Object.assign(files, report.files);
  }
  const names = Object.keys(files).sort();
  const scores = names.map((name) => scoreFile(name, files[name] as FileReport));
  const total = scores.reduce(
    (sum, s) => ({
      killed: sum.killed + s.killed,
      survived: sum.survived + s.survived,
      ignored: sum.ignored + s.ignored,
      compileErrors: sum.compileErrors + s.compileErrors,
    }),
    { killed: 0, survived: 0, ignored: 0, compileErrors: 0 },
  );
  const totalScore =
    total.killed + total.survived === 0 ? undefined : total.killed / (total.killed + total.survived);
  const row = (name: string, s: Omit<FileScore, 'file' | 'score'>, score: number | undefined) =>
    `| ${name} | ${s.killed} | ${s.survived} | ${s.ignored} | ${s.compileErrors} | **${percent(score)}** |`;

  const lines = [
    '# Mutation score of functions/core',
    '',
    "Written by `npm run test:mutation` from the rooms' Stryker reports (`reports/mutation/rooms/`).",
    'Score: killed (or timed out) over killed, survived and uncovered. Equivalent: marked in the code',
    'with `// Stryker disable next-line <mutator>: <why>`. Compile errors: rejected by the TypeScript checker.',
    '',
    '| file | killed | survived | equivalent | compile errors | score |',
    '|---|---|---|---|---|---|',
    ...scores.map((s) => row(`\`${s.file.replace('functions/core/', '')}\``, s, s.score)),
    row('**all**', total, totalScore),
    '',
    '## Survivors',
    '',
  ];
  for (const name of names) {
    const file = files[name] as FileReport;
    for (const m of file.mutants.filter((mutant) => UNDETECTED.has(mutant.status))) {
      lines.push(
        `- \`${name.replace('functions/core/', '')}:${m.location.start.line}\` ${m.mutatorName}${m.status === 'NoCoverage' ? ' (no test covers it)' : ''}: \`${original(file.source, m.location)}\` → \`${oneLine(m.replacement ?? '')}\``,
      );
    }
  }
  lines.push('', '## Equivalent (marked in the code)', '');
  for (const name of names) {
    const file = files[name] as FileReport;
    for (const m of file.mutants.filter((mutant) => mutant.status === 'Ignored')) {
      lines.push(
        `- \`${name.replace('functions/core/', '')}:${m.location.start.line}\` ${m.mutatorName}: ${oneLine(m.statusReason ?? '')}`,
      );
    }
  }
  await writeFile(outFile, `${lines.join('\n')}\n`);
  return `mutation score of functions/core: ${percent(totalScore)} (${total.killed} killed, ${total.survived} survived, ${total.ignored} equivalent)`;
}
