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
      copyMethod: 'stream',
      events: false,
      maxDeletesPerRun: 100,
      eventDeletionWindowMinutes: 60,
      manifestPrefix: '.cross-account-sync/runs/',
      fanOut: { mode: 'auto', aboveKeys: 10_000, keysPerShard: 100_000, partTasksAbove: 31 * 1024 ** 3 },
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

  /** The problems parseJob reports for `job`, or [] when it is valid. */
  function problemsOf(job: unknown): string[] {
    try {
      parseJob(job);
      return [];
    } catch (error) {
      return (error as JobValidationError).problems;
    }
  }
  const withSource = (source: object) => ({ ...valid, source: { ...valid.source, ...source } });
  const withDestination = (destination: object) => ({
    ...valid,
    destination: { ...valid.destination, ...destination },
  });
  const withOptions = (options: object) => ({ ...valid, options });

  it.each(['a', 'A-z_9', 'x'.repeat(40)])('accepts the job id %j', (jobId) => {
    expect(problemsOf({ ...valid, jobId })).toEqual([]);
  });

  it.each(['', 'x'.repeat(41), 'has space', 'a.b', ' ab', 'ab '])('refuses the job id %j', (jobId) => {
    expect(problemsOf({ ...valid, jobId })).toEqual([
      `job.jobId must be 1-40 characters of letters, digits, "-" or "_", got ${JSON.stringify(jobId)}`,
    ]);
  });

  it.each(['abc', '1ab', 'ab1', 'a.b-c', 'axn--b', 'a'.repeat(63), 'my.bucket-2'])(
    'accepts the bucket name %j',
    (bucket) => {
      expect(problemsOf(withSource({ bucket }))).toEqual([]);
      expect(problemsOf(withDestination({ bucket }))).toEqual([]);
    },
  );

  it.each([
    'ab',
    'a'.repeat(64),
    'Abc',
    '-abc',
    'abc-',
    '.abc',
    'abc.',
    'a..b',
    'xn--abc',
    'ab_c',
    ' abc',
    'abc ',
  ])('refuses the bucket name %j, naming which bucket', (bucket) => {
    const message = `must be an S3 bucket name: 3-63 lowercase letters, digits, "." or "-", got ${JSON.stringify(bucket)}`;
    expect(problemsOf(withSource({ bucket }))).toEqual([`job.source.bucket ${message}`]);
    expect(problemsOf(withDestination({ bucket }))).toEqual([`job.destination.bucket ${message}`]);
  });

  it('accepts a prefix of 1,024 bytes and refuses one byte more, counting bytes, not characters', () => {
    expect(problemsOf(withSource({ prefix: 'p'.repeat(1024) }))).toEqual([]);
    expect(problemsOf(withDestination({ prefix: 'é'.repeat(512) }))).toEqual([]);
    expect(problemsOf(withDestination({ prefix: 'é'.repeat(513) }))).toEqual([
      `job.destination.prefix must be at most 1,024 bytes, like an S3 key, got "${'é'.repeat(76)}...`,
    ]);
    expect(problemsOf(withSource({ prefix: 'p'.repeat(1025) }))[0]).toMatch(
      /^job\.source\.prefix must be at most 1,024 bytes/,
    );
  });

  it.each([
    'arn:aws:iam::111111111111:role/S3GetListRole',
    'arn:aws-cn:iam::111111111111:role/r',
    'arn:aws-us-gov:iam::111111111111:role/path/to/Role',
    'arn:aws:iam::111111111111:role/a+b=c,d.e@f_g-h',
    `arn:aws:iam::111111111111:role/${'r'.repeat(512)}`,
  ])('accepts the role ARN %s', (roleArn) => {
    expect(problemsOf(withSource({ roleArn }))).toEqual([]);
  });

  it.each([
    'arn:aws:iam::11111111111:role/r',
    'arn:aws:iam::1111111111111:role/r',
    'arn:aws:iam::11111111111a:role/r',
    'arn:aws:iam::111111111111:role/',
    `arn:aws:iam::111111111111:role/${'r'.repeat(513)}`,
    'arn:aws:iam::111111111111:user/r',
    'arn:aws-:iam::111111111111:role/r',
    'arn:aws-CN:iam::111111111111:role/r',
    'xarn:aws:iam::111111111111:role/r',
    'arn:aws:iam::111111111111:role/r x',
  ])('refuses the role ARN %s', (roleArn) => {
    expect(problemsOf(withSource({ roleArn }))[0]).toMatch(
      /^job\.source\.roleArn must be an IAM role ARN like arn:aws:iam::111111111111:role\/S3GetListRole, got "/,
    );
  });

  it.each(['ab', 'a_B9+=,.@:/-', 'x'.repeat(1224)])('accepts the external id %j', (externalId) => {
    expect(problemsOf(withSource({ externalId }))).toEqual([]);
  });

  it.each(['a', 'x'.repeat(1225), 'has space', ' ab', 'ab ', 'a#b'])(
    'refuses the external id %j',
    (externalId) => {
      expect(problemsOf(withSource({ externalId }))[0]).toMatch(
        /^job\.source\.externalId must be 2-1224 characters of letters, digits or \+=,\.@:\/-, got "/,
      );
    },
  );

  it.each(['eu-west-1', 'us-gov-west-1', 'ap-southeast-2'])('accepts the region %s', (region) => {
    expect(problemsOf(withSource({ region }))).toEqual([]);
    expect(problemsOf(withDestination({ region }))).toEqual([]);
  });

  it.each([
    'eu1',
    'e-west-1',
    'eux-west-1',
    'eu-west-10',
    'eu-west-1x',
    'EU-west-1',
    'eu-west',
    'eu-west-',
    'eu--1',
    ' eu-west-1',
  ])('refuses the region %j', (region) => {
    expect(problemsOf(withSource({ region }))).toEqual([
      `job.source.region must be an AWS region like eu-west-1, got ${JSON.stringify(region)}`,
    ]);
    expect(problemsOf(withDestination({ region }))[0]).toMatch(
      /^job\.destination\.region must be an AWS region/,
    );
  });

  it.each([
    [{ concurrency: 1 }, true],
    [{ concurrency: 64 }, true],
    [{ concurrency: 0 }, false],
    [{ concurrency: 65 }, false],
    [{ concurrency: 1.5 }, false],
    [{ maxDeletesPerRun: 0 }, true],
    [{ maxDeletesPerRun: -1 }, false],
    [{ eventDeletionWindowMinutes: 1 }, true],
    [{ eventDeletionWindowMinutes: 1440 }, true],
    [{ eventDeletionWindowMinutes: 0 }, false],
    [{ eventDeletionWindowMinutes: 1441 }, false],
    [{ eventDeletionWindowMinutes: 7.5 }, false],
    [{ eventDeletionWindowMinutes: '60' }, false],
    [{ sessionDurationSeconds: 900 }, true],
    [{ sessionDurationSeconds: 899 }, false],
    [{ sessionDurationSeconds: 3600 }, true],
    [{ sessionDurationSeconds: 3601 }, false],
    [{ mirror: true, copyTags: true, manifestPrefix: 'runs/' }, true],
    [{ mirror: 'yes' }, false],
    [{ fanOut: { mode: 'always', keysPerShard: 1 } }, true],
    [{ fanOut: { mode: 'sometimes' } }, false],
    [{ fanOut: { keysPerShard: 0 } }, false],
    [{ fanOut: { shards: 4 } }, false],
    [{ fanOut: { partTasksAbove: 5 * 1024 * 1024 } }, true],
    [{ fanOut: { partTasksAbove: 5 * 1024 * 1024 - 1 } }, false],
    [{ fanOut: { partTasksAbove: 5 * 1024 * 1024 + 0.5 } }, false],
  ])('options %j valid: %s', (options, ok) => {
    expect(problemsOf(withOptions(options)).length === 0).toBe(ok);
  });

  it("says why a part-task threshold under S3's smallest part is refused", () => {
    expect(problemsOf(withOptions({ fanOut: { partTasksAbove: 1024 } }))).toEqual([
      expect.stringMatching(
        /^job\.options\.fanOut\.partTasksAbove must be at least 5242880 \(5 MiB.*got 1024$/,
      ),
    ]);
  });

  it('says what an event deletion window must be, naming the field and the value', () => {
    expect(problemsOf(withOptions({ eventDeletionWindowMinutes: 0 }))).toEqual([
      'job.options.eventDeletionWindowMinutes must be a whole number of minutes from 1 to 1440 (a day); the default is 60, got 0',
    ]);
    expect(problemsOf(withOptions({ eventDeletionWindowMinutes: 'hourly' }))).toEqual([
      expect.stringMatching(
        /^job\.options\.eventDeletionWindowMinutes must be a whole number of minutes.*got "hourly"$/,
      ),
    ]);
  });

  it('keeps the options given and defaults the rest', () => {
    expect(parseJob(withOptions({ mirror: true, concurrency: 4 })).options).toEqual({
      concurrency: 4,
      mirror: true,
      copyTags: false,
      copyMethod: 'stream',
      events: false,
      maxDeletesPerRun: 100,
      eventDeletionWindowMinutes: 60,
      manifestPrefix: '.cross-account-sync/runs/',
      fanOut: { mode: 'auto', aboveKeys: 10_000, keysPerShard: 100_000, partTasksAbove: 31 * 1024 ** 3 },
      sessionDurationSeconds: 3600,
    });
  });

  it.each([
    ['source', withSource({ bukket: 'x' })],
    ['destination', withDestination({ bukket: 'x' })],
    ['options', withOptions({ bukket: 'x' })],
  ])('refuses an unknown field in %s', (where, job) => {
    expect(problemsOf(job)[0]).toMatch(new RegExp(`^job\\.${where} .*bukket`));
  });

  it('joins every problem into the message, each with its path and the value received', () => {
    // Act
    const act = () =>
      parseJob({ ...valid, jobId: 'has space', source: { ...valid.source, region: 'nowhere' } });

    // Assert
    expect(act).toThrow(
      'invalid job: job.jobId must be 1-40 characters of letters, digits, "-" or "_", got "has space"; ' +
        'job.source.region must be an AWS region like eu-west-1, got "nowhere"',
    );
  });

  it('names a missing field without a received value', () => {
    // Arrange
    const { jobId: _, ...withoutId } = valid;

    // Act
    const problems = problemsOf(withoutId);

    // Assert
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^job\.jobId \S/);
    expect(problems[0]).not.toContain(', got');
  });

  it('shows a wrong-typed field as received, inside an object or at the top', () => {
    expect(problemsOf({ ...valid, source: 'bucket' })[0]).toMatch(/^job\.source .*, got "bucket"$/);
    expect(problemsOf({ ...valid, destination: null })[0]).toMatch(/^job\.destination .*, got null$/);
  });

  it.each([
    [null, 'null'],
    [undefined, 'undefined'],
    ['x'.repeat(78), JSON.stringify('x'.repeat(78))],
    ['x'.repeat(79), `"${'x'.repeat(76)}...`],
    [[1, 2], '[1,2]'],
  ])('says what the event was instead of a job (%j)', (event, shown) => {
    expect(() => parseJob(event)).toThrow(
      new JobValidationError(
        `the event must be a JSON object describing a job (jobId, source, destination), got ${shown}`,
      ),
    );
  });

  describe('options.events', () => {
    it('is off unless the job opts in', () => {
      expect(parseJob(valid).options.events).toBe(false);
      expect(parseJob({ ...valid, options: { events: true } }).options.events).toBe(true);
    });

    it('refuses anything but a boolean, saying what each value does', () => {
      expect(() => parseJob({ ...valid, options: { events: 'yes' } })).toThrow(
        /job\.options\.events must be true \(.*S3 events.*\) or false \(the default: scheduled passes only\), got "yes"/,
      );
    });
  });

  describe('options.copyMethod', () => {
    it('takes "server-side"', () => {
      expect(parseJob({ ...valid, options: { copyMethod: 'server-side' } }).options.copyMethod).toBe(
        'server-side',
      );
    });

    it('refuses another method, naming both and what server-side needs from AccountA', () => {
      expect(() => parseJob({ ...valid, options: { copyMethod: 'copy' } })).toThrow(
        /job\.options\.copyMethod must be "stream" .* or "server-side" .*bucket policy.*s3:GetObject.*got "copy"/,
      );
    });
  });
});
