import {
  type JobStatus,
  type JobStatusDependencies,
  readJobStatus,
  requireKnownJobs,
} from '../functions/core/diagnose/read-job-status.js';
import type { CommandResult } from './command-result.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, formatTable } from './format-output.js';

/** `status`: per job, the last run, the lag, the failing keys and the lease. Reads only. */
export async function showStatusCommand(
  deps: JobStatusDependencies,
  jobIds: string[],
): Promise<CommandResult> {
  const jobs = await Promise.all(jobIds.map((jobId) => readJobStatus(deps, jobId)));
  await requireKnownJobs(deps, jobs);
  const rows = jobs.map((job) => {
    const run = job.lastRun;
    return [
      job.jobId,
      run ? `${run.status} ${run.finishedAt}` : 'never ran',
      run ? `${run.copied} copied, ${run.failed} failed` : '-',
      job.replicationLagSeconds === undefined ? '-' : `${job.replicationLagSeconds} s`,
      job.backlog === undefined ? '-' : `${job.backlog.objects} (${formatBytes(job.backlog.bytes)})`,
      String(job.failureCount),
      leaseText(job),
    ];
  });
  const lines = [
    formatTable([['job', 'last run', 'objects', 'lag', 'backlog', 'failing keys', 'lease'], ...rows]),
  ];
  for (const job of jobs.filter((j) => j.failures.length > 0)) {
    lines.push(
      '',
      `${job.jobId}: failing keys${job.failureCount > job.failures.length ? ` (first ${job.failures.length})` : ''}`,
      formatTable([
        ['key', 'attempts', 'since', 'reason'],
        ...job.failures.map((f) => [f.key, String(f.attempts), f.at, f.reason]),
      ]),
    );
  }
  return { exitCode: EXIT.ok, json: { jobs }, text: lines.join('\n') };
}

function leaseText(job: JobStatus): string {
  const lease = job.lease;
  if (!lease?.held) return 'free';
  const since = lease.acquiredAt === undefined ? '' : ` since ${lease.acquiredAt}`;
  const dead = lease.renewalOverdue ? ' (not renewed: its run may have died; `unlock` ends it)' : '';
  return `held by ${lease.owner}${since}, expires ${lease.expiresAt}${dead}`;
}
