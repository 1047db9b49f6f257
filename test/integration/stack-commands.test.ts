import { randomBytes } from 'node:crypto';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/exit-codes.js';
import { STACK_OUTPUTS } from '../../cli/read-stack.js';
import type { DoctorReport } from '../../functions/core/diagnose/diagnose-job.js';
import type { Job } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxEnv } from '../../sandbox/sandbox.js';
import { captureCli } from '../support/capture-cli.js';
import { isolatedJob, lambdaContext, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer } = useSandbox();
const { accountA, accountB } = sandbox;
// The handler builds its clients at import, from the environment useSandbox points at the sandbox.
const { handler } = await import('../../functions/sync.js');
const adminClient = {
  region: sandbox.region,
  endpoint: sandbox.motoEndpoint,
  credentials: { ...accountB.admin },
};
const functionRoleArn = `arn:aws:iam::${accountB.id}:role/stack-SyncFunctionRole-ABC123`;

/**
 * What `sam deploy` of template.yaml leaves that `--stack` reads, built on moto (which cannot run the SAM
 * transform): a schedule per job whose target input is the job, and a stack with the template's outputs.
 */
async function deployedStack(jobs: Job[]): Promise<string> {
  const stackName = `sync-stack-${randomBytes(3).toString('hex')}`;
  const scheduler = new SchedulerClient(adminClient);
  const schedules = jobs.map((job) => `${stackName}-${job.jobId}`);
  await Promise.all(
    jobs.map((job, i) =>
      scheduler.send(
        new CreateScheduleCommand({
          Name: schedules[i],
          ScheduleExpression: 'rate(15 minutes)',
          FlexibleTimeWindow: { Mode: 'OFF' },
          Target: {
            Arn: `arn:aws:lambda:${sandbox.region}:${accountB.id}:function:${stackName}-SyncFunction`,
            RoleArn: `arn:aws:iam::${accountB.id}:role/${stackName}-SyncFunctionSyncRole`,
            Input: JSON.stringify(job),
          },
        }),
      ),
    ),
  );
  const outputs = {
    [STACK_OUTPUTS.tableName]: accountB.tableName,
    [STACK_OUTPUTS.functionName]: `${stackName}-SyncFunction`,
    [STACK_OUTPUTS.functionRoleArn]: functionRoleArn,
    ...Object.fromEntries(schedules.map((name, i) => [STACK_OUTPUTS.schedules[i], name])),
  };
  await new CloudFormationClient(adminClient).send(
    new CreateStackCommand({
      StackName: stackName,
      TemplateBody: JSON.stringify({
        Resources: { Placeholder: { Type: 'AWS::SQS::Queue', Properties: {} } },
        Outputs: Object.fromEntries(Object.entries(outputs).map(([key, value]) => [key, { Value: value }])),
      }),
    }),
  );
  return stackName;
}

/** Runs the CLI in this process as AccountB's syncer, without STATE_TABLE_NAME: the stack names the table. */
function cli(...argv: string[]) {
  const { STATE_TABLE_NAME: _table, ...env } = sandboxEnv(sandbox);
  return captureCli(env, ...argv);
}

const lambda = mockClient(LambdaClient);
afterEach(() => lambda.reset());

describe('status and doctor --stack, reading a deployed stack over moto', () => {
  it('status --stack shows every scheduled job from the stack’s table, with no job file', async () => {
    const [first, second] = [isolatedJob(sandbox, 'stack-status-a'), isolatedJob(sandbox, 'stack-status-b')];
    await putObject(producer, accountA.bucket, `${first.source.prefix}a.txt`, 'a');
    await syncJob(deps, first);
    await syncJob(deps, second);
    const stackName = await deployedStack([first, second]);

    const { exitCode, stdout } = await cli('status', '--stack', stackName, '--json');

    expect(exitCode).toBe(EXIT.ok);
    const { jobs } = JSON.parse(stdout) as {
      jobs: { jobId: string; lastRun?: { copied: number }; backlog?: { objects: number } }[];
    };
    expect(jobs.map((job) => [job.jobId, job.lastRun?.copied, job.backlog?.objects])).toEqual([
      [first.jobId, 1, 0],
      [second.jobId, 0, 0],
    ]);
  });

  it('a stack that does not exist exits 2 naming the stack and the region', async () => {
    const { exitCode, stderr } = await cli('status', '--stack', 'no-such-stack');

    expect(exitCode).toBe(EXIT.usage);
    expect(stderr).toContain(`no stack "no-such-stack" in ${sandbox.region}`);
  });

  it('doctor --stack checks each job as the caller, naming the account-wide trust, and as the function', async () => {
    // Prepare: Lambda Invoke (moto cannot run a function without Docker) hands the event to the real
    // handler in this process, acting as the sandbox's syncer.
    const job = isolatedJob(sandbox, 'stack-doctor');
    await putObject(producer, accountA.bucket, `${job.source.prefix}probe.txt`, 'probe me');
    const stackName = await deployedStack([job]);
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      const event = JSON.parse(Buffer.from(input.Payload).toString('utf8'));
      const report = await handler(event, lambdaContext(60_000));
      return { StatusCode: 200, Payload: Buffer.from(JSON.stringify(report)) };
    });

    // Act
    const json = await cli('doctor', '--stack', stackName, '--json');
    const human = await cli('doctor', '--stack', stackName);

    // Assess
    expect(lambda).toHaveReceivedCommandWith(InvokeCommand, {
      FunctionName: `${stackName}-SyncFunction`,
      InvocationType: 'RequestResponse',
    });
    const sent = JSON.parse(
      Buffer.from(lambda.commandCalls(InvokeCommand)[0]?.args[0].input.Payload as Uint8Array).toString(),
    );
    expect(sent).toEqual({ doctor: job });
    expect(json.exitCode).toBe(EXIT.ok);
    const result = JSON.parse(json.stdout) as {
      stack: string;
      ok: boolean;
      jobs: { jobId: string; caller: DoctorReport; function: { report: DoctorReport } }[];
    };
    expect(result).toMatchObject({ stack: stackName, ok: true, jobs: [{ jobId: job.jobId }] });
    const [verdict] = result.jobs;
    expect(verdict?.caller.checks.find((c) => c.link === 'consumerTrust')).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining(`ConsumerPrincipalArns=${functionRoleArn}`),
    });
    expect(verdict?.caller.checks.find((c) => c.link === 'stateTable')?.detail).toContain(accountB.tableName);
    expect(verdict?.function.report).toMatchObject({ jobId: job.jobId, ok: true });
    expect(verdict?.function.report.checks.find((c) => c.link === 'consumerTrust')?.status).toBe('ok');
    expect(human.stdout).toContain(`doctor: stack ${stackName}, job ${job.jobId}`);
    expect(human.stdout).toMatch(/-- as function .*-SyncFunction's role/);
  });

  it('doctor --stack reports a function that cannot be invoked, and exits 3', async () => {
    const job = isolatedJob(sandbox, 'stack-doctor-no-function');
    const stackName = await deployedStack([job]);
    lambda.on(InvokeCommand).rejects(
      Object.assign(new Error('Function not found'), {
        name: 'ResourceNotFoundException',
        $metadata: { httpStatusCode: 404 },
      }),
    );

    const { exitCode, stdout } = await cli('doctor', '--stack', stackName);

    expect(exitCode).toBe(EXIT.access);
    expect(stdout).toMatch(/✘ could not ask the function: .*Function not found/);
  });
});
