/**
 * `cross-account-sync jobs` over real HTTP: the job store on DynamoDB Local and the schedules on moto's
 * EventBridge Scheduler (schedule groups and Create/Get/Update/Delete schedule), as AccountB's syncer. The
 * handler is the real one, invoked with the `{"jobId"}` input a schedule would send.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateScheduleCommand, GetScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/exit-codes.js';
import { STACK_OUTPUTS } from '../../cli/read-stack.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { JobStore } from '../../functions/core/state/job-store.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { captureCli } from '../support/capture-cli.js';
import { isolatedJob, lambdaContext, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const { accountA, accountB } = sandbox;
// The handler builds its clients at import, from the environment useSandbox points at the sandbox.
const { handler } = await import('../../functions/sync.js');
const admin = { region: sandbox.region, endpoint: sandbox.motoEndpoint, credentials: { ...accountB.admin } };
const scheduler = new SchedulerClient(admin);
const store = new JobStore(sandboxDynamo(sandbox), accountB.tableName);
const functionArn = `arn:aws:lambda:${sandbox.region}:${accountB.id}:function:sync-SyncFunction`;
const schedulerRoleArn = `arn:aws:iam::${accountB.id}:role/sync-JobSchedulerRole`;
const dir = mkdtempSync(join(tmpdir(), 'jobs-command-'));

function jobFile(job: object): string {
  const path = join(dir, `${randomBytes(4).toString('hex')}.json`);
  writeFileSync(path, JSON.stringify(job));
  return path;
}

/** The CLI in this process as AccountB's syncer, with the place given flag by flag. */
function jobs(group: string, ...argv: string[]) {
  return captureCli(
    sandboxEnv(sandbox),
    'jobs',
    ...argv,
    '--table',
    accountB.tableName,
    '--schedule-group',
    group,
    ...(argv[0] === 'add' ? ['--scheduler-role-arn', schedulerRoleArn, '--function-arn', functionArn] : []),
  );
}

const schedule = (group: string, name: string) =>
  scheduler.send(new GetScheduleCommand({ GroupName: group, Name: name }));

describe('cross-account-sync jobs against the sandbox', () => {
  it('adds, lists, pauses, resumes and removes a job; the handler skips it while paused and runs it after', async () => {
    // Arrange
    const group = `jobs-${randomBytes(3).toString('hex')}`;
    const job = isolatedJob(sandbox, 'jobs-cli');
    await putObject(producer, accountA.bucket, `${job.source.prefix}a.txt`, 'alpha');
    const file = jobFile({ jobId: job.jobId, source: job.source, destination: job.destination });

    // Act + assert: add
    const added = await jobs(group, 'add', '--file', file, '--schedule', 'rate(5 minutes)');
    expect(added.exitCode, added.stderr).toBe(EXIT.ok);
    expect(added.stdout).toContain(
      `job ${job.jobId} added (active): schedule rate(5 minutes) in group ${group} (created)`,
    );
    expect(await schedule(group, job.jobId)).toMatchObject({
      State: 'ENABLED',
      ScheduleExpression: 'rate(5 minutes)',
      Target: { Arn: functionArn, RoleArn: schedulerRoleArn, Input: JSON.stringify({ jobId: job.jobId }) },
    });

    const again = await jobs(group, 'add', '--file', file);
    expect(again.exitCode).toBe(EXIT.usage);
    expect(again.stderr).toContain('--replace');

    const listed = await jobs(group, 'list', '--json');
    expect(JSON.parse(listed.stdout).jobs).toContainEqual(
      expect.objectContaining({ jobId: job.jobId, status: 'active', schedule: 'rate(5 minutes)' }),
    );

    // pause: the schedule is disabled and a run already on its way copies nothing
    expect((await jobs(group, 'pause', job.jobId)).exitCode).toBe(EXIT.ok);
    expect((await schedule(group, job.jobId)).State).toBe('DISABLED');
    const skipped = await handler({ jobId: job.jobId }, lambdaContext(60_000));
    expect(skipped).toMatchObject({ jobId: job.jobId, status: 'skipped', reason: 'paused' });
    expect(await listKeys(consumer, accountB.destinationBucket, job.destination.prefix)).toEqual([]);

    // resume: enabled again, and the schedule's input runs the stored job
    expect((await jobs(group, 'resume', job.jobId)).exitCode).toBe(EXIT.ok);
    const resumed = await schedule(group, job.jobId);
    expect(resumed).toMatchObject({ State: 'ENABLED', ScheduleExpression: 'rate(5 minutes)' });
    const run = await handler(JSON.parse(resumed.Target?.Input ?? '{}'), lambdaContext(60_000));
    expect(run).toMatchObject({ jobId: job.jobId, status: 'complete', copied: 1 });
    expect(await listKeys(consumer, accountB.destinationBucket, job.destination.prefix)).toEqual([
      `${job.destination.prefix}a.txt`,
    ]);

    // remove: the schedule and the stored job are gone; a second remove knows neither
    const removed = await jobs(group, 'remove', job.jobId);
    expect(removed.stdout).toContain(`job ${job.jobId} removed with its schedule`);
    await expect(schedule(group, job.jobId)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(await store.get(job.jobId)).toBeUndefined();
    const twice = await jobs(group, 'remove', job.jobId);
    expect(twice.exitCode).toBe(EXIT.usage);
    expect(twice.stderr).toContain(`no job "${job.jobId}"`);
    await expect(handler({ jobId: job.jobId }, lambdaContext(60_000))).rejects.toThrow(/jobs add/);
  });

  it('refuses a bad job file naming the field, storing and scheduling nothing', async () => {
    const group = `jobs-${randomBytes(3).toString('hex')}`;
    const job = isolatedJob(sandbox, 'jobs-bad');
    const file = jobFile({
      jobId: job.jobId,
      source: { ...job.source, roleArn: 'S3GetListRole' },
      destination: job.destination,
    });

    const refused = await jobs(group, 'add', '--file', file);

    expect(refused.exitCode).toBe(EXIT.usage);
    expect(refused.stderr).toContain('job.source.roleArn must be an IAM role ARN');
    expect(await store.get(job.jobId)).toBeUndefined();
    await expect(schedule(group, job.jobId)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('finds the table, schedule group, scheduler role and function in a stack’s outputs with --stack; status --stack shows its stored jobs', async () => {
    const stackName = `jobs-stack-${randomBytes(3).toString('hex')}`;
    const group = `${stackName}-group`;
    // The template's own job: its schedule carries the whole job.
    const templateJob = isolatedJob(sandbox, 'jobs-template');
    await scheduler.send(
      new CreateScheduleCommand({
        Name: `${stackName}-sync`,
        ScheduleExpression: 'rate(15 minutes)',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: { Arn: functionArn, RoleArn: schedulerRoleArn, Input: JSON.stringify(templateJob) },
      }),
    );
    await syncJob(deps, templateJob);
    const outputs = {
      [STACK_OUTPUTS.schedules[0]]: `${stackName}-sync`,
      [STACK_OUTPUTS.tableName]: accountB.tableName,
      [STACK_OUTPUTS.jobScheduleGroup]: group,
      [STACK_OUTPUTS.jobSchedulerRoleArn]: schedulerRoleArn,
      [STACK_OUTPUTS.functionArn]: functionArn,
    };
    await new CloudFormationClient(admin).send(
      new CreateStackCommand({
        StackName: stackName,
        TemplateBody: JSON.stringify({
          Resources: { Placeholder: { Type: 'AWS::SQS::Queue', Properties: {} } },
          Outputs: Object.fromEntries(Object.entries(outputs).map(([key, value]) => [key, { Value: value }])),
        }),
      }),
    );
    const job = isolatedJob(sandbox, 'jobs-stack');
    const { STATE_TABLE_NAME: _table, ...env } = sandboxEnv(sandbox);

    const added = await captureCli(env, 'jobs', 'add', '--file', jobFile(job), '--stack', stackName);
    const status = await captureCli(env, 'status', '--stack', stackName, '--json');
    const removed = await captureCli(env, 'jobs', 'remove', job.jobId, '--stack', stackName);

    expect(added.exitCode, added.stderr).toBe(EXIT.ok);
    expect(added.stdout).toContain(`schedule rate(1 hour) in group ${group}`);
    // A stored job that has not run yet is known to status (no lease, ledger or run of it yet).
    expect(status.exitCode, status.stderr).toBe(EXIT.ok);
    const statusJobs = (JSON.parse(status.stdout) as { jobs: { jobId: string; lastRun?: object }[] }).jobs;
    expect(statusJobs.map((j) => j.jobId)).toEqual(expect.arrayContaining([templateJob.jobId, job.jobId]));
    expect(statusJobs.find((j) => j.jobId === job.jobId)?.lastRun).toBeUndefined();
    expect(removed.exitCode, removed.stderr).toBe(EXIT.ok);
    expect(await store.get(job.jobId)).toBeUndefined();
  });
});
