import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scoreFile, writeScoreReport } from '../../scripts/lib/mutation-score.js';

const at = (line: number, from: number, to: number) => ({
  start: { line, column: from },
  end: { line, column: to },
});

const report = {
  source: 'if (a && b) return x;\nconst y = 1;\n',
  mutants: [
    { mutatorName: 'LogicalOperator', replacement: 'a || b', status: 'Killed', location: at(1, 5, 11) },
    { mutatorName: 'ConditionalExpression', replacement: 'true', status: 'Timeout', location: at(1, 5, 11) },
    {
      mutatorName: 'ConditionalExpression',
      replacement: 'false',
      status: 'Survived',
      location: at(1, 5, 11),
    },
    { mutatorName: 'BlockStatement', replacement: '{}', status: 'NoCoverage', location: at(2, 1, 13) },
    {
      mutatorName: 'StringLiteral',
      status: 'Ignored',
      statusReason: 'only a log line',
      location: at(2, 1, 13),
    },
    { mutatorName: 'ArithmeticOperator', status: 'CompileError', location: at(2, 1, 13) },
  ],
};

describe('mutation score', () => {
  it('counts killed and timed out as detected, survived and uncovered as not, and leaves the rest out', () => {
    expect(scoreFile('f.ts', report)).toEqual({
      file: 'f.ts',
      killed: 2,
      survived: 2,
      ignored: 1,
      compileErrors: 1,
      score: 0.5,
    });
    expect(scoreFile('g.ts', { source: '', mutants: [] }).score).toBeUndefined();
  });

  it('writes a table per file, each survivor with its original text, and the equivalents with their reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mutation-score-'));
    await writeFile(join(dir, 'a.json'), JSON.stringify({ files: { 'functions/core/plan/f.ts': report } }));
    const summary = await writeScoreReport(
      [join(dir, 'a.json'), join(dir, 'missing.json')],
      join(dir, 'score.md'),
    );
    const text = await readFile(join(dir, 'score.md'), 'utf8');
    expect(summary).toContain('50.0 %');
    expect(text).toContain('| `plan/f.ts` | 2 | 2 | 1 | 1 | **50.0 %** |');
    expect(text).toContain('- `plan/f.ts:1` ConditionalExpression: `a && b` → `false`');
    expect(text).toContain('- `plan/f.ts:2` BlockStatement (no test covers it)');
    expect(text).toContain('- `plan/f.ts:2` StringLiteral: only a log line');
  });
});
