/**
 * PartUploads over real HTTP against the sandbox's DynamoDB Local: one upload id per object version and
 * pass, each part recorded once, and exactly one completer, with a takeover when the completer goes quiet.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { NewPartUpload } from '../../functions/core/state/part-upload-item.js';
import { PartUploads } from '../../functions/core/state/part-uploads.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import { useSandbox } from './helpers.js';

const { sandbox } = useSandbox();
const uploads = (fence = 3) =>
  new PartUploads(
    sandboxDynamo(sandbox),
    sandbox.accountB.tableName,
    `part-uploads-${randomBytes(3).toString('hex')}`,
    fence,
  );
const upload = (uploadId: string): NewPartUpload => ({
  key: 'big.bin',
  etag: '"e-1"',
  size: 20,
  lastModified: '2026-12-03T00:00:00.000Z',
  storageClass: 'STANDARD',
  reason: 'new',
  destinationKey: 'dst/big.bin',
  partSize: 8,
  partCount: 3,
  uploadId,
  recordKey: `record-${uploadId}`,
});
const part = (partNumber: number, etag = `"p${partNumber}"`) => ({ partNumber, etag, size: 8, md5: 'bWQ1' });

describe('PartUploads: the multipart upload of a giant object, shared by its part tasks (DynamoDB Local)', () => {
  it("keeps the first opener's upload id; every later opener adopts it", async () => {
    const state = uploads();

    const opened = await Promise.all(['a', 'b', 'c', 'd'].map((id) => state.open('v1', upload(id))));

    const kept = opened[0]?.uploadId;
    expect(opened.map((stored) => stored.uploadId)).toEqual([kept, kept, kept, kept]);
    expect(await state.find('v1')).toMatchObject({ uploadId: kept, state: 'open', recorded: 0 });
    // Another version has an upload of its own.
    expect((await state.open('v2', upload('e'))).uploadId).toBe('e');
  });

  it('records each part once however often it is delivered, and lets one worker claim completion', async () => {
    const state = uploads();
    await state.open('v', upload('u'));

    const numbers = [1, 2, 3, 1, 2, 3, 3];
    const sent = numbers.map((n, i) => part(n, `"p${n}-${i}"`));
    const results = await Promise.all(sent.map((delivery) => state.recordPart('v', delivery)));

    expect(results.filter((result) => result.recorded)).toHaveLength(3);
    expect((await state.find('v'))?.recorded).toBe(3);
    // The record that stands for each part is the one delivery's that was told it recorded it.
    const standing = sent.filter((_, i) => results[i]?.recorded);
    expect(await state.parts('v')).toEqual(standing.sort((a, b) => a.partNumber - b.partNumber));

    const claims = await Promise.all(
      ['w1', 'w2', 'w3'].map((worker) => state.claimCompletion('v', { worker, taskId: 't' }, 60_000)),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    const claimer = `w${claims.indexOf(true) + 1}`;
    expect(await state.find('v')).toMatchObject({ state: 'completing', claimedBy: claimer, claimedFor: 't' });
    // A part delivered after the claim is not recorded again.
    expect((await state.recordPart('v', part(2))).recorded).toBe(false);
    expect(await state.completed('v', 'someone-else', 'etag')).toBe(false);
    expect(await state.completed('v', claimer, 'etag')).toBe(true);
    expect(await state.claimCompletion('v', { worker: 'late', taskId: 't' }, 0, Date.now() + 3_600_000)).toBe(
      false,
    );
  });

  it('refuses a claim until every part is recorded', async () => {
    const state = uploads();
    await state.open('v', upload('u'));
    await state.recordPart('v', part(1));
    await state.recordPart('v', part(3));

    expect(await state.claimCompletion('v', { worker: 'early', taskId: 't' }, 60_000)).toBe(false);
    await state.recordPart('v', part(2));
    expect(await state.claimCompletion('v', { worker: 'last', taskId: 't' }, 60_000)).toBe(true);
  });

  it('hands a claim whose completer went quiet to the next worker, and only then', async () => {
    const state = uploads();
    await state.open('v', upload('u'));
    for (const n of [1, 2, 3]) await state.recordPart('v', part(n));
    const t0 = Date.now();
    expect(await state.claimCompletion('v', { worker: 'dies', taskId: 't' }, 60_000, t0)).toBe(true);

    expect(await state.claimCompletion('v', { worker: 'too-soon', taskId: 't' }, 60_000, t0 + 59_000)).toBe(
      false,
    );
    expect(await state.claimCompletion('v', { worker: 'takes-over', taskId: 't' }, 60_000, t0 + 61_000)).toBe(
      true,
    );
    expect(await state.completed('v', 'dies', 'etag')).toBe(false);
    expect(await state.completed('v', 'takes-over', 'etag')).toBe(true);
  });

  it('is aborted once, and takes no part and no claim after that', async () => {
    const state = uploads();
    await state.open('v', upload('u'));
    await state.recordPart('v', part(1));

    const aborts = await Promise.all([
      state.abort('v', { reason: 'source changed', taskId: 'a' }),
      state.abort('v', { reason: 'source changed', taskId: 'b' }),
    ]);

    expect(aborts.filter(Boolean)).toHaveLength(1);
    expect(await state.find('v')).toMatchObject({
      state: 'aborted',
      abortedBecause: 'source changed',
      abortedFor: aborts[0] ? 'a' : 'b',
    });
    expect((await state.recordPart('v', part(2))).recorded).toBe(false);
    expect(await state.claimCompletion('v', { worker: 'w', taskId: 't' }, 0, Date.now() + 3_600_000)).toBe(
      false,
    );
    expect(await state.abort('v', { reason: 'again', taskId: 'c' })).toBe(false);
  });

  it("keeps one pass's uploads apart from another's", async () => {
    const jobId = `part-uploads-${randomBytes(3).toString('hex')}`;
    const client = sandboxDynamo(sandbox);
    const first = new PartUploads(client, sandbox.accountB.tableName, jobId, 1);
    const second = new PartUploads(client, sandbox.accountB.tableName, jobId, 2);
    await first.open('v', upload('one'));

    expect(await second.find('v')).toBeUndefined();
    expect((await second.open('v', upload('two'))).uploadId).toBe('two');
  });
});
