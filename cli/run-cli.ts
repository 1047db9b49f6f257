import { readFileSync } from 'node:fs';
import { describeError, JobValidationError, SyncError } from '../functions/core/errors.js';
import type { SyncLogger } from '../functions/core/run/sync-job.js';
import { consoleLogger } from '../scripts/lib/console-logger.js';
import {
  buildDoctorDependencies,
  buildEventPathDependencies,
  buildJobsDependencies,
  buildStackDoctorDependencies,
  buildStackReaderDependencies,
  buildStatusDependencies,
  buildSyncDependencies,
  isRegionMissing,
  REGION_FIX,
  requireRegion,
} from './build-clients.js';
import type { CliIo, CommandResult } from './command-result.js';
import { diagnoseJobCommand } from './diagnose-job-command.js';
import { diagnoseStackCommand } from './diagnose-stack-command.js';
import { ProgressDisplay } from './draw-progress.js';
import { EXIT, type ExitCode, exitCodeFor } from './exit-codes.js';
import { jobsCommand, resolveJobsPlace } from './jobs-command.js';
import { loadJob } from './load-job.js';
import { COMMAND_HELP, type Command, parseArguments, USAGE } from './parse-arguments.js';
import { planJobCommand } from './plan-job-command.js';
import { readDeployedStack, readStackOutputs } from './read-stack.js';
import { runJobCommand } from './run-job-command.js';
import { showStatusCommand } from './show-status-command.js';
import { unlockJobCommand } from './unlock-job-command.js';

/**
 * Runs one command line and returns its exit code. With --json, stdout gets exactly one JSON document,
 * also on failure (`{"error": {...}}`); everything meant for a person goes to stderr.
 */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  const json = argv.includes('--json');
  try {
    const command = parseArguments(argv);
    if (command.command === 'help') {
      io.stdout(command.topic === undefined ? USAGE : COMMAND_HELP[command.topic]);
      return EXIT.ok;
    }
    if (command.command === 'version') {
      io.stdout(packageVersion());
      return EXIT.ok;
    }
    const result = await withOptionalSandbox(command, io, () => dispatch(command, io));
    io.stdout(command.json ? JSON.stringify(result.json, null, 2) : result.text);
    return result.exitCode;
  } catch (error) {
    const exitCode = exitCodeFor(error);
    const message = isRegionMissing(error)
      ? REGION_FIX
      : error instanceof SyncError
        ? error.message
        : describeError(error);
    const problems = error instanceof JobValidationError ? error.problems : undefined;
    if (json) {
      io.stdout(
        JSON.stringify(
          {
            error: {
              name: (error as Error)?.name ?? 'Error',
              message: isRegionMissing(error) ? REGION_FIX : describeError(error),
              problems,
              exitCode,
            },
          },
          null,
          2,
        ),
      );
    } else {
      io.stderr(`error: ${message}`);
      if (exitCode === EXIT.usage && !(error instanceof JobValidationError)) io.stderr('(--help for usage)');
      if (exitCode === EXIT.access)
        io.stderr('(`cross-account-sync doctor <job.json>` says which link is broken)');
    }
    return exitCode;
  }
}

async function dispatch(
  command: Exclude<Command, { command: 'help' | 'version' }>,
  io: CliIo,
): Promise<CommandResult> {
  switch (command.command) {
    case 'run': {
      const job = await loadJob(command.jobFile);
      const progress = command.progress
        ? new ProgressDisplay(io.stderrRaw, { tty: io.interactive, columns: io.columns })
        : undefined;
      const logger = clearingLogger(consoleLogger('warn'), progress, io.signal);
      await requireRegion(io.env);
      return runJobCommand(buildSyncDependencies(io.env, logger), job, io, progress);
    }
    case 'plan': {
      const job = await loadJob(command.jobFile);
      await requireRegion(io.env);
      return planJobCommand(buildSyncDependencies(io.env, consoleLogger('warn')), job, command.limit);
    }
    case 'status': {
      const jobs = await Promise.all(command.jobFiles.map(loadJob));
      let env = io.env;
      if (command.stack !== undefined) {
        await requireRegion(io.env);
        const stack = await readDeployedStack(buildStackReaderDependencies(io.env), command.stack);
        jobs.push(...stack.jobs.map(({ job }) => job));
        // The jobs stored as data (`jobs add`) are the stack's jobs too.
        for await (const stored of buildJobsDependencies(stack.tableName).store.all()) jobs.push(stored.job);
        env = { ...io.env, STATE_TABLE_NAME: stack.tableName };
      }
      const jobIds = [...new Set([...jobs.map((job) => job.jobId), ...command.jobIds])];
      const deps = buildStatusDependencies(env);
      await requireRegion(env);
      return showStatusCommand(deps, jobIds);
    }
    case 'unlock': {
      const jobId = 'id' in command.job ? command.job.id : (await loadJob(command.job.file)).jobId;
      const deps = buildStatusDependencies(io.env);
      await requireRegion(io.env);
      return unlockJobCommand(deps, jobId, command.force);
    }
    case 'doctor': {
      if ('stack' in command) {
        await requireRegion(io.env);
        const stack = await readDeployedStack(buildStackReaderDependencies(io.env), command.stack);
        const deps = buildStackDoctorDependencies(io.env);
        const eventPath = buildEventPathDependencies(io.env, command.eventPath, {
          bus: stack.s3EventBusArn,
          queueUrl: stack.copyQueueUrl,
        });
        return diagnoseStackCommand({ ...deps, doctor: { ...deps.doctor, eventPath } }, stack);
      }
      const job = await loadJob(command.jobFile);
      await requireRegion(io.env);
      const eventPath = buildEventPathDependencies(io.env, command.eventPath);
      return diagnoseJobCommand({ ...buildDoctorDependencies(io.env), eventPath }, job);
    }
    case 'jobs': {
      await requireRegion(io.env);
      const place = await resolveJobsPlace(command.place, io.env, (stack) =>
        readStackOutputs(buildStackReaderDependencies(io.env), stack),
      );
      return jobsCommand(buildJobsDependencies(place.tableName), place, command.jobs);
    }
  }
}

/** The version in package.json, read where this file is, not from the working directory. */
function packageVersion(): string {
  const path = new URL('../package.json', import.meta.url);
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}

/**
 * Log lines would land in the middle of the progress line; wipe it first. After Ctrl-C, the copies it
 * aborted are not logged one by one: the summary lists them as failed and says why.
 */
function clearingLogger(
  logger: SyncLogger,
  progress: ProgressDisplay | undefined,
  signal: AbortSignal | undefined,
): SyncLogger {
  const wrap =
    (write: SyncLogger['info']) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      if (signal?.aborted && message === 'object not copied') return;
      progress?.clear();
      write(message, ...extra);
    };
  return {
    debug: wrap(logger.debug),
    info: wrap(logger.info),
    warn: wrap(logger.warn),
    error: wrap(logger.error),
  };
}

/**
 * With --sandbox: start the local two-account sandbox, point this process's AWS environment at it as
 * AccountB's syncer, run, and stop it. Imported only then: the sandbox is a development tool.
 */
async function withOptionalSandbox<T>(
  command: { sandbox: boolean },
  io: CliIo,
  run: () => Promise<T>,
): Promise<T> {
  if (!command.sandbox) return run();
  const { startSandbox } = await import('../sandbox/sandbox.js');
  const sandbox = await startSandbox({ log: (message) => io.stderr(`[sandbox] ${message}`) });
  Object.assign(io.env, sandbox.env);
  try {
    return await run();
  } finally {
    await sandbox.stop();
  }
}
