import * as z from 'zod/mini';
import { JobValidationError } from './errors.js';
import './schema-messages.js';

/** Role chaining (a Lambda role assuming another role) is capped at one hour by STS. */
const MAX_ROLE_CHAINING_SECONDS = 3600;
/** STS's floor for DurationSeconds. */
const MIN_SESSION_SECONDS = 900;
/** options.fanOut.partTasksAbove: S3's smallest part (5 MiB), and the default, 31 GiB. */
const MIN_PART_TASKS_ABOVE = 5 * 1024 * 1024;
const DEFAULT_PART_TASKS_ABOVE = 31 * 1024 * 1024 * 1024;
/** options.eventDeletionWindowMinutes: a day, the interval of a job's default reconciling pass. */
const MAX_EVENT_DELETION_WINDOW_MINUTES = 1440;
const EVENT_DELETION_WINDOW_RULE = `must be a whole number of minutes from 1 to ${MAX_EVENT_DELETION_WINDOW_MINUTES} (a day); the default is 60`;

// Job ids end up in the STS RoleSessionName (`sync-<jobId>-<runId>`, at most 64 characters) and in
// DynamoDB partition keys, so they are kept short and to the characters STS accepts.
const jobId = z
  .string()
  .check(z.regex(/^[A-Za-z0-9_-]{1,40}$/, 'must be 1-40 characters of letters, digits, "-" or "_"'));

// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose buckets)
const bucketName = z
  .string()
  .check(
    z.regex(
      /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'must be an S3 bucket name: 3-63 lowercase letters, digits, "." or "-"',
    ),
  );

const keyPrefix = z
  .string()
  .check(
    z.refine((value) => Buffer.byteLength(value) <= 1024, 'must be at most 1,024 bytes, like an S3 key'),
  );
const prefix = z._default(keyPrefix, '');

const roleArn = z
  .string()
  .check(
    z.regex(
      /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
      'must be an IAM role ARN like arn:aws:iam::111111111111:role/S3GetListRole',
    ),
  );

// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html (ExternalId)
const externalId = z
  .string()
  .check(z.regex(/^[\w+=,.@:/-]{2,1224}$/, 'must be 2-1224 characters of letters, digits or +=,.@:/-'));

const region = z.string().check(z.regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region like eu-west-1'));

/** The schema of one sync job: where to read, where to write, and how. */
export const jobSchema = z.strictObject({
  jobId,
  source: z.strictObject({
    roleArn,
    externalId: z.optional(externalId),
    bucket: bucketName,
    prefix,
    region: z.optional(region),
  }),
  destination: z.strictObject({
    bucket: bucketName,
    prefix,
    region: z.optional(region),
  }),
  options: z.prefault(
    z.strictObject({
      /** Objects copied at once. Large objects also share a smaller pool; see copy-pool.ts. */
      concurrency: z._default(z.number().check(z.int(), z.minimum(1), z.maximum(64)), 16),
      /** Copy deletions and allow overwriting destination objects this sync did not write. */
      mirror: z._default(z.boolean(), false),
      /**
       * Copy each object's tags (GetObjectTagging with the source role, which then needs
       * s3:GetObjectTagging; the destination write carries them). A change of tags alone is not a new
       * version of the object: it is copied again only when its bytes or metadata change.
       */
      copyTags: z._default(z.boolean(), false),
      /**
       * How bytes move: `stream` (GET with the source role, PUT with this function's role, every byte
       * through the function and checked on the way) or `server-side` (CopyObject / UploadPartCopy run by
       * this function's role, no byte through the function; AccountA's bucket policy must grant that role
       * s3:GetObject, see copy/server-side-copy.ts).
       */
      copyMethod: z._default(
        z.enum(['stream', 'server-side'], {
          error: () =>
            'must be "stream" (the default: bytes pass through the function) or "server-side" (S3 copies ' +
            "them; AccountA's bucket policy must grant this function's role s3:GetObject)",
        }),
        'stream',
      ),
      /**
       * Also follow AccountA's S3 events (docs/event-driven.md): changes forwarded to this account's S3-event
       * bus are copied within seconds by the copy worker, each read from the source as it is then; the
       * scheduled passes still run and reconcile what an event missed. Off by default.
       */
      events: z._default(
        z.boolean({
          error: () =>
            'must be true (the job also copies the changes S3 events announce, within seconds; see ' +
            'docs/event-driven.md) or false (the default: scheduled passes only)',
        }),
        false,
      ),
      /**
       * With mirror, stop deleting after this many deletions in one run; for events, in one
       * `eventDeletionWindowMinutes` window, all workers together (state/event-deletion-allowance.ts).
       */
      maxDeletesPerRun: z._default(z.number().check(z.int(), z.minimum(0)), 100),
      /**
       * With mirror and events, the window `maxDeletesPerRun` counts event deletions in: a burst of Object
       * Deleted events (a producer emptying its bucket by mistake) deletes at most that many copies per
       * window; the rest wait for a mirror pass, under its own cap. At most a day, the default reconciling
       * pass's interval: a longer window would only hold back deletions that pass makes anyway.
       */
      eventDeletionWindowMinutes: z._default(
        z
          .number({ error: () => EVENT_DELETION_WINDOW_RULE })
          .check(
            z.int(EVENT_DELETION_WINDOW_RULE),
            z.minimum(1, EVENT_DELETION_WINDOW_RULE),
            z.maximum(MAX_EVENT_DELETION_WINDOW_MINUTES, EVENT_DELETION_WINDOW_RULE),
          ),
        60,
      ),
      /**
       * Where each run's manifest and _SUCCESS marker go in the destination bucket. Outside the data
       * prefix, and dot-named so Spark, Hive and Athena-style readers skip it.
       */
      manifestPrefix: z._default(keyPrefix, '.cross-account-sync/runs/'),
      /**
       * When a pass is spread over the worker functions (docs/fan-out.md) instead of run in the scheduled
       * function: `auto` once the last pass listed `aboveKeys` keys or more, `always`, or `never`. A
       * deployment without the fan-out queues always runs inline.
       */
      fanOut: z.prefault(
        z.strictObject({
          mode: z._default(z.enum(['auto', 'always', 'never']), 'auto'),
          aboveKeys: z._default(z.number().check(z.int(), z.minimum(1)), 10_000),
          /** Keys per shard, cut from the ledger the last pass left; a first pass is one shard. */
          keysPerShard: z._default(z.number().check(z.int(), z.minimum(1)), 100_000),
          /**
           * Objects larger than this many bytes are copied as part tasks (docs/fan-out.md): one multipart
           * upload, each part a task of its own on the part queue. 31 GiB by default, above what one copy
           * worker streams, or copies server-side, well within its 900 s (README "Giant objects in
           * fan-out"); at least 5 MiB, S3's smallest part.
           */
          partTasksAbove: z._default(
            z
              .number()
              .check(
                z.int(),
                z.minimum(
                  MIN_PART_TASKS_ABOVE,
                  'must be at least 5242880 (5 MiB, the smallest part S3 takes)',
                ),
              ),
            DEFAULT_PART_TASKS_ABOVE,
          ),
        }),
        {},
      ),
      sessionDurationSeconds: z._default(
        z.number().check(z.int(), z.minimum(MIN_SESSION_SECONDS), z.maximum(MAX_ROLE_CHAINING_SECONDS)),
        MAX_ROLE_CHAINING_SECONDS,
      ),
    }),
    {},
  ),
});

/** A validated job, with defaults filled in. */
export type Job = z.output<typeof jobSchema>;
/** A job as a person writes it: optional fields may be left out. */
export type JobInput = z.input<typeof jobSchema>;

/**
 * Validates a job (the scheduled event's payload) once, at the edge.
 *
 * @throws JobValidationError naming every offending field, e.g. `job.source.roleArn must be ...`
 */
export function parseJob(input: unknown): Job {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new JobValidationError(
      `the event must be a JSON object describing a job (jobId, source, destination), got ${describe(input)}`,
    );
  }
  const result = jobSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = ['job', ...issue.path.map(String)].join('.');
    return `${path} ${issue.message}${received(input, issue.path)}`;
  });
  throw new JobValidationError(`invalid job: ${problems.join('; ')}`, { problems });
}

function received(input: unknown, path: PropertyKey[]): string {
  let value: unknown = input;
  for (const segment of path) {
    // Stryker disable next-line ConditionalExpression,LogicalOperator: the input is an object (checked above) and zod's issue paths only run through objects it found, so no segment meets null or a primitive
    if (value === null || typeof value !== 'object') return '';
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value === undefined ? '' : `, got ${describe(value)}`;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
