import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../functions/core/job.js';
import { LEASE_TTL_MS } from '../../functions/core/run/lease-keeper.js';
import { createStateTable } from '../../sandbox/provision.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { isolatedJob, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer } = useSandbox();
const jobDir = mkdtempSync(join(tmpdir(), 'cross-account-sync-mistakes-'));

/**
 * Runs the installed bin as AccountB's syncer in the sandbox, with `env` changed: a value replaces the
 * sandbox's, undefined removes the variable.
 */
async function cli(
  env: Record<string, string | undefined>,
  ...args: string[]
): Promise<{ status: number; stdout: string; stderr: string }> {
  const merged: Record<string, string | undefined> = { ...process.env, ...sandboxEnv(sandbox), ...env };
  for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
  try {
    const { stdout, stderr } = await promisify(execFile)('node', ['bin/cross-account-sync.mjs', ...args], {
      env: merged as NodeJS.ProcessEnv,
    });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { status: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function writeJob(job: Job): string {
  const path = join(jobDir, `${job.jobId}.json`);
  writeFileSync(path, JSON.stringify(job));
  return path;
}

describe('everyday mistakes get the right diagnosis, the same from every command', () => {
  it('no AWS region: run, plan, doctor and status exit 2 saying to set AWS_REGION', async () => {
    const path = writeJob(isolatedJob(sandbox, 'no-region'));
    const noRegion = {
      AWS_REGION: undefined,
      AWS_DEFAULT_REGION: undefined,
      AWS_PROFILE: undefined,
      AWS_CONFIG_FILE: join(jobDir, 'no-such-config'),
    };

    const results = await Promise.all([
      cli(noRegion, 'run', path, '--no-progress'),
      cli(noRegion, 'plan', path),
      cli(noRegion, 'doctor', path),
      cli(noRegion, 'status', path),
    ]);

    for (const { status, stderr } of results) {
      expect(status).toBe(2);
      expect(stderr).toMatch(/^error: no AWS region is set: export AWS_REGION/m);
    }
  });

  it('a typo in the source bucket: run and doctor both name the typo, not only a missing permission', async () => {
    const job = isolatedJob(sandbox, 'bucket-typo');
    const path = writeJob({ ...job, source: { ...job.source, bucket: `${sandbox.accountA.bucket}-typo` } });

    const run = await cli({}, 'run', path, '--no-progress');
    const doctor = await cli({}, 'doctor', path);

    // moto, like S3 for a name it cannot tell about, answers the assumed role's ListObjectsV2 on a bucket that
    // does not exist with 403 AccessDenied (the role's policy names only the real bucket), not NoSuchBucket:
    // so both commands name both causes, the typo first.
    const bothCauses =
      /S3 refused .*S3GetListRole listing source bucket ".*-typo" \(AccessDenied\): either the role lacks s3:ListBucket there, or ".*-typo" is not AccountA's bucket/;
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(bothCauses);
    expect(run.stderr).toMatch(
      /check that job\.source\.bucket is spelled as the bucket the role was made for/,
    );
    expect(doctor.status).toBe(3);
    expect(doctor.stdout).toMatch(/✘ the role may list the source: S3 refused/);
    expect(doctor.stdout).toMatch(bothCauses);
    expect(doctor.stdout).toMatch(
      /fix: check that job\.source\.bucket is spelled as the bucket the role was made for/,
    );
  });

  it('a mistyped --job-id: status exits 2, says no such job exists and lists the known ones', async () => {
    // A table of its own: the known ids come from a bounded Scan, which the shared table outgrows.
    const table = { STATE_TABLE_NAME: `mistakes-${Date.now()}` };
    await createStateTable(sandbox, table.STATE_TABLE_NAME);
    const job = isolatedJob(sandbox, 'known');
    await putObject(producer, sandbox.accountA.bucket, `${job.source.prefix}a.txt`, 'a');
    expect((await cli(table, 'run', writeJob(job), '--no-progress')).status).toBe(0);

    const { status, stderr } = await cli(table, 'status', '--job-id', `${job.jobId}x`);

    expect(status).toBe(2);
    expect(stderr).toMatch(
      new RegExp(
        `no job "${job.jobId}x" in the state table \\(no lease, checkpoint, run record or ledger item\\)`,
      ),
    );
    expect(stderr).toMatch(new RegExp(`known job ids.*: .*\\b${job.jobId}\\b`));
  });

  it('STS refusing connections: doctor and run name the endpoint and a network failure, exit 5', async () => {
    const path = writeJob(isolatedJob(sandbox, 'sts-down'));
    const stsDown = { AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:1' };

    const doctor = await cli(stsDown, 'doctor', path);
    const run = await cli(stsDown, 'run', path, '--no-progress');

    expect(doctor.stdout).toMatch(
      /STS did not answer at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED 127\.0\.0\.1:1\)/,
    );
    expect(doctor.stdout).not.toMatch(/no usable AWS credentials/);
    expect(doctor.status).toBe(5);
    expect(run.stderr).toMatch(/ECONNREFUSED 127\.0\.0\.1:1/);
    expect(run.status).toBe(5);
  });

  it('a dead run’s lease: status shows it, unlock ends it; a live one is refused unless --force', async () => {
    const dead = isolatedJob(sandbox, 'dead-lease');
    const live = isolatedJob(sandbox, 'live-lease');
    // A run that took the lease 90 s ago and never renewed it (heartbeats are every 40 s): it died.
    const deadLease = await deps.state.acquireLease(
      dead.jobId,
      'run-that-died',
      LEASE_TTL_MS,
      Date.now() - 90_000,
    );
    await deps.state.acquireLease(live.jobId, 'run-alive', LEASE_TTL_MS);

    const status = await cli({}, 'status', '--job-id', dead.jobId);
    expect(status.status).toBe(0);
    expect(status.stdout).toContain(
      `held by run-that-died since ${new Date(deadLease.acquiredAt ?? 0).toISOString()}, expires ` +
        `${new Date(deadLease.expiresAt).toISOString()} (not renewed: its run may have died; \`unlock\` ends it)`,
    );

    const unlocked = await cli({}, 'unlock', '--job-id', dead.jobId);
    expect(unlocked).toMatchObject({ status: 0 });
    expect(unlocked.stdout).toMatch(/ended job .*'s lease, held by run run-that-died/);
    expect((await deps.state.readLease(dead.jobId))?.expiresAt).toBe(0);
    // The next run takes the job at once, with a higher fence.
    expect((await deps.state.acquireLease(dead.jobId, 'next-run', LEASE_TTL_MS)).fence).toBe(
      deadLease.fence + 1,
    );

    const refused = await cli({}, 'unlock', writeJob(live));
    expect(refused.status).toBe(4);
    expect(refused.stderr).toMatch(/held by run run-alive .*it looks alive/);
    expect((await deps.state.readLease(live.jobId))?.owner).toBe('run-alive');
    expect((await deps.state.readLease(live.jobId))?.expiresAt).toBeGreaterThan(Date.now());

    const forced = await cli({}, 'unlock', writeJob(live), '--force');
    expect(forced.status).toBe(0);
    expect((await deps.state.readLease(live.jobId))?.expiresAt).toBe(0);
  });

  it('unlock of a mistyped job id exits 2', async () => {
    const { status, stderr } = await cli({}, 'unlock', '--job-id', 'no-such-job-anywhere');

    expect(status).toBe(2);
    expect(stderr).toMatch(/no job "no-such-job-anywhere" in the state table/);
  });
});
