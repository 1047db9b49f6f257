/**
 * The stored jobs that follow events, kept per container for a bare event's routing (docs/event-driven.md,
 * "Bare events"). Reading the whole job store (one Query per 100 jobs) for every record made a burst of N
 * events cost N reads; kept for EVENT_JOBS_TTL_MS, the burst costs one, and a job added, paused or removed
 * is seen within that time. An event no kept job follows reads once more before it is dropped, so a job
 * added since the last read is not missed.
 */
import type { Job } from '../job.js';
import type { JobStore } from '../state/job-store.js';

/**
 * How long the read jobs stand for the store. A minute: short next to the daily reconciling pass that
 * catches what an event routed to a stale set missed, long enough for a burst to cost one read.
 */
export const EVENT_JOBS_TTL_MS = 60_000;

/** The active stored jobs with `options.events`, read at most once per EVENT_JOBS_TTL_MS (and on a miss). */
export class EventJobs {
  #read?: { at: number; jobs: Promise<Job[]> };

  constructor(
    private readonly store: Pick<JobStore, 'all'>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The jobs `acts` accepts (route-event's notFollowed for one change): from the kept read while it is
   * fresh; when none of them does, from a new read (unless the kept one was made for this very call).
   *
   * @throws StateStoreError when the job store cannot be read (nothing is kept; the next event reads again)
   */
  async following(acts: (job: Job) => boolean): Promise<Job[]> {
    const fresh = this.#read !== undefined && this.now() - this.#read.at < EVENT_JOBS_TTL_MS;
    const kept = fresh && this.#read ? this.#read.jobs : this.#reread();
    const matching = (await kept).filter(acts);
    if (matching.length > 0 || !fresh) return matching;
    return (await this.#reread()).filter(acts);
  }

  #reread(): Promise<Job[]> {
    const read = { at: this.now(), jobs: readFollowers(this.store) };
    this.#read = read;
    // A failed read is not kept: the next event reads again rather than failing on the same error.
    read.jobs.catch(() => {
      if (this.#read === read) this.#read = undefined;
    });
    return read.jobs;
  }
}

async function readFollowers(store: Pick<JobStore, 'all'>): Promise<Job[]> {
  const jobs: Job[] = [];
  for await (const stored of store.all()) {
    if (stored.status === 'active' && stored.job.options.events) jobs.push(stored.job);
  }
  return jobs;
}
