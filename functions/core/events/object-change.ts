/**
 * Events from AccountA's bucket (issue 12): an S3 event that EventBridge forwarded to this account, read as a
 * hint that one key changed. The hint is never trusted for the bytes: the worker reads the object's current
 * state, pinned by its ETag, exactly as a listed object is read.
 */
import * as z from 'zod/mini';
import '../schema-messages.js';
import { SyncError } from '../errors.js';
import { SEQUENCER_PATTERN } from './sequencer.js';

/** An event the sync cannot act on: not JSON, not an S3 object event, or missing what ordering needs. */
export class ChangeEventError extends SyncError {}

/** What one S3 event says happened to one key. */
export interface ObjectChange {
  /** EventBridge's id for the event: a redelivery carries the same one. */
  eventId: string;
  bucket: string;
  /**
   * The key as S3 stores it. EventBridge's S3 events carry the key as is, unlike S3's own notifications
   * to SQS or SNS, which URL-encode it (`a b` arrives there as `a+b`).
   */
  key: string;
  /** `created` also covers a completed restore: the object became readable. */
  change: 'created' | 'deleted';
  /** Orders the changes of this key (`compareSequencers`). */
  sequencer: string;
  /** When S3 made the change: the start of the object's lag. */
  eventTime: Date;
  etag?: string;
  size?: number;
  versionId?: string;
}

/**
 * The detail types a producer's rule forwards (source-account/template.yaml). Tagging, ACL and
 * storage-class events change nothing the sync copies, so a rule that forwards them is too wide.
 */
const CHANGES = {
  'Object Created': 'created',
  'Object Restore Completed': 'created',
  'Object Deleted': 'deleted',
} as const;

const TIME_ERROR = 'must be the time of the change, an ISO 8601 date-time as EventBridge writes it';

const eventSchema = z.object({
  id: z.string().check(z.minLength(1)),
  source: z.literal('aws.s3', { error: 'must be "aws.s3": only S3 events are changes to copy' }),
  'detail-type': z.enum(Object.keys(CHANGES) as [keyof typeof CHANGES], {
    error: `must be one of ${Object.keys(CHANGES).join(', ')}: widen or narrow the producer's rule to exactly these`,
  }),
  /**
   * EventBridge writes an ISO time. moto (5.2.1) writes epoch seconds in what an InputTransformer's
   * `<aws.events.event.json>` gives the target (its stored event keeps the number), so that is read too.
   */
  time: z.union([
    z.iso.datetime({ offset: true, error: TIME_ERROR }),
    z.number().check(z.positive({ error: TIME_ERROR })),
  ]),
  detail: z.object({
    bucket: z.object({ name: z.string().check(z.minLength(1)) }),
    object: z.object({
      key: z.string().check(z.minLength(1)),
      sequencer: z.string().check(z.regex(SEQUENCER_PATTERN, 'must be hexadecimal digits, as S3 writes it')),
      etag: z.optional(z.string().check(z.minLength(1))),
      /** moto (5.2.1) writes the ETag under this name; S3 writes `etag`. */
      eTag: z.optional(z.string().check(z.minLength(1))),
      size: z.optional(z.number().check(z.int(), z.nonnegative())),
      'version-id': z.optional(z.string().check(z.minLength(1))),
    }),
  }),
});

/**
 * Reads one S3 EventBridge event (an object, or a queue message's JSON body). An event that is not one
 * names the field that is wrong; the worker reports it as a failed item, so it ends in the dead-letter
 * queue instead of being guessed at.
 */
export function parseObjectChange(input: unknown): ObjectChange {
  const json = typeof input === 'string' ? parseJson(input) : input;
  const result = eventSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${['event', ...issue.path.map(String)].join('.')} ${issue.message}`,
    );
    throw new ChangeEventError(`not an S3 change event: ${problems.join('; ')}`);
  }
  const event = result.data;
  const object = event.detail.object;
  const etag = object.etag ?? object.eTag;
  // An unversioned bucket's events may say "null" for the version id, as S3's notifications do.
  const versionId = object['version-id'] === 'null' ? undefined : object['version-id'];
  return {
    eventId: event.id,
    bucket: event.detail.bucket.name,
    key: object.key,
    change: CHANGES[event['detail-type']],
    sequencer: object.sequencer,
    eventTime: typeof event.time === 'number' ? new Date(event.time * 1000) : new Date(event.time),
    ...(etag === undefined ? {} : { etag }),
    ...(object.size === undefined ? {} : { size: object.size }),
    ...(versionId === undefined ? {} : { versionId }),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const preview = text.length > 80 ? `${text.slice(0, 77)}...` : text;
    throw new ChangeEventError(`an S3 change event is a JSON object; got ${preview}`);
  }
}
