import { describe, expect, it } from 'vitest';
import { JobValidationError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';

const valid = {
  jobId: 'gautamtest',
  source: {
    roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole',
    externalId: 'gautamtest-external-id',
    bucket: 'gautamtest-assume-role',
  },
  destination: { bucket: 'accountb-sync-destination' },
};

describe('parseJob', () => {
  it('fills in defaults for a minimal job', () => {
    const job = parseJob(valid);
    expect(job.source.prefix).toBe('');
    expect(job.destination.prefix).toBe('');
    expect(job.options).toEqual({
      concurrency: 16,
      mirror: false,
      copyTags: false,
      maxDeletesPerRun: 100,
      manifestPrefix: '.cross-account-sync/runs/',
      sessionDurationSeconds: 3600,
    });
  });

  it('names the field and the value when the role ARN is malformed', () => {
    const job = { ...valid, source: { ...valid.source, roleArn: 'abc' } };
    expect(() => parseJob(job)).toThrow(JobValidationError);
    expect(() => parseJob(job)).toThrow(/job\.source\.roleArn must be an IAM role ARN.*got "abc"/);
  });

  it('lists every problem at once', () => {
    const problems = (() => {
      try {
        parseJob({ jobId: 'has space', source: { ...valid.source, bucket: 'Bad_Bucket' } });
      } catch (error) {
        return (error as JobValidationError).problems;
      }
      return [];
    })();
    expect(problems.some((p) => p.startsWith('job.jobId'))).toBe(true);
    expect(problems.some((p) => p.startsWith('job.source.bucket'))).toBe(true);
    expect(problems.some((p) => p.startsWith('job.destination'))).toBe(true);
  });

  it('rejects unknown fields, which are usually typos', () => {
    expect(() => parseJob({ ...valid, destinaton: {} })).toThrow(/destinaton/);
  });

  it('refuses a session longer than role chaining allows', () => {
    expect(() => parseJob({ ...valid, options: { sessionDurationSeconds: 7200 } })).toThrow(
      /job\.options\.sessionDurationSeconds/,
    );
  });

  it.each([null, 'a string', [1, 2], 42])('explains that the event must be a job object (%j)', (event) => {
    expect(() => parseJob(event)).toThrow(/the event must be a JSON object describing a job/);
  });
});
