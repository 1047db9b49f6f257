import { StateStore } from '../../functions/core/state-store.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { forEachConcurrently } from './seed.js';

/** Ledger writes before the first measurement; the JVM's compiler has settled by then. */
const WARM_UP_WRITES = 3_000;

/**
 * Sends DynamoDB Local the sync's own ledger writes (StateStore.putLedgerEntry, conditional, to a job of
 * its own) before anything is measured. A fresh JVM spends its first few thousand requests compiling
 * (about twice the CPU per write, measured); the real DynamoDB has no such phase, so without this the
 * first run of the first workload would carry it.
 */
export async function warmUpStateTable(sandbox: Sandbox): Promise<void> {
  const state = new StateStore(sandboxDynamo(sandbox), sandbox.accountB.tableName);
  const copiedAt = new Date().toISOString();
  await forEachConcurrently(WARM_UP_WRITES, 16, (index) =>
    state.putLedgerEntry(
      'bench-warm-up',
      {
        key: `warm-up/obj-${String(index).padStart(6, '0')}`,
        etag: '"0123456789abcdef0123456789abcdef"',
        size: 16_384,
        lastModified: copiedAt,
        sha256: 'x'.repeat(44),
        destinationKey: `warm-up/obj-${index}`,
        destinationEtag: '0123456789abcdef0123456789abcdef',
        verifiedBy: 'etag-md5',
        copiedAt,
        runId: 'warm-up',
      },
      1,
    ),
  );
}
