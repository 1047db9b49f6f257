/**
 * `jobs add | list | pause | resume | remove`: jobs as data. The job store (in the state table) is what
 * runs; each stored job's schedule (cli/job-schedules.ts) only says when. The store is written first, so a
 * paused job is skipped by the function even before its schedule is disabled.
 */
import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import { UnknownJobError } from '../functions/core/errors.js';
import type { JobStore, StoredJob } from '../functions/core/state/job-store.js';
import type { CommandResult } from './command-result.js';
import { EXIT, UsageError } from './exit-codes.js';
import { formatTable } from './format-output.js';
import {
  defaultJobSchedule,
  deleteJobSchedule,
  ensureScheduleGroup,
  putJobSchedule,
  setJobScheduleState,
} from './job-schedules.js';
import { loadJobFile } from './load-job.js';
import { STACK_OUTPUTS } from './read-stack.js';

/** One `jobs` subcommand, as parsed. */
export type JobsAction =
  | { action: 'add'; file: string; schedule?: string; replace: boolean }
  | { action: 'list' }
  | { action: 'pause' | 'resume' | 'remove'; jobId: string };

/** Where the jobs live: from `--stack`'s outputs, or given one by one. */
export interface JobsPlace {
  tableName: string;
  scheduleGroup?: string;
  schedulerRoleArn?: string;
  functionArn?: string;
}

/** The clients `jobs` works with. */
export interface JobsDependencies {
  store: JobStore;
  scheduler: SchedulerClient;
}

/**
 * Where the jobs are: `--stack`'s outputs, else the flags given, the table defaulting to STATE_TABLE_NAME.
 *
 * @throws UsageError when no table is named; what `readOutputs` throws for a missing stack.
 */
export async function resolveJobsPlace(
  given: { stack: string } | Partial<JobsPlace>,
  env: NodeJS.ProcessEnv,
  readOutputs: (stack: string) => Promise<Map<string, string>>,
): Promise<JobsPlace> {
  if ('stack' in given) {
    const outputs = await readOutputs(given.stack);
    const tableName = outputs.get(STACK_OUTPUTS.tableName);
    if (!tableName) {
      throw new UsageError(
        `stack "${given.stack}" has no ${STACK_OUTPUTS.tableName} output: is it a stack of this project's template.yaml?`,
      );
    }
    return {
      tableName,
      scheduleGroup: outputs.get(STACK_OUTPUTS.jobScheduleGroup),
      schedulerRoleArn: outputs.get(STACK_OUTPUTS.jobSchedulerRoleArn),
      functionArn: outputs.get(STACK_OUTPUTS.functionArn),
    };
  }
  const tableName = given.tableName ?? env.STATE_TABLE_NAME;
  if (!tableName) {
    throw new UsageError(
      'jobs needs --stack NAME, or --table T (or STATE_TABLE_NAME): where the jobs are stored',
    );
  }
  return { ...given, tableName };
}

/** Runs one `jobs` subcommand. */
export async function jobsCommand(
  deps: JobsDependencies,
  place: JobsPlace,
  command: JobsAction,
): Promise<CommandResult> {
  switch (command.action) {
    case 'add':
      return addJob(deps, place, command);
    case 'list':
      return listJobs(deps);
    case 'remove':
      return removeJob(deps, place, command.jobId);
    default:
      return setStatus(deps, place, command.jobId, command.action === 'pause' ? 'paused' : 'active');
  }
}

async function addJob(
  deps: JobsDependencies,
  place: JobsPlace,
  command: Extract<JobsAction, { action: 'add' }>,
): Promise<CommandResult> {
  const { input, job } = await loadJobFile(command.file);
  const target = {
    groupName: need(place.scheduleGroup, 'add', '--schedule-group', 'JobScheduleGroupName'),
    roleArn: need(place.schedulerRoleArn, 'add', '--scheduler-role-arn', 'JobSchedulerRoleArn'),
    functionArn: need(place.functionArn, 'add', '--function-arn', 'SyncFunctionArn'),
  };
  const previous = command.replace ? await deps.store.get(job.jobId) : undefined;
  const expression = command.schedule ?? previous?.schedule ?? defaultJobSchedule(job);
  const stored = await deps.store.add(input, { replace: command.replace, schedule: expression });
  const groupCreated = await ensureScheduleGroup(deps.scheduler, target.groupName);
  // Create or update: the store's condition already refused a duplicate id, so a schedule found here
  // belongs to this id (a `jobs remove` cut short left it, or this is --replace).
  await putJobSchedule(deps.scheduler, target, job.jobId, {
    expression,
    state: stored.status === 'paused' ? 'DISABLED' : 'ENABLED',
  });
  const verb = previous ? 'replaced' : 'added';
  const text =
    `job ${job.jobId} ${verb} (${stored.status}): schedule ${expression} in group ${target.groupName}` +
    `${groupCreated ? ' (created)' : ''}, invoking ${target.functionArn} with {"jobId":"${job.jobId}"}`;
  return {
    exitCode: EXIT.ok,
    json: { [verb]: describeJob(stored), scheduleGroup: target.groupName, groupCreated },
    text,
  };
}

async function listJobs(deps: JobsDependencies): Promise<CommandResult> {
  const jobs: StoredJob[] = [];
  for await (const stored of deps.store.all()) jobs.push(stored);
  const rows = jobs.map((stored) => {
    const d = describeJob(stored);
    return [d.jobId, d.status, d.schedule ?? '-', d.source, d.destination, d.updatedAt];
  });
  const text =
    jobs.length === 0
      ? `no jobs stored in ${deps.store.tableName} (add one: jobs add --file <job.json>)`
      : formatTable([['job', 'status', 'schedule', 'source', 'destination', 'updated'], ...rows]);
  return { exitCode: EXIT.ok, json: { jobs: jobs.map(describeJob) }, text };
}

async function setStatus(
  deps: JobsDependencies,
  place: JobsPlace,
  jobId: string,
  status: 'active' | 'paused',
): Promise<CommandResult> {
  const verb = status === 'paused' ? 'pause' : 'resume';
  const group = need(place.scheduleGroup, verb, '--schedule-group', 'JobScheduleGroupName');
  const stored = await deps.store.setStatus(jobId, status);
  const scheduled = await setJobScheduleState(
    deps.scheduler,
    group,
    jobId,
    status === 'paused' ? 'DISABLED' : 'ENABLED',
  );
  const noSchedule = scheduled
    ? ''
    : ` (it has no schedule in group ${group}: \`jobs add --replace --file <job.json>\` gives it one)`;
  const text =
    status === 'paused'
      ? `job ${jobId} paused: its schedule is disabled and a run already on its way is skipped${noSchedule}`
      : `job ${jobId} resumed: its schedule runs it again${noSchedule}`;
  return { exitCode: EXIT.ok, json: { job: describeJob(stored), scheduleFound: scheduled }, text };
}

async function removeJob(deps: JobsDependencies, place: JobsPlace, jobId: string): Promise<CommandResult> {
  const group = need(place.scheduleGroup, 'remove', '--schedule-group', 'JobScheduleGroupName');
  // The schedule first: once it is gone nothing invokes the function for a job that no longer exists.
  const scheduleRemoved = await deleteJobSchedule(deps.scheduler, group, jobId);
  const jobRemoved = await deps.store.remove(jobId);
  if (!scheduleRemoved && !jobRemoved) {
    throw new UnknownJobError(
      `no job "${jobId}" in the job store of ${deps.store.tableName} and no schedule of it in group ${group}`,
    );
  }
  const text =
    `job ${jobId} removed${scheduleRemoved ? ' with its schedule' : ' (it had no schedule)'}; ` +
    'its ledger and run records stay in the table (a job added again under this id resumes from them)';
  return { exitCode: EXIT.ok, json: { removed: jobId, scheduleRemoved, jobRemoved }, text };
}

/** A stored job as `list` and --json show it. */
function describeJob(stored: StoredJob) {
  const { job } = stored;
  return {
    jobId: job.jobId,
    status: stored.status,
    schedule: stored.schedule,
    source: `s3://${job.source.bucket}/${job.source.prefix}`,
    sourceRoleArn: job.source.roleArn,
    destination: `s3://${job.destination.bucket}/${job.destination.prefix}`,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
  };
}

function need(value: string | undefined, action: string, flag: string, output: string): string {
  if (value) return value;
  throw new UsageError(`jobs ${action} needs ${flag} (or --stack NAME, whose ${output} output gives it)`);
}
