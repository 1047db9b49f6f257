import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SyncError } from '../errors.js';
import { clientOf, type LazyClient } from '../lazy-client.js';

/** The `source` of every event this project publishes; rules match on it. */
export const EVENT_SOURCE = 'cross-account-sync';
/** The `detail-type` of the event sent at the end of each run. */
export const RUN_COMPLETED = 'Sync Run Completed';

/**
 * Announces a finished run on an EventBridge bus, so pipelines can start on the new batch instead of
 * polling. The detail carries the counts and, when the run copied anything, where its manifest is.
 */
export async function publishRunEvent(
  events: LazyClient<EventBridgeClient>,
  busName: string,
  detail: object,
): Promise<void> {
  // Loaded here, not at start: see lazy-client.ts.
  const { PutEventsCommand } = await import('@aws-sdk/client-eventbridge');
  const result = await (await clientOf(events)).send(
    new PutEventsCommand({
      Entries: [
        {
          EventBusName: busName,
          Source: EVENT_SOURCE,
          DetailType: RUN_COMPLETED,
          Detail: JSON.stringify(detail),
        },
      ],
    }),
  );
  const failed = result.Entries?.find((entry) => entry.ErrorCode);
  if (result.FailedEntryCount || failed) {
    throw new SyncError(
      `EventBridge refused the "${RUN_COMPLETED}" event on bus ${busName}: ` +
        (failed ? `${failed.ErrorCode} ${failed.ErrorMessage ?? ''}`.trim() : 'no reason given'),
    );
  }
}
