import { beforeEach, describe, expect, it, vi } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { diagnoseJob } from '../../functions/core/diagnose/diagnose-job.js';
import { JobValidationError } from '../../functions/core/errors.js';
import { handleEvent, isDoctorEvent } from '../../functions/core/handle-event.js';
import type { SyncLogger } from '../../functions/core/run/sync-job.js';
import { syncFromEvent } from '../../functions/core/run/sync-job.js';

vi.mock('../../functions/core/diagnose/diagnose-job.js', () => ({
  diagnoseJob: vi.fn(async () => 'doctor report'),
}));
vi.mock('../../functions/core/run/sync-job.js', () => ({ syncFromEvent: vi.fn(async () => 'run summary') }));

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
    vi.mocked(syncFromEvent).mockClear();
  });

  it("runs the doctor on the event's job with the function's own clients, syncing nothing", async () => {
    // Act
    const result = await handleEvent(deps, { doctor: job }, {}, env);

    // Assert
    expect(result).toBe('doctor report');
    expect(syncFromEvent).not.toHaveBeenCalled();
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
    expect(syncFromEvent).toHaveBeenCalledWith(deps, job, control);
    expect(diagnoseJob).not.toHaveBeenCalled();
  });
});
