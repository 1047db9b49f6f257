/**
 * Inline or fan-out (docs/fan-out.md): a job runs in the scheduled function unless the deployment has the
 * fan-out queues and the job asks for fan-out (`always`), or its last pass listed `aboveKeys` keys or more
 * (`auto`). A job whose fan-out pass is still at work stays in fan-out mode, which answers `busy`, so an
 * inline run never works beside a pass's workers.
 */
import type { Job } from '../job.js';
import type { SyncDependencies } from '../run/sync-types.js';
import { PassTally } from '../state/pass-tally.js';

export async function fansOut(deps: SyncDependencies, job: Job): Promise<boolean> {
  const { mode, aboveKeys } = job.options.fanOut;
  if (!deps.queues || mode === 'never') return false;
  if (mode === 'always') return true;
  const { state } = deps;
  const current = await PassTally.current(state.client, state.tableName, job.jobId);
  if (current !== undefined) {
    const pass = await new PassTally(state.client, state.tableName, job.jobId, current).find();
    if (pass?.state === 'running' || pass?.state === 'ending') return true;
  }
  const [last] = await state.recentRuns(job.jobId, 1);
  return typeof last?.listed === 'number' && last.listed >= aboveKeys;
}
