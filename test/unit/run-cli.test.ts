import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor, UsageError } from '../../cli/exit-codes.js';
import { parseArguments } from '../../cli/parse-arguments.js';
import {
  AssumeRoleError,
  BucketAccessError,
  JobAlreadyRunningError,
  LeaseLostError,
} from '../../functions/core/errors.js';
import { captureCli } from '../support/capture-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cross-account-sync-unit-'));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs the CLI with captured output and no AWS environment at all. */
async function cli(...argv: string[]) {
  return captureCli({}, ...argv);
}

describe('parseArguments', () => {
  it('reads each command with its own options', () => {
    expect(parseArguments(['run', 'job.json', '--json', '--no-progress'])).toEqual({
      command: 'run',
      jobFile: 'job.json',
      json: true,
      sandbox: false,
      progress: false,
    });
    expect(parseArguments(['plan', 'job.json', '--limit', '5'])).toMatchObject({ command: 'plan', limit: 5 });
    expect(parseArguments(['status', 'a.json', '--job-id', 'x', '--job-id', 'y'])).toMatchObject({
      jobFiles: ['a.json'],
      jobIds: ['x', 'y'],
    });
    expect(parseArguments(['doctor', 'job.json', '--sandbox'])).toMatchObject({
      command: 'doctor',
      sandbox: true,
    });
    expect(parseArguments([])).toEqual({ command: 'help' });
    expect(parseArguments(['help', 'run'])).toEqual({ command: 'help', topic: 'run' });
    expect(parseArguments(['plan', '--help'])).toEqual({ command: 'help', topic: 'plan' });
    expect(parseArguments(['--version'])).toEqual({ command: 'version' });
    expect(parseArguments(['status', '--stack', 'prod-sync'])).toMatchObject({
      command: 'status',
      jobFiles: [],
      jobIds: [],
      stack: 'prod-sync',
    });
    expect(parseArguments(['doctor', '--stack', 'prod-sync', '--json'])).toEqual({
      command: 'doctor',
      stack: 'prod-sync',
      json: true,
      sandbox: false,
    });
  });

  it.each([
    [['frob'], /unknown command "frob"/],
    [['run'], /run needs exactly one job file, got 0/],
    [['run', 'a.json', 'b.json'], /got 2/],
    [['status'], /status needs a job file, --job-id ID or --stack NAME/],
    [['run', 'job.json', '--stack', 's'], /--stack does not apply to run/],
    [['doctor', 'job.json', '--stack', 's'], /doctor takes a job file or --stack NAME, not both/],
    [['doctor', 'job.json', '--limit', '3'], /--limit does not apply to doctor/],
    [['plan', 'job.json', '--limit', 'many'], /--limit must be a whole number/],
    [['run', 'job.json', '--verbose'], /Unknown option '--verbose'/],
    [['help', 'frob'], /unknown command "frob"/],
  ])('refuses %j with a usage error', (argv, message) => {
    expect(() => parseArguments(argv)).toThrow(message);
    expect(() => parseArguments(argv)).toThrow(UsageError);
  });
});

describe('exitCodeFor', () => {
  it('reads unlock with one job, by file or by id, and --force', () => {
    expect(parseArguments(['unlock', 'job.json'])).toMatchObject({ job: { file: 'job.json' }, force: false });
    expect(parseArguments(['unlock', '--job-id', 'x', '--force'])).toMatchObject({
      job: { id: 'x' },
      force: true,
    });
    expect(() => parseArguments(['unlock'])).toThrow(/unlock needs exactly one job/);
    expect(() => parseArguments(['unlock', 'a.json', '--job-id', 'x'])).toThrow(
      /unlock needs exactly one job/,
    );
    expect(() => parseArguments(['status', '--job-id', 'x', '--force'])).toThrow(
      /--force does not apply to status/,
    );
  });

  it('maps each kind of failure to the documented exit code', () => {
    expect(exitCodeFor(new UsageError('x'))).toBe(EXIT.usage);
    expect(exitCodeFor(new AssumeRoleError('x'))).toBe(EXIT.access);
    expect(exitCodeFor(new BucketAccessError('x'))).toBe(EXIT.access);
    expect(exitCodeFor(Object.assign(new Error('x'), { name: 'ResourceNotFoundException' }))).toBe(
      EXIT.access,
    );
    expect(exitCodeFor(new JobAlreadyRunningError('x'))).toBe(EXIT.alreadyRunning);
    expect(exitCodeFor(new LeaseLostError('x'))).toBe(EXIT.unexpected);
    expect(exitCodeFor(new TypeError('x'))).toBe(EXIT.unexpected);
  });
});

describe('runCli', () => {
  it('exits 2 naming every bad field of an invalid job, as one JSON document with --json', async () => {
    const path = file('invalid.json', JSON.stringify({ jobId: 'bad id', source: {}, destination: {} }));

    const { exitCode, stdout, stderr } = await cli('run', path, '--json');

    expect(exitCode).toBe(EXIT.usage);
    expect(stderr).toBe('');
    const { error } = JSON.parse(stdout);
    expect(error).toMatchObject({ name: 'JobValidationError', exitCode: 2 });
    expect(error.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^job\.jobId /),
        expect.stringMatching(/^job\.source\.roleArn /),
      ]),
    );
  });

  it('exits 2 on a job file that is missing or not JSON, with the message on stderr', async () => {
    const missing = await cli('plan', join(dir, 'nope.json'));
    const notJson = await cli('doctor', file('broken.json', '{"jobId":'));

    expect(missing).toMatchObject({ exitCode: EXIT.usage, stdout: '' });
    expect(missing.stderr).toMatch(/^error: cannot read job file .*nope\.json/);
    expect(notJson.exitCode).toBe(EXIT.usage);
    expect(notJson.stderr).toMatch(/is not JSON/);
  });

  it('exits 2 before any AWS call when STATE_TABLE_NAME is not set', async () => {
    const { exitCode, stderr } = await cli('status', '--job-id', 'nightly');

    expect(exitCode).toBe(EXIT.usage);
    expect(stderr).toMatch(/STATE_TABLE_NAME is not set/);
  });

  it('prints the usage with the exit codes for help', async () => {
    const { exitCode, stdout } = await cli('help');

    expect(exitCode).toBe(EXIT.ok);
    expect(stdout).toMatch(/Exit codes: 0 ok, 1 run finished with failed objects, 2 usage/);
  });

  it('prints the package version for --version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

    const { exitCode, stdout } = await cli('--version');

    expect(exitCode).toBe(EXIT.ok);
    expect(stdout).toBe(version);
  });

  it.each([[['help', 'run']], [['run', '--help']], [['run', 'job.json', '-h']]])(
    'prints the help of one command for %j',
    async (argv) => {
      const { exitCode, stdout } = await cli(...argv);

      expect(exitCode).toBe(EXIT.ok);
      expect(stdout).toMatch(/^Usage: cross-account-sync run <job\.json> \[options\]/);
      expect(stdout).toContain('--no-progress');
      expect(stdout).toMatch(/Ctrl-C/);
      expect(stdout).not.toContain('--limit');
    },
  );

  it.each(['plan', 'status', 'doctor'])('has a help of its own for %s', async (command) => {
    const { exitCode, stdout } = await cli('help', command);

    expect(exitCode).toBe(EXIT.ok);
    expect(stdout).toMatch(new RegExp(`^Usage: cross-account-sync ${command} `));
  });
});

describe('runCli without an AWS region', () => {
  // The SDK's clients read the region from the process environment and the profile, not from io.env.
  const saved = { ...process.env };
  beforeEach(() => {
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    delete process.env.AWS_PROFILE;
    process.env.AWS_CONFIG_FILE = join(dir, 'no-such-config');
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'no-such-credentials');
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  const job = () =>
    file(
      'region-job.json',
      JSON.stringify({
        jobId: 'nightly',
        source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'source-bucket' },
        destination: { bucket: 'destination-bucket' },
      }),
    );

  it.each([
    ['run', () => ['run', job(), '--no-progress']],
    ['plan', () => ['plan', job()]],
    ['doctor', () => ['doctor', job()]],
    ['status', () => ['status', '--job-id', 'nightly']],
  ])('%s exits 2 telling to set AWS_REGION, before any call', async (_name, argv) => {
    const { exitCode, stderr, stdout } = await captureCli({ STATE_TABLE_NAME: 'state' }, ...argv());

    expect(exitCode).toBe(EXIT.usage);
    expect(stderr).toMatch(/^error: no AWS region is set: export AWS_REGION/);
    expect(stdout).toBe('');
  });

  it('maps the SDK\'s "Region is missing" to exit 2 wherever it surfaces', () => {
    expect(exitCodeFor(new Error('Region is missing'))).toBe(EXIT.usage);
  });
});

describe('doctor event-path flags', () => {
  it('parses the bus, queue and AccountA profile, and leaves them out when none is given', () => {
    expect(
      parseArguments([
        'doctor',
        'job.json',
        '--s3-event-bus',
        'arn:aws:events:eu-west-1:222222222222:event-bus/s3',
        '--copy-queue-url',
        'https://sqs/q',
        '--source-profile',
        'account-a',
      ]),
    ).toMatchObject({
      command: 'doctor',
      jobFile: 'job.json',
      eventPath: {
        bus: 'arn:aws:events:eu-west-1:222222222222:event-bus/s3',
        queueUrl: 'https://sqs/q',
        sourceProfile: 'account-a',
      },
    });
    expect(parseArguments(['doctor', '--stack', 's', '--source-profile', 'a'])).toMatchObject({
      stack: 's',
      eventPath: { sourceProfile: 'a' },
    });
    expect(parseArguments(['doctor', 'job.json'])).not.toHaveProperty('eventPath');
  });

  it.each([
    [['run', 'job.json', '--source-profile', 'a'], /--source-profile does not apply to run/],
    [['status', '--stack', 's', '--s3-event-bus', 'b'], /--s3-event-bus does not apply to status/],
    [['doctor', 'job.json', '--copy-queue-url', ''], /--copy-queue-url needs a value/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseArguments(argv)).toThrow(message);
  });
});
