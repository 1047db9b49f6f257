import { type PreviewDependencies, previewJob } from '../functions/core/diagnose/preview-job.js';
import type { Job } from '../functions/core/job.js';
import type { CommandResult } from './command-result.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, formatTable } from './format-output.js';

/** `plan`: what a run would do now, and why; no lease, nothing written. */
export async function planJobCommand(
  deps: PreviewDependencies,
  job: Job,
  limit: number | undefined,
): Promise<CommandResult> {
  const preview = await previewJob(deps, job, { limit });
  const { totals } = preview;
  const rows = preview.items.map((item) => [
    item.action === 'copy'
      ? `copy (${item.reason})`
      : item.action === 'archived'
        ? 'archived'
        : 'deleted at source',
    item.key,
    item.size === undefined ? '' : formatBytes(item.size),
  ]);
  const lines = [
    `${totals.copy} to copy (${totals.new} new, ${totals.changed} changed, ${totals.retry} retry), ` +
      `${formatBytes(totals.bytes)}; ${totals.unchanged} unchanged; ${totals.archived} archived; ` +
      `${totals.deletedAtSource} deleted at source` +
      (totals.deletedAtSource > 0
        ? preview.mirror
          ? ' (mirror: their copies will be deleted)'
          : ' (kept: not a mirror job)'
        : ''),
  ];
  if (rows.length > 0) lines.push('', formatTable([['action', 'key', 'size'], ...rows]));
  if (preview.truncated)
    lines.push(`... and more: raise --limit (now ${preview.items.length}) or use --json`);
  return { exitCode: EXIT.ok, json: preview, text: lines.join('\n') };
}
