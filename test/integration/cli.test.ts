import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateEventBusCommand } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../functions/core/job.js';
import { sandboxEvents } from '../../sandbox/clients.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { isolatedJob, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const jobDir = mkdtempSync(join(tmpdir(), 'cross-account-sync-cli-'));

/** Runs the installed bin, as `npx cross-account-sync` does, acting as AccountB's syncer in the sandbox. */
async function cli(
  ...args: (string | Record<string, string>)[]
): Promise<{ status: number; stdout: string; stderr: string }> {
  const argv = args.filter((arg): arg is string => typeof arg === 'string');
  // A trailing object: extra environment for this command.
  const extraEnv = args.find((arg): arg is Record<string, string> => typeof arg !== 'string');
  try {
    const { stdout, stderr } = await promisify(execFile)('node', ['bin/cross-account-sync.mjs', ...argv], {
      env: { ...process.env, ...sandboxEnv(sandbox), ...extraEnv },
    });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { status: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Puts `count` objects of `bytes` each (small by default) under the job's source prefix, a few at a time. */
async function seed(job: Job, count: number, bytes = 0): Promise<void> {
  const keys = Array.from(
    { length: count },
    (_, i) => `${job.source.prefix}${String(i).padStart(5, '0')}.txt`,
  );
  for (let i = 0; i < keys.length; i += 25) {
    await Promise.all(
      keys
        .slice(i, i + 25)
        .map((key) => putObject(producer, source, key, `object ${key}`.padEnd(bytes, '.'))),
    );
  }
}

/** Node's own warnings (`(node:123) MaxListenersExceededWarning: ...`) in a command's stderr. */
const nodeWarnings = (stderr: string) => stderr.split('\n').filter((line) => /Warning:/.test(line));

function writeJob(job: Job): string {
  const path = join(jobDir, `${job.jobId}.json`);
  writeFileSync(path, JSON.stringify(job));
  return path;
}

describe('cross-account-sync CLI against the sandbox', () => {
  it('run --json prints the run summary as one document and exits 0 when every object copied', async () => {
    const job = isolatedJob(sandbox, 'cli-run');
    await putObject(producer, source, `${job.source.prefix}a.txt`, 'a');
    await putObject(producer, source, `${job.source.prefix}b.txt`, 'bb');

    const { status, stdout } = await cli('run', writeJob(job), '--json');

    expect(status).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      jobId: job.jobId,
      status: 'complete',
      copied: 2,
      failed: 0,
      bytes: 3,
    });
  });

  it('run prints a summary table naming the manifest it wrote', async () => {
    const job = isolatedJob(sandbox, 'cli-table');
    await putObject(producer, source, `${job.source.prefix}a.txt`, 'a');

    const { status, stdout, stderr } = await cli('run', writeJob(job), '--no-progress');

    expect(status).toBe(0);
    const table = `${stdout}${stderr}`;
    expect(table).toMatch(/copied\s+1 \(1 B\)/);
    expect(table).toMatch(
      new RegExp(
        `manifest\\s+s3://${sandbox.accountB.destinationBucket}/\\.cross-account-sync/runs/${job.jobId}/`,
      ),
    );
  });

  it('run exits 1 when objects failed, and status then shows the run, the failing key and a free lease', async () => {
    const job = isolatedJob(sandbox, 'cli-failed');
    // The destination prefix is longer than the source's, so this key's copy would exceed S3's 1,024 bytes.
    const longKey = `${job.source.prefix}${'k'.repeat(1000 - job.source.prefix.length)}`;
    await putObject(producer, source, longKey, 'too long a name at the destination');
    await putObject(producer, source, `${job.source.prefix}fine.txt`, 'fine');
    const path = writeJob({
      ...job,
      destination: { ...job.destination, prefix: `${job.destination.prefix}${'d'.repeat(40)}/` },
    });

    const run = await cli('run', path, '--json');
    const status = await cli('status', path, '--json');
    const human = await cli('status', '--job-id', job.jobId);

    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ copied: 1, failed: 1 });
    expect(status.status).toBe(0);
    const [report] = JSON.parse(status.stdout).jobs;
    expect(report).toMatchObject({
      jobId: job.jobId,
      lastRun: { runId: JSON.parse(run.stdout).runId, copied: 1, failed: 1 },
      failureCount: 1,
      failures: [{ key: longKey, attempts: expect.any(Number) }],
      lease: { held: false },
    });
    expect(human.stdout).toMatch(new RegExp(`${job.jobId}\\s+complete`));
    expect(human.stdout).toContain('failing keys');
  });

  it('plan shows new and changed objects with their reason, and copies nothing', async () => {
    const job = isolatedJob(sandbox, 'cli-plan');
    const at = (name: string) => `${job.source.prefix}${name}`;
    await putObject(producer, source, at('same.txt'), 'same');
    await putObject(producer, source, at('rewritten.txt'), 'version 1');
    const path = writeJob(job);
    await cli('run', path, '--json');
    await putObject(producer, source, at('rewritten.txt'), 'version 2'); // same size, new bytes
    await putObject(producer, source, at('added.txt'), 'new');

    const plan = await cli('plan', path, '--json');
    const human = await cli('plan', path);

    expect(plan.status).toBe(0);
    expect(JSON.parse(plan.stdout)).toMatchObject({
      totals: { copy: 2, new: 1, changed: 1, unchanged: 1 },
      items: [
        { key: at('added.txt'), action: 'copy', reason: 'new' },
        { key: at('rewritten.txt'), action: 'copy', reason: 'changed' },
      ],
    });
    expect(human.stdout).toContain('copy (changed)');
    expect((await listKeys(consumer, job.destination.bucket, job.destination.prefix)).sort()).toEqual([
      `${job.destination.prefix}rewritten.txt`,
      `${job.destination.prefix}same.txt`,
    ]);
  });

  it('doctor exits 3 and marks the broken link with its fix when the ExternalId is wrong', async () => {
    const job = isolatedJob(sandbox, 'cli-doctor');
    const path = writeJob({ ...job, source: { ...job.source, externalId: 'wrong-external-id' } });

    const json = await cli('doctor', path, '--json');
    const human = await cli('doctor', path);

    expect(json.status).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      checks: expect.arrayContaining([expect.objectContaining({ link: 'assumeRole', status: 'fail' })]),
    });
    expect(human.status).toBe(3);
    expect(human.stdout).toMatch(/✘ caller may assume the source role: .*\n {4}fix: .*"wrong-external-id"/);
    expect(human.stdout).toContain('✔ the destination is writable');
  });

  it('run exits 3 with the cause on stdout as JSON when the source role refuses', async () => {
    const job = isolatedJob(sandbox, 'cli-refused');
    const path = writeJob({ ...job, source: { ...job.source, externalId: 'wrong-external-id' } });

    const { status, stdout } = await cli('run', path, '--json');

    expect(status).toBe(3);
    expect(JSON.parse(stdout).error).toMatchObject({ name: 'AssumeRoleError', exitCode: 3 });
  });

  it('run prints no Node warnings, with more copies in flight than an emitter allows listeners', async () => {
    // 64 copies in flight, each listening for Ctrl-C: Node warns past 10 listeners on one AbortSignal.
    const job = isolatedJob(sandbox, 'cli-warnings', { options: { concurrency: 64 } });
    await seed(job, 300, 50_000);

    const { status, stdout, stderr } = await cli('run', writeJob(job), '--json');

    expect(status).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ copied: 300, failed: 0 });
    expect(nodeWarnings(stderr)).toEqual([]);
  });

  it('Ctrl-C aborts the copies in flight, saves the checkpoint, and the next run copies exactly the rest', async () => {
    const job = isolatedJob(sandbox, 'cli-sigint');
    const total = 600;
    await seed(job, total);
    const path = writeJob(job);

    const child = spawn('node', ['bin/cross-account-sync.mjs', 'run', path, '--json'], {
      env: { ...process.env, ...sandboxEnv(sandbox) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Mid-run: some objects are at the destination, and the run has not finished.
    while ((await listKeys(consumer, job.destination.bucket, job.destination.prefix)).length < 20) {
      if (child.exitCode !== null) throw new Error(`run ended before Ctrl-C: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGINT');
    const code = await exited;

    expect(code).toBe(130);
    expect(stderr).toMatch(
      /copies in flight are cut and counted as deferred \(a large one keeps its stored parts\); the checkpoint is saved/,
    );
    expect(nodeWarnings(stderr)).toEqual([]);
    // The summary lists the aborted copies; a warning per copy would bury the message above.
    expect(stderr).not.toContain('object not copied');
    const stopped = JSON.parse(stdout);
    // Copies cut by Ctrl-C are deferred to the next run, not failures.
    expect(stopped).toMatchObject({ status: 'partial', resumeAfter: expect.any(String), failed: 0 });
    expect(stopped.copied).toBeLessThan(total);

    const next = await cli('run', path, '--json');

    expect(next.status).toBe(0);
    const resumed = JSON.parse(next.stdout);
    expect(resumed).toMatchObject({ status: 'complete', failed: 0, copied: total - stopped.copied });
    expect(resumed.copied + resumed.skipped).toBe(total);
    expect(await listKeys(consumer, job.destination.bucket, job.destination.prefix)).toHaveLength(total);
  });
});

describe('doctor over the event path of a job with options.events', () => {
  const busName = `cli-doctor-bus-${randomBytes(3).toString('hex')}`;
  const consumerEvents = sandboxEvents(sandbox, sandbox.accountB.admin);
  /** AccountA's admin as a named profile, as AccountA's admin would run `--source-profile`. */
  const credentialsFile = join(jobDir, 'aws-credentials');
  writeFileSync(
    credentialsFile,
    `[account-a]\naws_access_key_id = ${sandbox.accountA.admin.accessKeyId}\n` +
      `aws_secret_access_key = ${sandbox.accountA.admin.secretAccessKey}\n`,
  );

  it('names the broken bus policy, and says AccountA’s links need --source-profile when not given', async () => {
    await consumerEvents.send(new CreateEventBusCommand({ Name: busName }));
    const job = isolatedJob(sandbox, 'cli-doctor-events', { options: { events: true } });
    const path = writeJob(job);

    // AccountB's admin runs the doctor: the syncer may not read the bus (asserted below).
    const asAdmin = {
      AWS_ACCESS_KEY_ID: sandbox.accountB.admin.accessKeyId,
      AWS_SECRET_ACCESS_KEY: sandbox.accountB.admin.secretAccessKey,
    };
    const asSyncer = await cli('doctor', path, '--s3-event-bus', busName);
    const without = await cli('doctor', path, '--s3-event-bus', busName, asAdmin);
    const withProfile = await cli(
      'doctor',
      path,
      '--s3-event-bus',
      busName,
      '--source-profile',
      'account-a',
      '--json',
      {
        AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
      },
    );

    expect(asSyncer.stdout).toMatch(/fix: Run the doctor as an identity allowed events:DescribeEventBus/);
    expect(without.status).toBe(3);
    expect(without.stdout).toMatch(
      /- AccountA's bucket sends its events to EventBridge: skipped: needs AccountA's credentials \(--source-profile PROFILE\)/,
    );
    expect(without.stdout).toMatch(
      /✘ AccountB's S3-event bus admits AccountA: .*\n {4}fix: aws events put-permission/,
    );
    expect(without.stdout).toContain("broken link: AccountB's S3-event bus admits AccountA");
    expect(withProfile.status).toBe(3);
    const report = JSON.parse(withProfile.stdout) as { checks: { link: string; status: string }[] };
    const status = Object.fromEntries(report.checks.map((check) => [check.link, check.status]));
    // AccountA's links were read with AccountA's profile: checked (not skipped) either way.
    expect(status.bucketEvents).not.toBe('skipped');
    expect(status.producerRule).toBe('fail');
    expect(status.busPolicy).toBe('fail');
  });

  it('does not look at the event path of a job without options.events', async () => {
    const job = isolatedJob(sandbox, 'cli-doctor-no-events');
    const { stdout } = await cli('doctor', writeJob(job), '--s3-event-bus', busName);
    expect(stdout).not.toContain('S3-event bus');
  });
});
