import type { Job } from '../functions/core/job.js';
import { type RunSummary, type SyncDependencies, syncJob } from '../functions/core/run/sync-job.js';
import type { CliIo, CommandResult } from './command-result.js';
import type { ProgressDisplay } from './draw-progress.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, formatDuration, formatTable } from './format-output.js';

/** `run`: one sync of the job, as the schedule would run it; exit 1 when some objects failed. */
export async function runJobCommand(
  deps: SyncDependencies,
  job: Job,
  io: Pick<CliIo, 'signal'>,
  progress?: ProgressDisplay,
): Promise<CommandResult> {
  let summary: RunSummary;
  try {
    summary = await syncJob(deps, job, {
      signal: io.signal,
      onProgress: (counts) => progress?.update(counts),
    });
  } finally {
    progress?.clear();
  }
  const interrupted = io.signal?.aborted === true;
  const text = formatRunSummary(summary);
  return {
    exitCode: interrupted ? EXIT.interrupted : summary.failed > 0 ? EXIT.failedObjects : EXIT.ok,
    json: summary,
    text: interrupted ? `${text}\n\n${interruptedNote(summary)}` : text,
  };
}

/** What Ctrl-C left, in the summary's own terms, so the next run's summary can be checked against it. */
function interruptedNote(summary: RunSummary): string {
  const resume =
    summary.resumeAfter === undefined ? 'starts the pass again' : `resumes after ${summary.resumeAfter}`;
  return (
    `stopped by Ctrl-C: ${summary.copied} copied; ${summary.deferred} copies in flight were cut and deferred ` +
    `(${summary.failed} failed). The checkpoint is saved: the next run ${resume} and copies what is left, ` +
    'the deferred and failed objects included.'
  );
}

/** The summary table printed after a run. */
export function formatRunSummary(summary: RunSummary): string {
  const rows: string[][] = [
    ['run', summary.runId],
    ['job', summary.jobId],
    ['status', summary.status],
    ['copied', `${summary.copied} (${formatBytes(summary.bytes)})`],
    ['skipped', String(summary.skipped)],
    ['failed', String(summary.failed)],
    // Cut or left unstarted by the deadline or Ctrl-C; the next run copies them.
    ['deferred', String(summary.deferred)],
    ['archived', String(summary.archived)],
    ['vanished', String(summary.vanished)],
    ['deleted', String(summary.deleted)],
    ['duration', formatDuration(summary.durationMs)],
    ['lag', `${summary.replicationLagSeconds} s (since first seen uncopied)`],
    ['backlog', `${summary.backlogObjects} (${formatBytes(summary.backlogBytes)}) left uncopied`],
    [
      'manifest',
      summary.manifest
        ? `s3://${summary.manifest.bucket}/${summary.manifest.manifestKey}`
        : '- (nothing copied)',
    ],
    [
      'requests',
      `${summary.listRequests} LIST, ${summary.readCapacityUnits} RCU, ${summary.writeCapacityUnits} WCU`,
    ],
  ];
  if (summary.resumeAfter !== undefined) rows.push(['resumes after', summary.resumeAfter]);
  const lines = [
    formatTable([['', ''], ...rows])
      .split('\n')
      .slice(2)
      .join('\n'),
  ];
  if (summary.failures.length > 0) {
    lines.push(
      '',
      formatTable([['failed key', 'reason'], ...summary.failures.map((f) => [f.key, f.reason])]),
    );
  }
  if (summary.vanishedKeys.length > 0) {
    lines.push(
      '',
      formatTable([['vanished key', 'reason'], ...summary.vanishedKeys.map((v) => [v.key, v.reason])]),
    );
  }
  if (summary.archivedKeys.length > 0) {
    lines.push('', 'archived (restore them to copy):', ...summary.archivedKeys.map((key) => `  ${key}`));
  }
  return lines.join('\n');
}
