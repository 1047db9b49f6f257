import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm start (the demo on its own sandbox)', () => {
  it('prints one JSON summary per sync: 2, then 0, then 2 copied; with --workers, two fan-out passes after', async () => {
    const { stdout } = await run('npx', ['tsx', 'scripts/start.ts', '--json', '--workers', '2'], {
      timeout: 240_000,
    });

    const summaries = stdout
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            jobId: string;
            copied: number;
            skipped: number;
            failed: number;
            bytes: number;
          },
      );
    expect(summaries.map((s) => s.copied)).toEqual([2, 0, 2, 400, 100]);
    expect(summaries.map((s) => s.skipped)).toEqual([0, 2, 1, 0, 400]);
    expect(summaries.map((s) => s.jobId).slice(3)).toEqual(['demo-fan-out', 'demo-fan-out']);
    expect(summaries.every((s) => s.failed === 0)).toBe(true);
    expect(summaries[1]?.bytes).toBe(0);
  }, 250_000);

  it('refuses a --workers that is not a number of workers, before starting anything', async () => {
    const refused = run('npx', ['tsx', 'scripts/start.ts', '--workers', 'many'], { timeout: 30_000 });

    await expect(refused).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--workers takes a number of copy workers from 1 to 64'),
    });
  });

  it('`npm start --silent -- --json` prints only JSON lines, for jq (README), and no Node warnings', async () => {
    const { stdout, stderr } = await run('npm', ['start', '--silent', '--', '--json'], { timeout: 90_000 });

    const lines = stdout.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(stderr.split('\n').filter((line) => /Warning:/.test(line))).toEqual([]);
  });
});
