import { describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../functions/core/diagnose/diagnose-job.js';
import { JobValidationError } from '../../functions/core/errors.js';
import { isolatedJob, lambdaContext, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
// The handler builds its clients at import, from the environment useSandbox points at the sandbox.
const { handler } = await import('../../functions/sync.js');

describe('the Lambda handler given a doctor event', () => {
  it('checks every link as the function’s own identity and copies nothing', async () => {
    // Prepare: the sandbox's syncer stands in for the function's role.
    const job = isolatedJob(sandbox, 'handler-doctor');
    await putObject(producer, sandbox.accountA.bucket, `${job.source.prefix}probe.txt`, 'probe me');

    // Act
    const report = (await handler({ doctor: job }, lambdaContext(60_000))) as DoctorReport;

    // Assess
    expect(report).toMatchObject({
      jobId: job.jobId,
      ok: true,
      caller: expect.stringContaining(':user/syncer'),
    });
    expect(report.checks.map((check) => `${check.link} ${check.status}`)).toEqual([
      'assumeRole ok',
      'externalId ok',
      'consumerTrust ok',
      'listSource ok',
      'getSource ok',
      'writeDestination ok',
      'stateTable ok',
    ]);
    expect(await listKeys(consumer, job.destination.bucket, job.destination.prefix)).toEqual([]);
    expect(await listKeys(consumer, job.destination.bucket, '.cross-account-sync/doctor/')).toEqual([]);
    expect(await deps.state.recentRuns(job.jobId, 1)).toEqual([]);
    expect(await deps.state.readLease(job.jobId)).toBeUndefined();
  });

  it('refuses a doctor event whose job does not validate, naming the field', async () => {
    const job = isolatedJob(sandbox, 'handler-doctor-invalid');

    const result = handler(
      { doctor: { ...job, source: { ...job.source, roleArn: 'abc' } } },
      lambdaContext(60_000),
    );

    await expect(result).rejects.toThrow(JobValidationError);
    await expect(result).rejects.toThrow(/roleArn/);
  });
});
