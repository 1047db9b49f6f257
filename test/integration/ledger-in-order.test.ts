/**
 * The event worker's ledger write (putLedgerEntryInOrder) against DynamoDB Local's conditions: the
 * sequencer keeps a key from moving backwards, the fence keeps an event from beating a newer pass.
 */
import { describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../functions/core/errors.js';
import { storedSequencer } from '../../functions/core/events/sequencer.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';
import { useSandbox } from './helpers.js';

const { deps } = useSandbox();
const { state } = deps;

const entry = (etag: string, sequencer: string): LedgerEntry & { sequencer: string } => ({
  key: 'k',
  etag,
  destinationKey: 'k',
  destinationEtag: etag,
  sequencer: storedSequencer(sequencer),
});

describe('StateStore.putLedgerEntryInOrder (DynamoDB Local)', () => {
  it('records a later change and refuses the same or an earlier one as stale, keeping the later entry', async () => {
    const jobId = `in-order-${Date.now()}`;
    expect(await state.putLedgerEntryInOrder(jobId, entry('e2', '0062E99A88DC4074B0'), 1)).toBe('recorded');

    // S3's rule: right-padded, "…4A" is earlier than "…4B0" although it is shorter.
    const earlier = await state.putLedgerEntryInOrder(jobId, entry('e1', '0062E99A88DC4074A'), 1);
    const same = await state.putLedgerEntryInOrder(jobId, entry('e1', '0062E99A88DC4074B'), 1);
    const later = await state.putLedgerEntryInOrder(jobId, entry('e3', '0062e99a88dc4074b1'), 1);

    expect([earlier, same, later]).toEqual(['stale', 'stale', 'recorded']);
    expect(await state.ledgerEntry(jobId, 'k')).toMatchObject({
      etag: 'e3',
      sequencer: storedSequencer('0062E99A88DC4074B1'),
    });
  });

  it('refuses a later change under an older fence than a pass wrote with, as a lost lease', async () => {
    const jobId = `in-order-fence-${Date.now()}`;
    await state.putLedgerEntry(jobId, { key: 'k', etag: 'pass', destinationEtag: 'pass' }, 2);

    const write = state.putLedgerEntryInOrder(jobId, entry('event', '0062E99A88DC4074B0'), 1);

    await expect(write).rejects.toBeInstanceOf(LeaseLostError);
    expect(await state.ledgerEntry(jobId, 'k')).toMatchObject({ etag: 'pass' });
    expect(await state.putLedgerEntryInOrder(jobId, entry('event', '0062E99A88DC4074B0'), 2)).toBe(
      'recorded',
    );
  });

  it('lets a pass with a newer fence overwrite what an event recorded', async () => {
    const jobId = `in-order-pass-${Date.now()}`;
    await state.putLedgerEntryInOrder(jobId, entry('event', '0062E99A88DC4074B0'), 1);

    await state.putLedgerEntry(jobId, { key: 'k', etag: 'pass', destinationEtag: 'pass' }, 2);

    expect(await state.ledgerEntry(jobId, 'k')).toMatchObject({ etag: 'pass' });
  });
});
