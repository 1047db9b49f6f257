import { parseArgs } from 'node:util';
import { UsageError } from './exit-codes.js';
import type { JobsAction, JobsPlace } from './jobs-command.js';
import { JOBS_HELP, JOBS_OPTIONS, parseJobsArguments } from './parse-jobs-arguments.js';

export const USAGE = `Usage: cross-account-sync <command> [options]

Commands:
  run <job.json>                     run the job now, with a progress bar and a summary
  plan <job.json>                    dry run: what a run would copy and why; writes nothing
  status <job.json>... | --job-id ID | --stack NAME
                                     last run, lag, backlog, failing keys and the lease of each job
  doctor <job.json> | --stack NAME   check each link a run needs (role, ExternalId, list, get,
                                     destination, table) and say which is broken; with --stack, also
                                     as the deployed function's own role
  unlock <job.json> | --job-id ID    end the lease a run that died left behind (--force: even if
                                     its holder still renews it)
  jobs add|list|pause|resume|remove  jobs stored as data, each with its own schedule (help jobs)

Options:
  --json          print one JSON document on stdout (human text goes to stderr)
  --sandbox       start the local two-account sandbox, run the command against it, stop it
  --job-id ID     (status, unlock) a job by id, without its file; repeatable for status
  --stack NAME    (status, doctor) the jobs and state table of a deployed stack of template.yaml,
                  read from its outputs and schedules: no job file, no STATE_TABLE_NAME
  --force         (unlock) end the lease even though its holder still renews it
  --limit N       (plan) list at most N objects (default 1000; totals count all)
  --no-progress   (run) no progress bar, even on a terminal
  -h, --help      this text; \`help <command>\` or \`<command> --help\` for one command
  --version       the version of cross-account-sync

Environment: the AWS SDK's (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_*), STATE_TABLE_NAME (the stack's
StateTableName output), EVENT_BUS_NAME (optional: run events).

Exit codes: 0 ok, 1 run finished with failed objects, 2 usage, invalid job, no AWS region or unknown
job id, 3 access or preflight failure (a doctor link broken), 4 job already running (unlock: its holder
is alive), 5 unexpected error, 130 run stopped by Ctrl-C.`;

const COMMON_OPTIONS = `  --json          print one JSON document on stdout (human text goes to stderr)
  --sandbox       start the local two-account sandbox, run the command against it, stop it`;

/** \`help <command>\`: what one command does, its options and what it exits with. */
export const COMMAND_HELP: Record<CommandName, string> = {
  run: `Usage: cross-account-sync run <job.json> [options]

One sync of the job now, as the schedule would run it: the same lease, checks, listing and copies. A
progress line on stderr (redrawn in place on a terminal, a plain line every 5 s otherwise), then the
run's summary on stdout.

Options:
${COMMON_OPTIONS}
  --no-progress   no progress line

Ctrl-C: no new copy starts; copies in flight are aborted and recorded as failed; the checkpoint is
saved and the summary printed (status partial), exit 130. The next run resumes from the checkpoint and
copies the aborted objects again. A second Ctrl-C quits at once; the next run still resumes.

Exit codes: 0 every object copied, 1 some objects failed (the next run retries them), 2 usage or invalid
job, 3 access refused (try doctor), 4 job already running, 5 unexpected error, 130 stopped by Ctrl-C.`,
  plan: `Usage: cross-account-sync plan <job.json> [options]

Dry run: the same credentials, checks, listing and plan as a run, and what it would copy and why (new,
changed, retry), plus archived objects and keys deleted at the source. No lease, no writes.

Options:
${COMMON_OPTIONS}
  --limit N       list at most N objects (default 1000; totals count all)

Exit codes: 0 plan shown, 2 usage or invalid job, 3 access refused, 5 unexpected error.`,
  status: `Usage: cross-account-sync status <job.json>... | --job-id ID... | --stack NAME [options]

Per job: the last run, its replication lag (since it first saw its oldest uncopied key), its backlog
(objects and bytes left uncopied), the keys whose last copy failed, and whether the lease is held.
Reads only.

Options:
${COMMON_OPTIONS}
  --job-id ID     a job by id, without its file; repeatable
  --stack NAME    every job a deployed stack schedules, in its state table (its StateTableName output
                  and its schedules' input: cloudformation:DescribeStacks, scheduler:GetSchedule)

A job id the table has nothing of (no lease, checkpoint, run record or ledger item) is an error that
lists the job ids the table knows. A held lease whose holder stopped renewing it is flagged: \`unlock\`.

Exit codes: 0 status shown, 2 usage (STATE_TABLE_NAME or region unset, unknown job id), 3 table refused,
5 unexpected error.`,
  doctor: `Usage: cross-account-sync doctor <job.json> | --stack NAME [options]

Checks each link a run needs, in order, with ✔/✘ and the fix: the caller may assume the source role,
the ExternalId, whether the role trusts more than the sync function, list and get at the source, a
probe write at the destination (a multipart upload started and aborted), the state table.

With --stack, for every job the stack schedules: the same checks as this shell's identity (knowing the
function's role, so an account-wide trust is named), then as the function's own role, by invoking the
function with {"doctor": <job>} (lambda:InvokeFunction; the function copies nothing).

Options:
${COMMON_OPTIONS}
  --stack NAME    a deployed stack of template.yaml instead of a job file
  --s3-event-bus BUS     (jobs with options.events) AccountB's S3-event bus, name or ARN; default:
                         the stack's S3EventBusArn output. Without it the event path is not checked
  --copy-queue-url URL   the copy queue the bus feeds (default: the stack's CopyQueueUrl output), for
                         the probe object's event
  --source-profile P     an AWS profile with AccountA's credentials: checks A's bucket events and
                         forwarding rule, and writes (then deletes) a probe object under the job's prefix

Exit codes: 0 every link holds (warnings allowed), 2 usage or invalid job, 3 a link is broken.`,
  unlock: `Usage: cross-account-sync unlock <job.json> | --job-id ID [--force] [options]

Ends the job's lease when the run holding it died, so the next run need not wait for it to expire.
Refused while the holder still renews it (it renewed within the last two heartbeats) unless --force.
The lease is ended only if it is still as read (same holder, fence and expiry).

Options:
${COMMON_OPTIONS}
  --job-id ID     the job by id, without its file
  --force         end it even though its holder renews it (its writes are fenced off once another
                  run takes the job)

Exit codes: 0 ended (or nothing to end), 2 usage or unknown job id, 4 the holder is alive, 5 unexpected
error.`,
  jobs: JOBS_HELP,
};

type CommandName = 'run' | 'plan' | 'status' | 'doctor' | 'unlock' | 'jobs';

/** `doctor`'s event-path flags (each overrides the stack output of the same thing). */
export interface EventPathFlags {
  /** AccountB's S3-event bus, name or ARN (the stack's S3EventBusArn output). */
  bus?: string;
  /** The copy queue the bus's rule feeds (the stack's CopyQueueUrl output). */
  queueUrl?: string;
  /** An AWS profile with AccountA's credentials, to check A's links and send the probe. */
  sourceProfile?: string;
}

/** One parsed command line. */
export type Command =
  | { command: 'help'; topic?: CommandName }
  | { command: 'version' }
  | { command: 'run'; jobFile: string; json: boolean; sandbox: boolean; progress: boolean }
  | { command: 'plan'; jobFile: string; json: boolean; sandbox: boolean; limit: number | undefined }
  | {
      command: 'status';
      jobFiles: string[];
      jobIds: string[];
      stack?: string;
      json: boolean;
      sandbox: boolean;
    }
  | { command: 'doctor'; jobFile: string; json: boolean; sandbox: boolean; eventPath?: EventPathFlags }
  | { command: 'doctor'; stack: string; json: boolean; sandbox: boolean; eventPath?: EventPathFlags }
  | {
      command: 'unlock';
      job: { file: string } | { id: string };
      force: boolean;
      json: boolean;
      sandbox: boolean;
    }
  | {
      command: 'jobs';
      jobs: JobsAction;
      /** `--stack`, or the place given flag by flag (the table defaulting to STATE_TABLE_NAME). */
      place: { stack: string } | Partial<JobsPlace>;
      json: boolean;
      sandbox: boolean;
    };

const OPTIONS = {
  json: { type: 'boolean', default: false },
  sandbox: { type: 'boolean', default: false },
  'job-id': { type: 'string', multiple: true },
  stack: { type: 'string' },
  limit: { type: 'string' },
  'no-progress': { type: 'boolean', default: false },
  force: { type: 'boolean', default: false },
  file: { type: 'string' },
  schedule: { type: 'string' },
  replace: { type: 'boolean', default: false },
  table: { type: 'string' },
  'schedule-group': { type: 'string' },
  'scheduler-role-arn': { type: 'string' },
  'function-arn': { type: 'string' },
  's3-event-bus': { type: 'string' },
  'copy-queue-url': { type: 'string' },
  'source-profile': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
} as const;

/** Which options each command takes, beyond --json, --sandbox and --help. */
const COMMAND_OPTIONS: Record<CommandName, string[]> = {
  run: ['no-progress'],
  plan: ['limit'],
  status: ['job-id', 'stack'],
  doctor: ['stack', 's3-event-bus', 'copy-queue-url', 'source-profile'],
  unlock: ['job-id', 'force'],
  jobs: ['stack', ...JOBS_OPTIONS],
};

/**
 * Parses `argv` (without node and the script) into a {@link Command}.
 *
 * @throws UsageError naming what is wrong, e.g. an unknown command or a missing job file.
 */
export function parseArguments(argv: string[]): Command {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  const { values, positionals } = parsed;
  const [first, ...rest] = positionals;
  if (values.version) return { command: 'version' };
  if (first === undefined) return { command: 'help' };
  if (first === 'help') {
    const [topic] = rest;
    return topic === undefined ? { command: 'help' } : { command: 'help', topic: commandName(topic) };
  }
  const command = commandName(first);
  if (values.help) return { command: 'help', topic: command };
  const allowed = COMMAND_OPTIONS[command];
  const checked = [
    'job-id',
    'limit',
    'no-progress',
    'force',
    'stack',
    ...EVENT_PATH_OPTIONS,
    ...JOBS_OPTIONS,
  ];
  for (const name of checked) {
    const value = values[name as keyof typeof values];
    const given = typeof value === 'boolean' ? value : value !== undefined;
    if (given && !allowed.includes(name)) throw new UsageError(`--${name} does not apply to ${command}`);
  }
  const common = { json: values.json, sandbox: values.sandbox };
  const eventPath = eventPathFlags(values);

  if (command === 'status') {
    const jobIds = values['job-id'] ?? [];
    if (rest.length === 0 && jobIds.length === 0 && values.stack === undefined) {
      throw new UsageError('status needs a job file, --job-id ID or --stack NAME');
    }
    return {
      command,
      jobFiles: rest,
      jobIds,
      ...(values.stack !== undefined && { stack: values.stack }),
      ...common,
    };
  }
  if (command === 'doctor' && values.stack !== undefined) {
    if (rest.length > 0) throw new UsageError('doctor takes a job file or --stack NAME, not both');
    return { command, stack: values.stack, ...common, ...(eventPath && { eventPath }) };
  }
  if (command === 'jobs') return { command, ...parseJobsArguments(rest, values), ...common };
  if (command === 'unlock') {
    const jobIds = values['job-id'] ?? [];
    const [file] = rest;
    const [id] = jobIds;
    const job = file !== undefined ? { file } : id !== undefined ? { id } : undefined;
    if (job === undefined || rest.length + jobIds.length !== 1) {
      throw new UsageError('unlock needs exactly one job: a job file or --job-id ID');
    }
    return { command, job, force: values.force, ...common };
  }
  if (rest.length !== 1) {
    throw new UsageError(`${command} needs exactly one job file, got ${rest.length}`);
  }
  const jobFile = rest[0] as string;
  switch (command) {
    case 'run':
      return { command, jobFile, progress: !values['no-progress'], ...common };
    case 'plan':
      return { command, jobFile, limit: parseLimit(values.limit), ...common };
    default:
      return { command: 'doctor', jobFile, ...common, ...(eventPath && { eventPath }) };
  }
}

const EVENT_PATH_OPTIONS = ['s3-event-bus', 'copy-queue-url', 'source-profile'] as const;

/** The event-path flags given, or undefined when none is (the doctor output stays as before). */
function eventPathFlags(
  values: {
    [K in (typeof EVENT_PATH_OPTIONS)[number]]?: string;
  },
): EventPathFlags | undefined {
  for (const name of EVENT_PATH_OPTIONS) {
    if (values[name] === '') throw new UsageError(`--${name} needs a value, got an empty string`);
  }
  const flags: EventPathFlags = {
    ...(values['s3-event-bus'] !== undefined && { bus: values['s3-event-bus'] }),
    ...(values['copy-queue-url'] !== undefined && { queueUrl: values['copy-queue-url'] }),
    ...(values['source-profile'] !== undefined && { sourceProfile: values['source-profile'] }),
  };
  return Object.keys(flags).length > 0 ? flags : undefined;
}

function commandName(name: string): CommandName {
  if (Object.hasOwn(COMMAND_OPTIONS, name)) return name as CommandName;
  throw new UsageError(`unknown command "${name}": expected run, plan, status, doctor, unlock or jobs`);
}

function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new UsageError(`--limit must be a whole number of objects, got "${value}"`);
  }
  return limit;
}
