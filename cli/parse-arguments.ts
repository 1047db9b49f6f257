import { parseArgs } from 'node:util';
import { UsageError } from './exit-codes.js';

export const USAGE = `Usage: cross-account-sync <command> [options]

Commands:
  run <job.json>                     run the job now, with a progress bar and a summary
  plan <job.json>                    dry run: what a run would copy and why; writes nothing
  status <job.json>... | --job-id ID  last run, lag, failing keys and the lease of each job
  doctor <job.json>                  check each link a run needs (role, ExternalId, list, get,
                                     destination, table) and say which is broken

Options:
  --json          print one JSON document on stdout (human text goes to stderr)
  --sandbox       start the local two-account sandbox, run the command against it, stop it
  --job-id ID     (status) a job by id, without its file; repeatable
  --limit N       (plan) list at most N objects (default 1000; totals count all)
  --no-progress   (run) no progress bar, even on a terminal
  -h, --help      this text

Environment: the AWS SDK's (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_*), STATE_TABLE_NAME (the stack's
StateTableName output), EVENT_BUS_NAME (optional: run events).

Exit codes: 0 ok, 1 run finished with failed objects, 2 usage or invalid job, 3 access or preflight
failure (a doctor link broken), 4 job already running, 5 unexpected error.`;

/** One parsed command line. */
export type Command =
  | { command: 'help' }
  | { command: 'run'; jobFile: string; json: boolean; sandbox: boolean; progress: boolean }
  | { command: 'plan'; jobFile: string; json: boolean; sandbox: boolean; limit: number | undefined }
  | { command: 'status'; jobFiles: string[]; jobIds: string[]; json: boolean; sandbox: boolean }
  | { command: 'doctor'; jobFile: string; json: boolean; sandbox: boolean };

const OPTIONS = {
  json: { type: 'boolean', default: false },
  sandbox: { type: 'boolean', default: false },
  'job-id': { type: 'string', multiple: true },
  limit: { type: 'string' },
  'no-progress': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Which options each command takes, beyond --json, --sandbox and --help. */
const COMMAND_OPTIONS: Record<string, string[]> = {
  run: ['no-progress'],
  plan: ['limit'],
  status: ['job-id'],
  doctor: [],
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
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') return { command: 'help' };
  const allowed = COMMAND_OPTIONS[command];
  if (allowed === undefined) {
    throw new UsageError(`unknown command "${command}": expected run, plan, status or doctor`);
  }
  for (const name of ['job-id', 'limit', 'no-progress'] as const) {
    const given = name === 'no-progress' ? values[name] : values[name] !== undefined;
    if (given && !allowed.includes(name)) throw new UsageError(`--${name} does not apply to ${command}`);
  }
  const common = { json: values.json, sandbox: values.sandbox };

  if (command === 'status') {
    const jobIds = values['job-id'] ?? [];
    if (rest.length === 0 && jobIds.length === 0) {
      throw new UsageError('status needs a job file or --job-id ID');
    }
    return { command, jobFiles: rest, jobIds, ...common };
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
      return { command: 'doctor', jobFile, ...common };
  }
}

function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new UsageError(`--limit must be a whole number of objects, got "${value}"`);
  }
  return limit;
}
