import type { SyncMetrics } from '../run/sync-types.js';

/**
 * Emits one figure of `jobId` on the {service} and {service, jobId} dimension sets, as a run's figures are:
 * a metric of its own each, since one batch of the copy queue may serve several jobs.
 */
export function addJobMetric(
  metrics: SyncMetrics | undefined,
  jobId: string,
  name: string,
  unit: 'Count' | 'Milliseconds',
  value: number,
): void {
  if (!metrics) return;
  const single = metrics.singleMetric?.() ?? metrics;
  single.addDimensions({});
  single.addDimensions({ jobId });
  single.addMetric(name, unit, value);
}
