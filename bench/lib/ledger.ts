import type { SourceObject } from '../../functions/core/plan/list-source.js';
import { copiedLedgerEntry } from '../../functions/core/run/sync-job.js';
import { type LedgerEntry, StateStore } from '../../functions/core/state/state-store.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { forEachConcurrently } from './seed.js';

/** Ledger writes before the first measurement; the JVM's compiler has settled by then. */
const WARM_UP_WRITES = 3_000;

/** Writes `entries` to `jobId`'s ledger as the sync does (StateStore.putLedgerEntry, conditional), 16 at once. */
export async function writeLedgerEntries(
  sandbox: Sandbox,
  jobId: string,
  entries: LedgerEntry[],
): Promise<void> {
  const state = new StateStore(sandboxDynamo(sandbox), sandbox.accountB.tableName);
  await forEachConcurrently(entries.length, 16, (index) =>
    state.putLedgerEntry(jobId, entries[index] as LedgerEntry, 1),
  );
}

/**
 * Sends DynamoDB Local the sync's own ledger writes, to a job of its own, before anything is measured.
 * A fresh JVM spends its first few thousand requests compiling (about twice the CPU per write,
 * measured); the real DynamoDB has no such phase, so without this the first run of the first workload
 * would carry it.
 */
export async function warmUpStateTable(sandbox: Sandbox): Promise<void> {
  const copied = { sha256: 'x'.repeat(44), destinationEtag: '0'.repeat(32), verifiedBy: 'etag-md5' } as const;
  const entries = Array.from({ length: WARM_UP_WRITES }, (_, index) => {
    const key = `warm-up/obj-${String(index).padStart(6, '0')}`;
    const object: SourceObject = {
      key,
      etag: `"${'0'.repeat(32)}"`,
      size: 16_384,
      lastModified: new Date(),
      storageClass: 'STANDARD',
    };
    return copiedLedgerEntry(object, key, copied, 'warm-up');
  });
  await writeLedgerEntries(sandbox, 'bench-warm-up', entries);
}
