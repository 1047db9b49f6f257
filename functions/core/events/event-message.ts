/**
 * An S3 event as it reaches the copy queue (docs/event-driven.md, "Decisions"): wrapped
 * by the job's rule on this account's S3-event bus, whose InputTransformer names the job, or bare, from a
 * rule without one. Copy tasks share the queue; a task always has `kind`, an event never does.
 */
import * as z from 'zod/mini';
import { JobValidationError } from '../errors.js';
import { type Job, parseJob } from '../job.js';
import { ChangeEventError, type ObjectChange, parseObjectChange } from './object-change.js';

/** Which job(s) an event is for. */
export type EventRoute =
  /** The rule carries the whole job, as the schedule's input does (template.yaml's job). */
  | { by: 'job'; job: Job }
  /** The rule names a job stored as data (`cross-account-sync jobs add`). */
  | { by: 'jobId'; jobId: string }
  /** A bare event: every stored job that follows events of its bucket and prefix. */
  | { by: 'match' };

/** One event read from the copy queue, with the way to its job(s). */
export interface EventMessage {
  change: ObjectChange;
  route: EventRoute;
}

/**
 * Whether a copy-queue message is an S3 event (wrapped or bare) rather than a copy task. Cheap and
 * lenient: a message that looks like neither is left to the copy task's parser, which names the problem.
 */
export function isEventMessage(body: string): boolean {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return false;
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json) || 'kind' in json) return false;
  return 'event' in json || ('source' in json && 'detail-type' in json);
}

const envelopeSchema = z.strictObject({
  event: z.unknown(),
  job: z.optional(z.unknown()),
  jobId: z.optional(z.string().check(z.minLength(1))),
});

/**
 * Reads an event message: `{"job": <job>, "event": <S3 event>}`, `{"jobId": "...", "event": ...}`, or the
 * S3 event alone.
 *
 * @throws ChangeEventError naming what is wrong: not JSON, not an S3 change event, a wrapper with both or
 *   neither of `job` and `jobId`, or a job the schema refuses (the rule's InputTransformer needs fixing)
 */
export function parseEventMessage(body: string): EventMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    // parseObjectChange names a body that is not JSON, with a preview of it.
    return { change: parseObjectChange(body), route: { by: 'match' } };
  }
  if (json === null || typeof json !== 'object' || !('event' in json)) {
    return { change: parseObjectChange(json), route: { by: 'match' } };
  }
  const wrapped = envelopeSchema.safeParse(json);
  if (!wrapped.success) {
    const problems = wrapped.error.issues.map((issue) =>
      [['message', ...issue.path.map(String)].join('.'), issue.message].join(' '),
    );
    throw new ChangeEventError(
      `an event message is {"job" or "jobId", "event"} as the rule's InputTransformer writes it: ${problems.join('; ')}`,
    );
  }
  const { event, job, jobId } = wrapped.data;
  if ((job === undefined) === (jobId === undefined)) {
    throw new ChangeEventError(
      'an event message names its job with exactly one of "job" (the job itself) or "jobId" (a stored job); ' +
        'fix the InputTransformer of the rule that sends it',
    );
  }
  const change = parseObjectChange(event);
  if (jobId !== undefined) return { change, route: { by: 'jobId', jobId } };
  try {
    return { change, route: { by: 'job', job: parseJob(job) } };
  } catch (error) {
    if (!(error instanceof JobValidationError)) throw error;
    throw new ChangeEventError(`the rule's job is not valid (fix its InputTransformer): ${error.message}`, {
      cause: error,
    });
  }
}
