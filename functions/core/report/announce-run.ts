/** Announcing a finished run: its metrics, and its "Sync Run Completed" event when a bus is configured. */
import { describeError } from '../errors.js';
import type { Job } from '../job.js';
import type { RunSummary, SyncDependencies, SyncLogger } from '../run/sync-types.js';
import { publishRunEvent } from './publish-run-event.js';

/**
 * Publishes the run's metrics and, unless `options.event` is false (an earlier ender of a fan-out pass
 * published it), its event. A refused event is logged, not thrown: the copies and the manifest are already
 * durable, and failing the run would only make the next one repeat nothing. Returns whether the event was
 * published now.
 */
export async function announceRun(
  deps: Pick<SyncDependencies, 'events' | 'metrics'>,
  job: Job,
  summary: RunSummary,
  log: SyncLogger,
  options: { event?: boolean } = {},
): Promise<boolean> {
  const metrics = deps.metrics;
  // Two dimension sets, so CloudWatch keeps both series: {service} adds up every job of the deployment
  // (the alarms), {service, jobId} is one job (the dashboard's per-job lines, a per-job alarm).
  metrics?.addDimensions({});
  metrics?.addDimensions({ jobId: job.jobId });
  metrics?.addMetric('objectsCopied', 'Count', summary.copied);
  metrics?.addMetric('bytesCopied', 'Bytes', summary.bytes);
  metrics?.addMetric('objectsFailed', 'Count', summary.failed);
  metrics?.addMetric('objectsDeferred', 'Count', summary.deferred);
  metrics?.addMetric('objectsArchived', 'Count', summary.archived);
  metrics?.addMetric('runDuration', 'Milliseconds', summary.durationMs);
  metrics?.addMetric('replicationLag', 'Seconds', summary.replicationLagSeconds);
  metrics?.addMetric('backlogObjects', 'Count', summary.backlogObjects);
  metrics?.addMetric('backlogBytes', 'Bytes', summary.backlogBytes);
  // Only a job that follows events has the figure; its alarm reads any value above 0.
  if (summary.missedByEvents !== undefined) {
    metrics?.addMetric('missedByEvents', 'Count', summary.missedByEvents);
  }
  if (!deps.events || options.event === false) return false;
  const {
    failures: _failures,
    archivedKeys: _archived,
    vanishedKeys: _vanished,
    inFlight: _inFlight,
    ...counts
  } = summary;
  try {
    await publishRunEvent(deps.events.client, deps.events.busName, {
      ...counts,
      source: { bucket: job.source.bucket, prefix: job.source.prefix },
      destination: { bucket: job.destination.bucket, prefix: job.destination.prefix },
    });
    return true;
  } catch (error) {
    metrics?.addMetric('eventPublishFailures', 'Count', 1);
    log.error('run event not published; the manifest and _SUCCESS marker are in place', {
      busName: deps.events.busName,
      error: describeError(error),
    });
    return false;
  }
}
