import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { diagnoseJob } from '../../functions/core/diagnose/diagnose-job.js';
import { JobValidationError, UnknownJobError } from '../../functions/core/errors.js';
import { fansOut } from '../../functions/core/fanout/choose-mode.js';
import { startPass } from '../../functions/core/fanout/start-pass.js';
import { handleEvent, isDoctorEvent, isStoredJobEvent } from '../../functions/core/handle-event.js';
import { parseJob } from '../../functions/core/job.js';
import type { SyncLogger } from '../../functions/core/run/sync-job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';

vi.mock('../../functions/core/diagnose/diagnose-job.js', () => ({
  diagnoseJob: vi.fn(async () => 'doctor report'),
}));
vi.mock('../../functions/core/run/sync-job.js', () => ({ syncJob: vi.fn(async () => 'run summary') }));
vi.mock('../../functions/core/fanout/start-pass.js', () => ({
  startPass: vi.fn(async () => 'pass started'),
}));
vi.mock('../../functions/core/fanout/choose-mode.js', () => ({ fansOut: vi.fn(async () => true) }));

const job = {
  jobId: 'job-1',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'source-bucket' },
  destination: { bucket: 'destination-bucket' },
};

describe('isDoctorEvent', () => {
  it.each([
    [{ doctor: job }, true],
    [{ doctor: undefined }, true],
    [job, false],
    [null, false],
    ['doctor', false],
    [undefined, false],
  ])('tells a doctor request (%j) from a job: %s', (event, expected) => {
    expect(isDoctorEvent(event)).toBe(expected);
  });
});

describe('handleEvent', () => {
  const deps = dependenciesFromEnvironment({} as SyncLogger, { STATE_TABLE_NAME: 'sync-state' });
  const env = { AWS_ENDPOINT_URL_STS: 'http://sts.local:4566' };

  beforeEach(() => {
    vi.mocked(diagnoseJob).mockClear();
    vi.mocked(syncJob).mockClear();
    vi.mocked(startPass).mockClear();
    vi.mocked(fansOut).mockClear();
  });

  it("runs the doctor on the event's job with the function's own clients, syncing nothing", async () => {
    // Act
    const result = await handleEvent(deps, { doctor: job }, {}, env);

    // Assert
    expect(result).toBe('doctor report');
    expect(syncJob).not.toHaveBeenCalled();
    const [doctorDeps, parsed] = vi.mocked(diagnoseJob).mock.calls[0] ?? [];
    expect(doctorDeps).toMatchObject({
      sts: deps.sts,
      tableName: 'sync-state',
      stsEndpoint: 'http://sts.local:4566',
      callerIsFunction: true,
    });
    expect(parsed).toMatchObject({ jobId: 'job-1', options: { concurrency: 16 } });
  });

  it('rejects a doctor request whose job is invalid, naming the field', async () => {
    const refused = handleEvent(deps, { doctor: { ...job, jobId: 'has space' } }, {}, env);

    await expect(refused).rejects.toThrow(JobValidationError);
    await expect(refused).rejects.toThrow(/job\.jobId must be/);
    expect(diagnoseJob).not.toHaveBeenCalled();
  });

  it('runs the sync for any other event, with the run control given', async () => {
    // Arrange
    const control = { deadline: Date.now() + 60_000 };

    // Act
    const result = await handleEvent(deps, job, control as never, env);

    // Assert
    expect(result).toBe('run summary');
    expect(syncJob).toHaveBeenCalledWith(deps, parseJob(job), control);
    expect(diagnoseJob).not.toHaveBeenCalled();
    // A deployment without the fan-out queues never asks whether to fan out.
    expect(fansOut).not.toHaveBeenCalled();
  });

  it('starts a fan-out pass when the deployment has the queues and the job fans out', async () => {
    const queues = { planShard: vi.fn(), copy: vi.fn() };
    const withQueues = { ...deps, queues };

    const result = await handleEvent(withQueues, job, { runId: 'run-1' }, env);

    expect(result).toBe('pass started');
    expect(fansOut).toHaveBeenCalledWith(withQueues, parseJob(job));
    expect(startPass).toHaveBeenCalledWith(
      withQueues,
      parseJob(job),
      expect.objectContaining({ runId: 'run-1' }),
    );
    expect(syncJob).not.toHaveBeenCalled();
  });

  it('runs inline when the deployment has the queues but the job does not fan out', async () => {
    vi.mocked(fansOut).mockResolvedValueOnce(false);
    const withQueues = { ...deps, queues: { planShard: vi.fn(), copy: vi.fn() } };

    expect(await handleEvent(withQueues, job, {}, env)).toBe('run summary');
    expect(startPass).not.toHaveBeenCalled();
  });

  it('rejects an invalid job before choosing a mode', async () => {
    await expect(handleEvent(deps, { ...job, jobId: '' }, {}, env)).rejects.toThrow(JobValidationError);
    expect(fansOut).not.toHaveBeenCalled();
    expect(syncJob).not.toHaveBeenCalled();
  });
});

describe('isStoredJobEvent', () => {
  it.each([
    [{ jobId: 'job-1' }, true],
    [job, false],
    [{ jobId: 1 }, false],
    [{ jobId: 'job-1', doctor: job }, false],
    [null, false],
    [['job-1'], false],
  ])('tells a stored job’s schedule input (%j) from a whole job: %s', (event, expected) => {
    expect(isStoredJobEvent(event)).toBe(expected);
  });
});

describe('handleEvent with a stored job ({"jobId"})', () => {
  const dynamodb = mockClient(DynamoDBDocumentClient);
  const info = vi.fn();
  const deps = dependenciesFromEnvironment({ info } as unknown as SyncLogger, {
    STATE_TABLE_NAME: 'sync-state',
  });
  const stored = (status: string) => ({
    Item: { pk: 'jobs', sk: 'job-1', job, status, createdAt: 'then', updatedAt: 'then' },
  });

  beforeEach(() => {
    dynamodb.reset();
    info.mockClear();
    vi.mocked(syncJob).mockClear();
  });

  it('reads the job from the job store and runs it', async () => {
    dynamodb.on(GetCommand).resolves(stored('active'));

    const result = await handleEvent(deps, { jobId: 'job-1' });

    expect(result).toBe('run summary');
    expect(dynamodb).toHaveReceivedCommandWith(GetCommand, {
      TableName: 'sync-state',
      Key: { pk: 'jobs', sk: 'job-1' },
    });
    expect(syncJob).toHaveBeenCalledWith(deps, parseJob(job), {});
  });

  it('skips a paused job with a log line and a result saying how to resume it', async () => {
    dynamodb.on(GetCommand).resolves(stored('paused'));

    const result = await handleEvent(deps, { jobId: 'job-1' });

    expect(result).toMatchObject({ jobId: 'job-1', status: 'skipped', reason: 'paused' });
    expect((result as { message: string }).message).toContain('jobs resume job-1');
    expect(info).toHaveBeenCalledWith('job paused; run skipped', { jobId: 'job-1' });
    expect(syncJob).not.toHaveBeenCalled();
  });

  it('refuses a job id the store does not hold, naming `jobs add`', async () => {
    dynamodb.on(GetCommand).resolves({});

    const refused = handleEvent(deps, { jobId: 'job-9' });

    await expect(refused).rejects.toThrow(UnknownJobError);
    await expect(refused).rejects.toThrow(/no job "job-9".*jobs add/);
    expect(syncJob).not.toHaveBeenCalled();
  });
});
