/** The command line of `jobs` (cli/jobs-command.ts): its options, its help, its parsing. */
import { UsageError } from './exit-codes.js';
import type { JobsAction, JobsPlace } from './jobs-command.js';

/** The options only `jobs` takes. */
export const JOBS_OPTIONS = [
  'file',
  'schedule',
  'replace',
  'table',
  'schedule-group',
  'scheduler-role-arn',
  'function-arn',
] as const;

/** `help jobs`. */
export const JOBS_HELP = `Usage: cross-account-sync jobs <action> (--stack NAME | --table T [--schedule-group G ...]) [options]

Jobs stored as data in the state table, each run by its own EventBridge Scheduler schedule (named after
the job, in one schedule group) that invokes the sync function with {"jobId": "<id>"}. No deployment.

Actions:
  add --file job.json [--schedule EXPR] [--replace]
                  store the job (validated; refused if its id is stored, unless --replace, which keeps
                  its status) and create or update its schedule (default rate(1 hour))
  list            every stored job: status, schedule, source, destination
  pause <id>      mark it paused (a run on its way is skipped) and disable its schedule
  resume <id>     mark it active and enable its schedule
  remove <id>     delete its schedule and the stored job (its ledger and runs stay)

Options:
  --json          print one JSON document on stdout (human text goes to stderr)
  --sandbox       start the local two-account sandbox, run the command against it, stop it
  --stack NAME    a deployed stack of template.yaml: its StateTableName, JobScheduleGroupName,
                  JobSchedulerRoleArn and SyncFunctionArn outputs
  --table T       the state table (default STATE_TABLE_NAME)
  --schedule-group G          the schedule group (add, pause, resume, remove; add creates it)
  --scheduler-role-arn ARN    the role Scheduler invokes the function with (add)
  --function-arn ARN          the sync function (add)

Exit codes: 0 done, 2 usage, an invalid job file (naming the field), a job id already stored (add
without --replace) or not stored, 3 table or schedules refused, 5 unexpected error.`;

const JOBS_ACTIONS = ['add', 'list', 'pause', 'resume', 'remove'] as const;

/**
 * `jobs <action> ...`: the action, its operands, and where the jobs are.
 *
 * @throws UsageError naming what is wrong.
 */
export function parseJobsArguments(
  rest: string[],
  values: { [K in (typeof JOBS_OPTIONS)[number] | 'stack']?: string | boolean },
): { jobs: JobsAction; place: { stack: string } | Partial<JobsPlace> } {
  const [given, ...operands] = rest;
  const str = (name: (typeof JOBS_OPTIONS)[number]) =>
    typeof values[name] === 'string' ? (values[name] as string) : undefined;
  const flags = (['table', 'schedule-group', 'scheduler-role-arn', 'function-arn'] as const).filter(
    (name) => values[name] !== undefined,
  );
  if (typeof values.stack === 'string' && flags.length > 0) {
    throw new UsageError(`jobs takes --stack NAME or --${flags.join(', --')}, not both`);
  }
  const place =
    typeof values.stack === 'string'
      ? { stack: values.stack }
      : {
          tableName: str('table'),
          scheduleGroup: str('schedule-group'),
          schedulerRoleArn: str('scheduler-role-arn'),
          functionArn: str('function-arn'),
        };
  const action = JOBS_ACTIONS.find((name) => name === given);
  if (action === undefined) {
    throw new UsageError(
      `jobs needs an action: ${JOBS_ACTIONS.join(', ')}${given === undefined ? '' : `, got "${given}"`}`,
    );
  }
  const addOnly = (['file', 'schedule', 'replace'] as const).filter((name) => values[name]);
  if (action !== 'add' && addOnly.length > 0) {
    throw new UsageError(`--${addOnly[0]} applies to jobs add only, not jobs ${action}`);
  }
  if (action === 'add') {
    const file = str('file');
    if (file === undefined || operands.length > 0) {
      throw new UsageError('jobs add needs --file <job.json> and no other operand');
    }
    const schedule = str('schedule');
    return {
      jobs: { action, file, replace: values.replace === true, ...(schedule !== undefined && { schedule }) },
      place,
    };
  }
  if (action === 'list') {
    if (operands.length > 0) throw new UsageError('jobs list takes no operand');
    return { jobs: { action }, place };
  }
  const [jobId] = operands;
  if (jobId === undefined || operands.length > 1) {
    throw new UsageError(`jobs ${action} needs exactly one job id, got ${operands.length}`);
  }
  return { jobs: { action, jobId }, place };
}
