/**
 * The multipart uploads earlier runs' deadlines cut (a giant object's copy that did not finish within one
 * invocation), kept by source key from the run's start until that key's copy continues one, so an object
 * too big for one run still finishes; those of runs that died, and those no copy took, are aborted.
 */
import { cleanOrphanUploads } from '../copy/clean-orphan-uploads.js';
import type { MultipartUploadRecord } from '../state/state-store.js';
import type { RunContext } from './run-context.js';

export class CutUploads {
  /** By source key, until this run's copy of the key takes its upload. */
  #byKey = new Map<string, MultipartUploadRecord>();

  constructor(private readonly run: Pick<RunContext, 'deps' | 'job' | 'log'>) {}

  /** Aborts the multipart uploads of runs that died; keeps those a deadline cut for their key's copy. */
  async adopt(): Promise<void> {
    const { deps, job, log } = this.run;
    const orphans = await cleanOrphanUploads(deps.destinationS3, deps.state, job, { keepContinuable: true });
    this.#byKey = orphans.continuable;
    if (orphans.aborted > 0) {
      log.info('aborted multipart uploads left by earlier runs', { aborted: orphans.aborted });
    }
  }

  /** Aborts the cut uploads no copy of a full pass took (their key was deleted or no longer needs copying). */
  async abortUntaken(): Promise<void> {
    const { deps, job } = this.run;
    await cleanOrphanUploads(deps.destinationS3, deps.state, job, {
      keepContinuable: false,
      records: [...this.#byKey.values()],
    });
  }

  /** The cut upload of `key`, for its one copy this run (whose tries each check that it still exists). */
  take(key: string): MultipartUploadRecord | undefined {
    const record = this.#byKey.get(key);
    this.#byKey.delete(key);
    return record;
  }
}
