/**
 * Which job(s) an event belongs to. The job's rule says it (EventRoute); a bare event is matched against
 * the stored jobs. A job acts on an event only when it follows events (`options.events`), is not paused,
 * and the key is in its source bucket and prefix; otherwise the reason is said, and the event dropped.
 */
import type { Job } from '../job.js';
import type { JobStore } from '../state/job-store.js';
import { EventJobs } from './event-jobs.js';
import type { EventMessage } from './event-message.js';
import type { ObjectChange } from './object-change.js';

/** The jobs an event is for, or why it is for none. */
export type Routing = { jobs: Job[] } | { jobs: []; dropped: string };

/**
 * Resolves `message`'s jobs. A bare event is matched against `followers`, the stored jobs that follow
 * events as kept by the container's EventWorker (one read of the store per EVENT_JOBS_TTL_MS, and one more
 * before a miss is dropped); without it, the store is read page by page for this event (one Query per 100
 * jobs).
 *
 * @throws StateStoreError when the job store cannot be read (the record comes back)
 */
export async function routeEvent(
  jobs: Pick<JobStore, 'get' | 'all'>,
  { change, route }: EventMessage,
  followers: EventJobs = new EventJobs(jobs),
): Promise<Routing> {
  if (route.by === 'job') return routed([route.job], change, 'the rule names');
  if (route.by === 'jobId') {
    const stored = await jobs.get(route.jobId);
    if (!stored) {
      return {
        jobs: [],
        dropped: `no job "${route.jobId}" in the job store (removed since the rule was made?); remove its rule`,
      };
    }
    if (stored.status === 'paused') {
      return {
        jobs: [],
        dropped: `job "${route.jobId}" is paused; its next pass after a resume copies the key`,
      };
    }
    return routed([stored.job], change, 'the rule names');
  }
  const matching = await followers.following((job) => notFollowed(job, change) === undefined);
  if (matching.length > 0) return { jobs: matching };
  return {
    jobs: [],
    dropped: `no active stored job with options.events follows s3://${change.bucket}/${change.key}`,
  };
}

function routed(candidates: Job[], change: ObjectChange, how: string): Routing {
  const [job] = candidates;
  const reason = job && notFollowed(job, change);
  if (job && reason === undefined) return { jobs: [job] };
  return { jobs: [], dropped: `the job ${how}, "${job?.jobId}", ${reason}` };
}

/** Why `job` does not act on `change`, or undefined when it does. */
export function notFollowed(job: Job, change: ObjectChange): string | undefined {
  if (!job.options.events) return 'does not follow events (options.events is off): its passes copy the key';
  if (change.bucket !== job.source.bucket) return `reads bucket ${job.source.bucket}, not ${change.bucket}`;
  if (!change.key.startsWith(job.source.prefix)) return `reads only under "${job.source.prefix}"`;
  return undefined;
}
