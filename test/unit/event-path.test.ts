import { describe, expect, it } from 'vitest';
import { accountOf, busPolicyAdmits, patternForwards } from '../../functions/core/diagnose/event-path.js';
import { parseJob } from '../../functions/core/job.js';

const A = '111111111111';
const policy = (...Statement: unknown[]) => JSON.stringify({ Version: '2012-10-17', Statement });
const job = parseJob({
  jobId: 'j',
  source: {
    roleArn: `arn:aws:iam::${A}:role/S3GetListRole`,
    bucket: 'source-bucket',
    prefix: 'exports/daily/',
  },
  destination: { bucket: 'destination-bucket' },
  options: { events: true },
});

describe('busPolicyAdmits', () => {
  it('admits AccountA named as an account id or a principal of that account, for PutEvents or events:*', () => {
    expect(
      busPolicyAdmits(policy({ Effect: 'Allow', Principal: { AWS: A }, Action: 'events:PutEvents' }), A),
    ).toBe(true);
    expect(
      busPolicyAdmits(
        policy({ Effect: 'Allow', Principal: { AWS: [`arn:aws:iam::${A}:root`] }, Action: ['events:*'] }),
        A,
      ),
    ).toBe(true);
    expect(
      busPolicyAdmits(
        policy({
          Effect: 'Allow',
          Principal: '*',
          Action: 'events:PutEvents',
          Condition: { StringEquals: { 'aws:PrincipalAccount': A } },
        }),
        A,
      ),
    ).toBe(true);
  });

  it('refuses no policy, another account, another action, a Deny, or * without a condition naming A', () => {
    expect(busPolicyAdmits(undefined, A)).toBe(false);
    expect(
      busPolicyAdmits(
        policy({ Effect: 'Allow', Principal: { AWS: '999999999999' }, Action: 'events:PutEvents' }),
        A,
      ),
    ).toBe(false);
    expect(
      busPolicyAdmits(policy({ Effect: 'Allow', Principal: { AWS: A }, Action: 'events:PutRule' }), A),
    ).toBe(false);
    expect(
      busPolicyAdmits(policy({ Effect: 'Deny', Principal: { AWS: A }, Action: 'events:PutEvents' }), A),
    ).toBe(false);
    expect(busPolicyAdmits(policy({ Effect: 'Allow', Principal: '*', Action: 'events:PutEvents' }), A)).toBe(
      false,
    );
  });
});

describe('patternForwards', () => {
  const pattern = (detail: unknown, source = ['aws.s3']) => JSON.stringify({ source, detail });

  it('takes a pattern for the bucket, with no key filter or a prefix the job’s prefix starts with', () => {
    expect(patternForwards(pattern({ bucket: { name: ['source-bucket'] } }), job)).toBe(true);
    expect(
      patternForwards(
        pattern({ bucket: { name: ['source-bucket'] }, object: { key: [{ prefix: 'exports/' }] } }),
        job,
      ),
    ).toBe(true);
    expect(patternForwards(JSON.stringify({ source: ['aws.s3'] }), job)).toBe(true);
  });

  it('refuses another source, another bucket, a prefix outside the job’s, or no pattern', () => {
    expect(patternForwards(pattern({ bucket: { name: ['source-bucket'] } }, ['aws.ec2']), job)).toBe(false);
    expect(patternForwards(pattern({ bucket: { name: ['other'] } }), job)).toBe(false);
    expect(patternForwards(pattern({ object: { key: [{ prefix: 'imports/' }] } }), job)).toBe(false);
    expect(patternForwards(undefined, job)).toBe(false);
  });
});

describe('accountOf', () => {
  it('reads the account of an ARN', () => {
    expect(accountOf(`arn:aws:iam::${A}:role/x`)).toBe(A);
    expect(accountOf('not-an-arn')).toBeUndefined();
  });
});
