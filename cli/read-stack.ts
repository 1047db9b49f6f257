import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetScheduleCommand, type SchedulerClient } from '@aws-sdk/client-scheduler';
import { awsErrorCode, JobValidationError, SyncError } from '../functions/core/errors.js';
import { type Job, parseJob } from '../functions/core/job.js';
import { UsageError } from './exit-codes.js';

/** The outputs of template.yaml that `--stack` reads (template.test.ts checks the template has them). */
export const STACK_OUTPUTS = {
  tableName: 'StateTableName',
  functionName: 'SyncFunctionName',
  functionRoleArn: 'SyncFunctionRoleArn',
  /** Each names an EventBridge Scheduler schedule (group default) whose target input is a job. */
  schedules: ['SyncScheduleName', 'ExtraJobScheduleName'],
  /** What `jobs` needs to schedule stored jobs (cli/jobs-command.ts). */
  functionArn: 'SyncFunctionArn',
  jobScheduleGroup: 'JobScheduleGroupName',
  jobSchedulerRoleArn: 'JobSchedulerRoleArn',
  /** What `doctor` follows a job's event path with (options.events). */
  s3EventBusArn: 'S3EventBusArn',
  copyQueueUrl: 'CopyQueueUrl',
} as const;

/** What a deployed stack says about itself: where its state is, its function, and its jobs. */
export interface DeployedStack {
  stackName: string;
  tableName: string;
  functionName?: string;
  functionRoleArn?: string;
  /** AccountB's S3-event bus and the copy queue, when the stack has them. */
  s3EventBusArn?: string;
  copyQueueUrl?: string;
  /** Each schedule's job, in the order of {@link STACK_OUTPUTS}.schedules. */
  jobs: { schedule: string; job: Job }[];
}

/** The clients `--stack` reads with: the caller's own identity in the stack's account and region. */
export interface StackReaderDependencies {
  cloudformation: CloudFormationClient;
  scheduler: SchedulerClient;
  region?: string;
}

/**
 * Reads a stack of template.yaml: its outputs (DescribeStacks), then the input of each job schedule
 * (GetSchedule), which is the job the function runs. So `status` and `doctor` need no job file.
 *
 * @throws UsageError for a stack that does not exist here or lacks template.yaml's outputs;
 *   JobValidationError for a schedule whose input is not a valid job.
 */
export async function readDeployedStack(
  deps: StackReaderDependencies,
  stackName: string,
): Promise<DeployedStack> {
  const outputs = await readStackOutputs(deps, stackName);
  const tableName = outputs.get(STACK_OUTPUTS.tableName);
  const scheduleNames = STACK_OUTPUTS.schedules.flatMap((key) => outputs.get(key) ?? []);
  if (!tableName || scheduleNames.length === 0) {
    throw new UsageError(
      `stack "${stackName}" has no ${tableName ? STACK_OUTPUTS.schedules[0] : STACK_OUTPUTS.tableName} ` +
        "output: is it a stack of this project's template.yaml?",
    );
  }
  const jobs = await Promise.all(
    scheduleNames.map(async (schedule) => ({ schedule, job: await scheduledJob(deps, schedule) })),
  );
  return {
    stackName,
    tableName,
    functionName: outputs.get(STACK_OUTPUTS.functionName),
    functionRoleArn: outputs.get(STACK_OUTPUTS.functionRoleArn),
    s3EventBusArn: outputs.get(STACK_OUTPUTS.s3EventBusArn),
    copyQueueUrl: outputs.get(STACK_OUTPUTS.copyQueueUrl),
    jobs,
  };
}

/**
 * A stack's outputs by key.
 *
 * @throws UsageError for a stack that does not exist in the region.
 */
export async function readStackOutputs(
  deps: StackReaderDependencies,
  stackName: string,
): Promise<Map<string, string>> {
  try {
    const { Stacks: stacks } = await deps.cloudformation.send(
      new DescribeStacksCommand({ StackName: stackName }),
    );
    const outputs = stacks?.[0]?.Outputs ?? [];
    return new Map(
      outputs.flatMap((o) => (o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [])),
    );
  } catch (error) {
    // CloudFormation answers a missing stack with a ValidationError "Stack with id X does not exist".
    if (awsErrorCode(error).name === 'ValidationError' && /does not exist/.test((error as Error).message)) {
      throw new UsageError(
        `no stack "${stackName}" in ${deps.region ?? 'this region'}: check --stack, and AWS_REGION ` +
          "(the stack's region)",
        { cause: error },
      );
    }
    throw error;
  }
}

async function scheduledJob(deps: StackReaderDependencies, name: string): Promise<Job> {
  const schedule = await deps.scheduler.send(new GetScheduleCommand({ Name: name }));
  const input = schedule.Target?.Input;
  if (!input) throw new SyncError(`schedule ${name} has no target input: it does not run a job`);
  try {
    return parseJob(JSON.parse(input));
  } catch (error) {
    const problems = error instanceof JobValidationError ? error.problems : undefined;
    throw new JobValidationError(`schedule ${name}'s input: ${(error as Error).message}`, {
      cause: error,
      problems,
    });
  }
}
