import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Runs `npm run invoke -- <args>` and collects its output. */
function invoke(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'invoke', '--', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The handler's result: the last line of stdout (the function's own logs come before it). */
function lastJsonLine(stdout: string): unknown {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null');
}

describe('npm run invoke (the local sam local invoke)', () => {
  it('bundles SyncFunction from template.yaml and runs the scheduled job against its own sandbox', async () => {
    const run = await invoke(['SyncFunction', '-e', 'events/scheduled-sync.json']);

    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/copied/);
    expect(lastJsonLine(run.stdout)).toEqual(
      expect.objectContaining({ status: 'complete', copied: 2, failed: 0 }),
    );
  });

  it('fails naming the field when the job is malformed, before touching AWS', async () => {
    const run = await invoke(['SyncFunction', '-e', 'events/invalid-job.json']);

    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/job\.source\.roleArn/);
    // The class name survives the template's minified bundle, as Lambda reports it.
    expect(lastJsonLine(run.stdout)).toMatchObject({ errorType: 'JobValidationError' });
  });

  it('names the unknown function and lists the valid ones', async () => {
    const run = await invoke(['NoSuchFunction', '-e', 'events/scheduled-sync.json', '--no-sandbox']);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/NoSuchFunction is not an AWS::Serverless::Function.*valid ids: SyncFunction/);
  });
});
