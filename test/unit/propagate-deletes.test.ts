/**
 * A mirror pass's deletion of a key gone from the source, against an event that re-created it after the
 * listing (docs/event-driven.md, "A deletion racing an event"): the DeleteObject is conditional on the copy
 * the ledger records, and a refusal the ledger explains leaves the key to the event.
 */
import { DeleteObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { parseJob } from '../../functions/core/job.js';
import { RunTally } from '../../functions/core/report/run-tally.js';
import { DeletePropagator } from '../../functions/core/run/propagate-deletes.js';
import type { RunContext } from '../../functions/core/run/run-context.js';
import { InterruptedWrites } from '../../functions/core/state/interrupted-writes.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';

const s3Mock = mockClient(S3Client);
const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

const read = 'A'.repeat(64);
const later = 'B'.repeat(64);
const planned: LedgerEntry = {
  key: 'in/a.txt',
  etag: '"e0"',
  destinationKey: 'out/a.txt',
  destinationEtag: '"d0"',
  sequencer: read,
};

/** A mirror run's context whose ledger holds `now` for the key, and whose ledger delete answers `kept`. */
function mirrorRun(now: LedgerEntry | undefined, kept?: LedgerEntry) {
  const state = {
    ledgerEntry: vi.fn(async () => now),
    deleteLedgerEntry: vi.fn(async () => kept),
    markDeletion: vi.fn(async () => ({ marked: true, token: 'mark' })),
    clearDeletionMark: vi.fn(async () => {}),
    widenDeletionMark: vi.fn(async () => true),
  };
  const tally = new RunTally();
  const run = {
    deps: { destinationS3: new S3Client({ region: 'us-east-1' }), state },
    job: parseJob({
      jobId: 'mirror',
      source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'src', prefix: 'in/' },
      destination: { bucket: 'dst', prefix: 'out/' },
      options: { mirror: true },
    }),
    log: { debug: () => {}, info: () => {}, warn: () => {} },
    lease: { fence: 7 },
    control: { runId: 'run' },
    tally,
    interrupted: new InterruptedWrites(),
  } as unknown as RunContext;
  return { propagator: new DeletePropagator(run), state, tally };
}

describe('DeletePropagator (a mirror pass deleting a gone key)', () => {
  beforeEach(() => s3Mock.reset());

  it('deletes only the copy the ledger records, then its entry under the sequencer the plan read', async () => {
    s3Mock.on(DeleteObjectCommand).resolves({});
    const { propagator, state, tally } = mirrorRun(planned);

    await propagator.propagate(planned);

    expect(s3Mock.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input)).toEqual([
      { Bucket: 'dst', Key: 'out/a.txt', IfMatch: '"d0"' },
    ]);
    expect(state.deleteLedgerEntry).toHaveBeenCalledWith('mirror', 'in/a.txt', 7, read, 'mark');
    expect(tally.counts.deleted).toBe(1);
  });

  it("leaves the event's copy and entry when the DeleteObject is refused and the ledger moved on", async () => {
    s3Mock.on(DeleteObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const { propagator, state, tally } = mirrorRun({ ...planned, destinationEtag: '"d1"', sequencer: later });

    await propagator.propagate(planned);

    expect(s3Mock.commandCalls(DeleteObjectCommand)).toHaveLength(1);
    expect(state.deleteLedgerEntry).not.toHaveBeenCalled();
    expect(tally.counts.deleted).toBe(0);
    expect(tally.progress).toMatchObject({ skipped: 1, failed: 0 });
  });

  it('deletes what is there when the DeleteObject is refused and the ledger did not move (not our copy)', async () => {
    s3Mock.on(DeleteObjectCommand, { IfMatch: '"d0"' }).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(DeleteObjectCommand, { IfMatch: undefined }).resolves({});
    const { propagator, tally } = mirrorRun(planned);

    await propagator.propagate(planned);

    expect(s3Mock.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.IfMatch)).toEqual([
      '"d0"',
      undefined,
    ]);
    expect(tally.counts.deleted).toBe(1);
  });

  it('counts a copy already gone (NoSuchKey to the conditional delete) as deleted', async () => {
    s3Mock.on(DeleteObjectCommand).rejects(s3Error('NoSuchKey', 404));
    const { propagator, state, tally } = mirrorRun(planned);

    await propagator.propagate(planned);

    expect(state.deleteLedgerEntry).toHaveBeenCalledOnce();
    expect(tally.counts.deleted).toBe(1);
  });

  it("leaves the key to the event when the ledger delete keeps the event's later entry", async () => {
    s3Mock.on(DeleteObjectCommand).resolves({});
    const { propagator, tally } = mirrorRun(planned, { ...planned, sequencer: later });

    await propagator.propagate(planned);

    expect(tally.counts.deleted).toBe(0);
    expect(tally.progress).toMatchObject({ skipped: 1, failed: 0 });
  });
});
