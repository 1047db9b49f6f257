import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm start (the demo on its own sandbox)', () => {
  it('prints one JSON summary per sync: 2, then 0, then 2 copied', async () => {
    const { stdout } = await run('npx', ['tsx', 'scripts/start.ts', '--json'], { timeout: 90_000 });

    const summaries = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { copied: number; skipped: number; failed: number; bytes: number });
    expect(summaries.map((s) => s.copied)).toEqual([2, 0, 2]);
    expect(summaries.map((s) => s.skipped)).toEqual([0, 2, 1]);
    expect(summaries.every((s) => s.failed === 0)).toBe(true);
    expect(summaries[1]?.bytes).toBe(0);
  });

  it('`npm start --silent -- --json` prints only JSON lines, for jq (README), and no Node warnings', async () => {
    const { stdout, stderr } = await run('npm', ['start', '--silent', '--', '--json'], { timeout: 90_000 });

    const lines = stdout.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(stderr.split('\n').filter((line) => /Warning:/.test(line))).toEqual([]);
  });
});
