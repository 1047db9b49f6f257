import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateScheduleCommand,
  GetScheduleCommand,
  GetScheduleGroupCommand,
  SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { EXIT, UsageError } from '../../cli/exit-codes.js';
import { type JobsDependencies, jobsCommand, resolveJobsPlace } from '../../cli/jobs-command.js';
import { parseArguments } from '../../cli/parse-arguments.js';
import type { JobStore, StoredJob } from '../../functions/core/state/job-store.js';
import { captureCli } from '../support/capture-cli.js';

const usage = (argv: string[]) => {
  try {
    parseArguments(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`parseArguments accepted ${argv.join(' ')}`);
};

describe('parseArguments: jobs', () => {
  it('reads each action with its operands and where the jobs are', () => {
    expect(
      parseArguments(['jobs', 'add', '--file', 'job.json', '--schedule', 'rate(5 minutes)', '--stack', 's']),
    ).toEqual({
      command: 'jobs',
      jobs: { action: 'add', file: 'job.json', schedule: 'rate(5 minutes)', replace: false },
      place: { stack: 's' },
      json: false,
      sandbox: false,
    });
    expect(parseArguments(['jobs', 'add', '--file', 'j.json', '--replace', '--table', 't'])).toMatchObject({
      jobs: { action: 'add', replace: true },
      place: { tableName: 't' },
    });
    expect(parseArguments(['jobs', 'pause', 'partner-a', '--schedule-group', 'g'])).toMatchObject({
      jobs: { action: 'pause', jobId: 'partner-a' },
      place: { scheduleGroup: 'g' },
    });
    expect(parseArguments(['jobs', 'list', '--json'])).toMatchObject({
      jobs: { action: 'list' },
      json: true,
    });
  });

  it('names what is wrong with a jobs command line', () => {
    expect(usage(['jobs'])).toBe('jobs needs an action: add, list, pause, resume, remove');
    expect(usage(['jobs', 'start', 'x'])).toContain('got "start"');
    expect(usage(['jobs', 'add', 'job.json'])).toBe('jobs add needs --file <job.json> and no other operand');
    expect(usage(['jobs', 'pause'])).toBe('jobs pause needs exactly one job id, got 0');
    expect(usage(['jobs', 'remove', 'a', 'b'])).toBe('jobs remove needs exactly one job id, got 2');
    expect(usage(['jobs', 'list', 'x'])).toBe('jobs list takes no operand');
    expect(usage(['jobs', 'pause', 'a', '--replace'])).toBe(
      '--replace applies to jobs add only, not jobs pause',
    );
    expect(usage(['jobs', 'list', '--stack', 's', '--table', 't'])).toBe(
      'jobs takes --stack NAME or --table, not both',
    );
    expect(usage(['run', 'job.json', '--schedule-group', 'g'])).toBe(
      '--schedule-group does not apply to run',
    );
  });
});

describe('resolveJobsPlace', () => {
  it('reads the table, group, scheduler role and function from the stack’s outputs', async () => {
    const outputs = new Map([
      ['StateTableName', 'table'],
      ['JobScheduleGroupName', 'group'],
      ['JobSchedulerRoleArn', 'arn:role'],
      ['SyncFunctionArn', 'arn:function'],
    ]);

    const place = await resolveJobsPlace({ stack: 's' }, {}, async () => outputs);

    expect(place).toEqual({
      tableName: 'table',
      scheduleGroup: 'group',
      schedulerRoleArn: 'arn:role',
      functionArn: 'arn:function',
    });
  });

  it('takes the table from STATE_TABLE_NAME when no flag names it, and needs one', async () => {
    const read = vi.fn();
    expect(await resolveJobsPlace({ scheduleGroup: 'g' }, { STATE_TABLE_NAME: 't' }, read)).toEqual({
      tableName: 't',
      scheduleGroup: 'g',
    });
    await expect(resolveJobsPlace({}, {}, read)).rejects.toThrow(/--stack NAME, or --table T/);
    expect(read).not.toHaveBeenCalled();
  });
});

describe('jobsCommand', () => {
  const scheduler = mockClient(SchedulerClient);
  const stored: StoredJob = {
    job: {
      jobId: 'partner-a',
      source: { roleArn: 'arn:aws:iam::111111111111:role/x', bucket: 'source-bucket', prefix: '' },
      destination: { bucket: 'destination-bucket', prefix: 'a/' },
    } as StoredJob['job'],
    status: 'paused',
    schedule: 'rate(1 hour)',
    createdAt: 'then',
    updatedAt: 'now',
  };
  const store = {
    tableName: 'table',
    setStatus: vi.fn(async () => stored),
    get: vi.fn(async () => undefined),
    add: vi.fn(async () => stored),
  };
  const deps = {
    store: store as unknown as JobStore,
    scheduler: new SchedulerClient({}),
  } as JobsDependencies;

  beforeEach(() => {
    scheduler.reset();
    vi.clearAllMocks();
  });

  it('pauses the stored job first, then disables its schedule keeping the rest of it', async () => {
    const target = { Arn: 'arn:function', RoleArn: 'arn:role', Input: '{"jobId":"partner-a"}' };
    scheduler.on(GetScheduleCommand).resolves({
      State: 'ENABLED',
      ScheduleExpression: 'rate(1 hour)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: target,
    });

    const result = await jobsCommand(
      deps,
      { tableName: 'table', scheduleGroup: 'g' },
      {
        action: 'pause',
        jobId: 'partner-a',
      },
    );

    expect(result.exitCode).toBe(EXIT.ok);
    expect(store.setStatus).toHaveBeenCalledWith('partner-a', 'paused');
    expect(scheduler).toHaveReceivedCommandWith(UpdateScheduleCommand, {
      Name: 'partner-a',
      GroupName: 'g',
      State: 'DISABLED',
      ScheduleExpression: 'rate(1 hour)',
      Target: target,
    });
  });

  it('needs the schedule group, scheduler role and function before adding, naming each flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-command-'));
    const file = join(dir, 'job.json');
    writeFileSync(file, JSON.stringify(stored.job));

    const refused = jobsCommand(
      deps,
      { tableName: 'table', scheduleGroup: 'g' },
      {
        action: 'add',
        file,
        replace: false,
      },
    );

    await expect(refused).rejects.toThrow(
      'jobs add needs --scheduler-role-arn (or --stack NAME, whose JobSchedulerRoleArn output gives it)',
    );
    expect(store.add).not.toHaveBeenCalled();
  });

  it('adds a paused job’s replacement with its schedule disabled, creating the group only when missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-command-'));
    const file = join(dir, 'job.json');
    writeFileSync(file, JSON.stringify(stored.job));
    scheduler.on(GetScheduleGroupCommand).resolves({ Name: 'g' });

    await jobsCommand(
      deps,
      { tableName: 'table', scheduleGroup: 'g', schedulerRoleArn: 'arn:role', functionArn: 'arn:function' },
      { action: 'add', file, replace: true },
    );

    expect(scheduler).toHaveReceivedCommandWith(CreateScheduleCommand, {
      Name: 'partner-a',
      GroupName: 'g',
      State: 'DISABLED',
      Target: expect.objectContaining({ Input: '{"jobId":"partner-a"}', RoleArn: 'arn:role' }),
    });
    expect(scheduler).toHaveReceivedCommandTimes(GetScheduleGroupCommand, 1);
  });
});

describe('jobs add default schedule', () => {
  const scheduler = mockClient(SchedulerClient);
  const add = vi.fn(async (input: unknown) => ({ status: 'active', job: input }) as StoredJob);
  const deps = {
    store: { tableName: 'table', get: vi.fn(async () => undefined), add } as unknown as JobStore,
    scheduler: new SchedulerClient({}),
  } as JobsDependencies;
  const job = {
    jobId: 'partner-b',
    source: { roleArn: 'arn:aws:iam::111111111111:role/x', bucket: 'source-bucket' },
    destination: { bucket: 'destination-bucket' },
  };

  it.each([
    { events: true, expression: 'rate(1 day)' },
    { events: false, expression: 'rate(1 hour)' },
  ])(
    'schedules a job with options.events $events at $expression unless told otherwise',
    async ({ events, expression }) => {
      scheduler.reset();
      scheduler.on(GetScheduleGroupCommand).resolves({ Name: 'g' });
      const file = join(mkdtempSync(join(tmpdir(), 'jobs-command-')), 'job.json');
      writeFileSync(file, JSON.stringify({ ...job, options: { events } }));

      await jobsCommand(
        deps,
        { tableName: 'table', scheduleGroup: 'g', schedulerRoleArn: 'arn:role', functionArn: 'arn:function' },
        { action: 'add', file, replace: false },
      );

      expect(add).toHaveBeenLastCalledWith(expect.anything(), { replace: false, schedule: expression });
      expect(scheduler).toHaveReceivedCommandWith(CreateScheduleCommand, { ScheduleExpression: expression });
    },
  );
});

describe('cross-account-sync jobs, end to end in process', () => {
  it('exits 2 naming the field for an invalid job file, before any AWS call', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-command-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ jobId: 'x', source: { roleArn: 'abc', bucket: 'b-b-b' } }));

    const { exitCode, stderr } = await captureCli(
      { AWS_REGION: 'eu-west-1' },
      'jobs',
      'add',
      '--file',
      file,
      '--table',
      't',
    );

    expect(exitCode).toBe(EXIT.usage);
    expect(stderr).toContain('job.source.roleArn must be an IAM role ARN');
  });
});
