import { randomBytes } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import {
  type DoctorDependencies,
  type DoctorReport,
  diagnoseJob,
} from '../../functions/core/diagnose/diagnose-job.js';
import type { Job } from '../../functions/core/job.js';
import {
  type SandboxCredentials,
  sandboxDynamo,
  sandboxIam,
  sandboxS3,
  sandboxSts,
} from '../../sandbox/clients.js';
import { SANDBOX } from '../../sandbox/sandbox.js';
import { createRole, createSourceRole, isolatedJob, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, producer, consumer } = useSandbox();
const { accountA, accountB } = sandbox;

function doctorDeps(overrides: Partial<DoctorDependencies> = {}): DoctorDependencies {
  return {
    sts: sandboxSts(sandbox, accountB.syncer),
    destinationS3: sandboxS3(sandbox, accountB.syncer),
    sourceS3: (credentials) => sandboxS3(sandbox, credentials),
    dynamodb: sandboxDynamo(sandbox),
    tableName: accountB.tableName,
    ...overrides,
  };
}

/** A job over its own prefix, holding one object so GetObject has something to read. */
async function jobWithObject(name: string, source: Partial<Job['source']> = {}): Promise<Job> {
  const job = isolatedJob(sandbox, name);
  await putObject(producer, accountA.bucket, `${job.source.prefix}probe.txt`, 'probe me');
  return { ...job, source: { ...job.source, ...source } };
}

/**
 * An AccountB role standing in for the deployed function's execution role (the syncer's permissions),
 * and the keys of a session of it: what the function runs as.
 */
async function functionRoleSession(name: string): Promise<{ roleArn: string; keys: SandboxCredentials }> {
  const roleName = `sync-function-${name}-${randomBytes(3).toString('hex')}`;
  const roleArn = await createRole(
    sandboxIam(sandbox, accountB.admin),
    roleName,
    // The admin by name: moto's own same-account check matches the caller's exact ARN.
    {
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${accountB.id}:user/${SANDBOX.accountB.adminUser}` },
      Action: 'sts:AssumeRole',
    },
    [
      {
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Resource: `arn:aws:iam::${accountA.id}:role/${SANDBOX.accountA.testRolePrefix}*`,
      },
      { Effect: 'Allow', Action: 's3:*', Resource: ['arn:aws:s3:::accountb-*', 'arn:aws:s3:::accountb-*/*'] },
    ],
  );
  const { Credentials: keys } = await sandboxSts(sandbox, accountB.admin).send(
    new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'sync-function' }),
  );
  return {
    roleArn,
    keys: {
      accessKeyId: keys?.AccessKeyId ?? expect.fail('no keys'),
      secretAccessKey: keys?.SecretAccessKey ?? '',
      sessionToken: keys?.SessionToken,
    },
  };
}

function statuses(report: DoctorReport): Record<string, string> {
  return Object.fromEntries(report.checks.map((check) => [check.link, check.status]));
}

function check(report: DoctorReport, link: string) {
  return report.checks.find((c) => c.link === link) ?? expect.fail(`no ${link} check`);
}

describe('diagnoseJob against the sandbox', () => {
  it('passes every link of a working job and leaves no probe object behind', async () => {
    const job = await jobWithObject('doctor-ok');

    const report = await diagnoseJob(doctorDeps(), job);

    expect(report.ok).toBe(true);
    expect(report.caller).toBe(`arn:aws:iam::${accountB.id}:user/syncer`);
    expect(report.checks.map((c) => `${c.link} ${c.status}`)).toEqual([
      'assumeRole ok',
      'externalId ok',
      'consumerTrust warn',
      'listSource ok',
      'getSource ok',
      'writeDestination ok',
      'stateTable ok',
    ]);
    expect(await listKeys(consumer, job.destination.bucket, '.cross-account-sync/doctor/')).toEqual([]);
  });

  it('blames the trust policy when the role does not trust this account', async () => {
    const roleArn = await createSourceRole(sandbox, 'untrusted', { trustAccount: accountA.id });
    const job = await jobWithObject('doctor-untrusted', { roleArn });

    const report = await diagnoseJob(doctorDeps(), job);

    expect(report.ok).toBe(false);
    expect(check(report, 'assumeRole')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining("the role's trust policy"),
      fix: expect.stringContaining(`arn:aws:iam::${accountB.id}:root`),
    });
    expect(statuses(report)).toMatchObject({
      externalId: 'skipped',
      listSource: 'skipped',
      getSource: 'skipped',
    });
    expect(statuses(report)).toMatchObject({ writeDestination: 'ok', stateTable: 'ok' });
  });

  it('names the ExternalId in the fix when the role refuses the job’s ExternalId', async () => {
    const job = await jobWithObject('doctor-wrong-external-id', { externalId: 'not-the-external-id' });

    const report = await diagnoseJob(doctorDeps(), job);

    expect(check(report, 'assumeRole')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('with this ExternalId'),
      fix: expect.stringContaining('"not-the-external-id"'),
    });
    expect(check(report, 'externalId').detail).toMatch(/wrong ExternalId and an untrusted caller alike/);
  });

  it("blames the caller's own policy when it may not call AssumeRole on the role", async () => {
    const roleArn = `arn:aws:iam::${accountA.id}:role/NotInTheSyncersPolicy`;
    const job = await jobWithObject('doctor-caller', { roleArn });

    const report = await diagnoseJob(doctorDeps(), job);

    expect(check(report, 'assumeRole')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining("the caller's permission"),
      fix: expect.stringContaining(`allow "sts:AssumeRole" on "${roleArn}"`),
    });
  });

  it('warns of a confused deputy when the role can be assumed without the ExternalId', async () => {
    const roleArn = await createSourceRole(sandbox, 'no-external-id', { externalId: null });
    const job = await jobWithObject('doctor-deputy', { roleArn });

    const report = await diagnoseJob(doctorDeps(), job);

    expect(report.ok).toBe(true);
    expect(check(report, 'externalId')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('WITHOUT an ExternalId'),
      fix: expect.stringContaining('sts:ExternalId'),
    });
  });

  it('finds a role that may not list the source, and does not test GetObject', async () => {
    const roleArn = await createSourceRole(sandbox, 'no-list', { actions: ['s3:GetObject'] });
    const job = await jobWithObject('doctor-no-list', { roleArn });

    const report = await diagnoseJob(doctorDeps(), job);

    expect(check(report, 'listSource')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining(`s3:ListBucket on arn:aws:s3:::${accountA.bucket}`),
    });
    expect(statuses(report)).toMatchObject({ assumeRole: 'ok', getSource: 'skipped' });
  });

  it('finds a role that may list but not get the source objects', async () => {
    const roleArn = await createSourceRole(sandbox, 'no-get', { actions: ['s3:ListBucket'] });
    const job = await jobWithObject('doctor-no-get', { roleArn });

    const report = await diagnoseJob(doctorDeps(), job);

    expect(statuses(report)).toMatchObject({ listSource: 'ok', getSource: 'fail' });
    expect(check(report, 'getSource').fix).toContain(
      `s3:GetObject on arn:aws:s3:::${accountA.bucket}/${job.source.prefix}*`,
    );
  });

  it('says there is nothing to test GetObject with under an empty prefix', async () => {
    const job = isolatedJob(sandbox, 'doctor-empty');

    const report = await diagnoseJob(doctorDeps(), job);

    expect(check(report, 'getSource')).toMatchObject({
      status: 'skipped',
      detail: 'no object to test GetObject with',
    });
    expect(report.ok).toBe(true);
  });

  it('finds a destination bucket this identity may not write', async () => {
    const bucket = `readonly-dest-${randomBytes(3).toString('hex')}`;
    await sandboxS3(sandbox, accountB.admin).send(new CreateBucketCommand({ Bucket: bucket }));
    const job = await jobWithObject('doctor-readonly-destination');

    const report = await diagnoseJob(doctorDeps(), { ...job, destination: { ...job.destination, bucket } });

    expect(check(report, 'writeDestination')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining(`s3:PutObject on arn:aws:s3:::${bucket}/*`),
    });
    expect(statuses(report)).toMatchObject({ assumeRole: 'ok', listSource: 'ok', getSource: 'ok' });
  });

  it('finds a state table that does not exist', async () => {
    const job = await jobWithObject('doctor-no-table');

    const report = await diagnoseJob(doctorDeps({ tableName: 'no-such-table' }), job);

    expect(check(report, 'stateTable')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('no-such-table does not exist'),
    });
    expect(report.ok).toBe(false);
  });

  it('names ConsumerPrincipalArns when an identity that is not the function’s role may assume the source role', async () => {
    const { roleArn: functionRoleArn } = await functionRoleSession('broad');
    const job = await jobWithObject('doctor-broad-trust');

    const report = await diagnoseJob(doctorDeps({ functionRoleArns: [functionRoleArn] }), job);

    expect(report.ok).toBe(true);
    expect(check(report, 'consumerTrust')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining(
        `arn:aws:iam::${accountB.id}:user/syncer is not the sync function's role`,
      ),
      fix: expect.stringContaining(`ConsumerPrincipalArns=${functionRoleArn}`),
    });
  });

  it('passes the trust narrowed to the function’s role, which then refuses every other identity', async () => {
    const fn = await functionRoleSession('narrow');
    const roleArn = await createSourceRole(sandbox, 'narrow-trust', { principalArns: [fn.roleArn] });
    const job = await jobWithObject('doctor-narrow-trust', { roleArn });
    const asFunction = doctorDeps({
      sts: sandboxSts(sandbox, fn.keys),
      destinationS3: sandboxS3(sandbox, fn.keys),
      functionRoleArns: [fn.roleArn],
    });

    const [functionReport, syncerReport] = await Promise.all([
      diagnoseJob(asFunction, job),
      diagnoseJob(doctorDeps({ functionRoleArns: [fn.roleArn] }), job),
    ]);

    expect(functionReport.ok).toBe(true);
    expect(statuses(functionReport)).toMatchObject({
      assumeRole: 'ok',
      consumerTrust: 'ok',
      getSource: 'ok',
    });
    // The syncer (not the function's role) is refused, as the recommended trust should: not a broken link.
    expect(syncerReport.ok).toBe(true);
    expect(statuses(syncerReport)).toMatchObject({
      assumeRole: 'skipped',
      consumerTrust: 'ok',
      listSource: 'skipped',
    });
    expect(check(syncerReport, 'assumeRole').detail).toContain(
      `refuses arn:aws:iam::${accountB.id}:user/syncer, which is not the sync function's role`,
    );
  });

  it('still blames the trust policy for a refusal when the function’s role is not known', async () => {
    const fn = await functionRoleSession('narrow-unknown');
    const roleArn = await createSourceRole(sandbox, 'narrow-unknown', { principalArns: [fn.roleArn] });
    const job = await jobWithObject('doctor-narrow-unknown', { roleArn });

    const report = await diagnoseJob(doctorDeps(), job);

    expect(report.ok).toBe(false);
    expect(check(report, 'assumeRole')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining("the role's trust policy"),
    });
  });
});
