import {
  AssumeRoleError,
  awsErrorCode,
  BucketAccessError,
  JobAlreadyRunningError,
  JobExistsError,
  JobValidationError,
  LeaseHeldError,
  networkFailure,
  StateStoreError,
  SyncError,
  UnknownJobError,
} from '../functions/core/errors.js';

/** What `cross-account-sync` exits with; scripts may rely on these (README, "Command line"). */
export const EXIT = {
  /** Done: the run copied everything it found, the plan/status was shown, every doctor link holds. */
  ok: 0,
  /** The run finished, but some objects failed to copy (they are retried by the next run). */
  failedObjects: 1,
  /**
   * Bad command line, unreadable job file, a job that does not validate, no AWS region, (`status`,
   * `unlock`, `jobs`) a job id the state table has nothing of, or (`jobs add`) one it already holds.
   */
  usage: 2,
  /** A credential, bucket or table the job needs is refused or missing (doctor says which link). */
  access: 3,
  /** Another run holds the job's lease; this one did nothing (`unlock`: the holder is alive; --force ends it). */
  alreadyRunning: 4,
  /** Anything else: a bug, a network failure, a lost lease. */
  unexpected: 5,
  /** Stopped by Ctrl-C (128 + SIGINT, as shells report it): the run saved its checkpoint; the next resumes. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The command line or the environment is wrong; the message says how to call it. */
export class UsageError extends SyncError {}

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): ExitCode {
  if (
    error instanceof UsageError ||
    error instanceof JobValidationError ||
    error instanceof UnknownJobError ||
    error instanceof JobExistsError
  )
    return EXIT.usage;
  // The SDK's own words when neither the environment nor the profile names a region (cli/build-clients.ts
  // checks up front; this catches a client that resolves it later).
  if (error instanceof Error && error.message === 'Region is missing') return EXIT.usage;
  // An endpoint that never answered is not a refusal, whichever step wrapped it.
  if (networkFailure(error) !== undefined) return EXIT.unexpected;
  if (error instanceof AssumeRoleError || error instanceof BucketAccessError) return EXIT.access;
  if (error instanceof JobAlreadyRunningError || error instanceof LeaseHeldError) return EXIT.alreadyRunning;
  // A state-table failure is an access problem when DynamoDB refused or did not find the table.
  const { name, status } = awsErrorCode(error instanceof StateStoreError ? error.cause : error);
  const refused = ['AccessDenied', 'AccessDeniedException', 'ResourceNotFoundException', 'NoSuchBucket'];
  if ((name !== undefined && refused.includes(name)) || status === 403) return EXIT.access;
  return EXIT.unexpected;
}
