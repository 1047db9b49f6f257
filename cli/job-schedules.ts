/**
 * One EventBridge Scheduler schedule per stored job, all in one schedule group (the stack's
 * JobScheduleGroup, or one `jobs add` creates). Each schedule is named after its job and invokes the sync
 * function with `{"jobId": "<id>"}`: the function reads the job itself from the job store, so the schedule
 * never holds a copy of the job that could go stale.
 */
import {
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  GetScheduleGroupCommand,
  type SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { awsErrorCode } from '../functions/core/errors.js';

/** Where a job's schedule lives and what it invokes. */
export interface JobScheduleTarget {
  groupName: string;
  /** A role Scheduler assumes that may invoke the function (the stack's JobSchedulerRole). */
  roleArn: string;
  functionArn: string;
}

/** What a schedule does when it fires: ENABLED runs the job, DISABLED (a paused job) does not. */
export type ScheduleState = 'ENABLED' | 'DISABLED';

/** A job's schedule runs every hour unless `jobs add --schedule` says otherwise. */
export const DEFAULT_JOB_SCHEDULE = 'rate(1 hour)';

/**
 * A job that follows S3 events (`options.events`) is kept current by them; its scheduled pass only
 * reconciles what an event missed (docs/event-driven.md), so once a day is its default.
 */
export const DEFAULT_EVENTS_JOB_SCHEDULE = 'rate(1 day)';

/** The schedule `jobs add` gives a job when neither `--schedule` nor an earlier schedule names one. */
export function defaultJobSchedule(job: { options: { events: boolean } }): string {
  return job.options.events ? DEFAULT_EVENTS_JOB_SCHEDULE : DEFAULT_JOB_SCHEDULE;
}

// The settings the template gives its own job schedule: a five-minute window spreads many jobs on one
// expression, and no retries: the next scheduled run resumes where this one stopped.
const FLEXIBLE_TIME_WINDOW = { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 5 } as const;
const RETRY_POLICY = { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 };

const notFound = (error: unknown) => awsErrorCode(error).name === 'ResourceNotFoundException';

/** The schedule's name: the job id (40 characters of [A-Za-z0-9_-], within Scheduler's 64 of [\w.-]). */
export function jobScheduleName(jobId: string): string {
  return jobId;
}

/** Creates the schedule group unless it exists. @returns whether it was created. */
export async function ensureScheduleGroup(scheduler: SchedulerClient, groupName: string): Promise<boolean> {
  try {
    await scheduler.send(new GetScheduleGroupCommand({ Name: groupName }));
    return false;
  } catch (error) {
    if (!notFound(error)) throw error;
  }
  try {
    await scheduler.send(new CreateScheduleGroupCommand({ Name: groupName }));
    return true;
  } catch (error) {
    // Another `jobs add` created it in between.
    if (awsErrorCode(error).name === 'ConflictException') return false;
    throw error;
  }
}

/** Creates the job's schedule, or rewrites the existing one with this expression and state. */
export async function putJobSchedule(
  scheduler: SchedulerClient,
  target: JobScheduleTarget,
  jobId: string,
  options: { expression: string; state: ScheduleState },
): Promise<void> {
  const schedule = {
    Name: jobScheduleName(jobId),
    GroupName: target.groupName,
    Description: `cross-account-sync job ${jobId} (stored in the job store)`,
    ScheduleExpression: options.expression,
    FlexibleTimeWindow: FLEXIBLE_TIME_WINDOW,
    State: options.state,
    Target: {
      Arn: target.functionArn,
      RoleArn: target.roleArn,
      Input: JSON.stringify({ jobId }),
      RetryPolicy: RETRY_POLICY,
    },
  };
  try {
    await scheduler.send(new CreateScheduleCommand(schedule));
  } catch (error) {
    if (awsErrorCode(error).name !== 'ConflictException') throw error;
    await scheduler.send(new UpdateScheduleCommand(schedule));
  }
}

/**
 * Enables or disables the job's schedule, keeping everything else of it (UpdateSchedule replaces the whole
 * schedule, so it is read first). @returns false when the job has no schedule in the group.
 */
export async function setJobScheduleState(
  scheduler: SchedulerClient,
  groupName: string,
  jobId: string,
  state: ScheduleState,
): Promise<boolean> {
  let current: Awaited<ReturnType<typeof readSchedule>>;
  try {
    current = await readSchedule(scheduler, groupName, jobId);
  } catch (error) {
    if (notFound(error)) return false;
    throw error;
  }
  if (current.State === state) return true;
  await scheduler.send(
    new UpdateScheduleCommand({
      Name: jobScheduleName(jobId),
      GroupName: groupName,
      Description: current.Description,
      ScheduleExpression: current.ScheduleExpression,
      ScheduleExpressionTimezone: current.ScheduleExpressionTimezone,
      FlexibleTimeWindow: current.FlexibleTimeWindow,
      Target: current.Target,
      State: state,
    }),
  );
  return true;
}

/** Deletes the job's schedule. @returns false when there was none. */
export async function deleteJobSchedule(
  scheduler: SchedulerClient,
  groupName: string,
  jobId: string,
): Promise<boolean> {
  try {
    await scheduler.send(new DeleteScheduleCommand({ Name: jobScheduleName(jobId), GroupName: groupName }));
    return true;
  } catch (error) {
    if (notFound(error)) return false;
    throw error;
  }
}

/** The job's schedule as Scheduler holds it. @throws ResourceNotFoundException when there is none. */
export function readSchedule(scheduler: SchedulerClient, groupName: string, jobId: string) {
  return scheduler.send(new GetScheduleCommand({ Name: jobScheduleName(jobId), GroupName: groupName }));
}
