import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { diagnoseJob } from '../../functions/core/diagnose/diagnose-job.js';
import { BucketAccessError } from '../../functions/core/errors.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxDynamo, sandboxS3, sandboxSts } from '../../sandbox/clients.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { createSourceRole, isolatedJob, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;

/** A job whose role may list the source but not read its objects, over two objects. */
async function listOnlyJob(name: string): Promise<Job> {
  const roleArn = await createSourceRole(sandbox, name, { actions: ['s3:ListBucket'] });
  const job = isolatedJob(sandbox, name);
  await putObject(producer, source, `${job.source.prefix}a.txt`, 'a');
  await putObject(producer, source, `${job.source.prefix}b.txt`, 'b');
  return { ...job, source: { ...job.source, roleArn } };
}

describe('preflight with a role that can list but not read', () => {
  it('fails before writing anything, naming the role and s3:GetObject', async () => {
    const job = await listOnlyJob('list-only');

    const run = syncJob(deps, job);

    await expect(run).rejects.toThrow(BucketAccessError);
    await expect(run).rejects.toThrow(
      new RegExp(`${job.source.roleArn}.*s3:GetObject on arn:aws:s3:::${source}/${job.source.prefix}\\*`),
    );
    expect(await listKeys(consumer, job.destination.bucket, job.destination.prefix)).toEqual([]);
    const ledger = [];
    for await (const entry of deps.state.ledger(job.jobId)) ledger.push(entry);
    expect(ledger).toEqual([]);
    expect(await deps.state.readLease(job.jobId)).toBeUndefined();
  });

  it('exits 3 from the CLI, and doctor gives the same fix', async () => {
    const job = await listOnlyJob('list-only-cli');
    const path = join(mkdtempSync(join(tmpdir(), 'preflight-')), 'job.json');
    writeFileSync(path, JSON.stringify(job));

    const run = await promisify(execFile)('node', ['bin/cross-account-sync.mjs', 'run', path, '--json'], {
      env: { ...process.env, ...sandboxEnv(sandbox) },
    }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code: number; stdout: string }) => error,
    );
    const report = await diagnoseJob(
      {
        sts: sandboxSts(sandbox, sandbox.accountB.syncer),
        destinationS3: sandboxS3(sandbox, sandbox.accountB.syncer),
        sourceS3: (credentials) => sandboxS3(sandbox, credentials),
        dynamodb: sandboxDynamo(sandbox),
        tableName: sandbox.accountB.tableName,
      },
      job,
    );

    expect(run.code).toBe(3);
    const error = JSON.parse(run.stdout).error;
    expect(error).toMatchObject({ name: 'BucketAccessError', exitCode: 3 });
    const fix = report.checks.find((check) => check.link === 'getSource')?.fix ?? expect.fail('no fix');
    expect(error.message).toContain(fix);
  });
});
