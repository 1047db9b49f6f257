import type { JobStatusDependencies } from '../functions/core/diagnose/read-job-status.js';
import { unlockJob } from '../functions/core/diagnose/unlock-job.js';
import type { CommandResult } from './command-result.js';
import { EXIT } from './exit-codes.js';

/** `unlock`: ends the lease a dead run left behind (refused while its holder renews it, unless --force). */
export async function unlockJobCommand(
  deps: JobStatusDependencies,
  jobId: string,
  force: boolean,
): Promise<CommandResult> {
  const result = await unlockJob(deps, jobId, { force });
  return { exitCode: EXIT.ok, json: result, text: result.message };
}
