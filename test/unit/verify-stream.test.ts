import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  AssumedLayoutError,
  compositeEtag,
  type ReadExpectation,
  VerifyStream,
} from '../../functions/core/copy/verify-stream.js';
import { IntegrityError } from '../../functions/core/errors.js';

const md5 = (data: Buffer) => createHash('md5').update(data).digest();
const where = 's3://src/key';

/** Runs `chunks` through a VerifyStream; returns what came out, whether it ended, and the error if any. */
async function verify(chunks: Buffer[], expectation: Omit<ReadExpectation, 'where'>) {
  const verified = new VerifyStream({ where, ...expectation });
  const out: Buffer[] = [];
  let ended = false;
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => out.push(chunk));
  sink.on('end', () => {
    ended = true;
  });
  const error = await pipeline(Readable.from(chunks), verified, sink).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  return { out: Buffer.concat(out), ended, error, verified };
}

describe('VerifyStream', () => {
  const data = Buffer.from('0123456789abcdef-tail');
  const chunks = [data.subarray(0, 5), data.subarray(5, 13), data.subarray(13)];

  it('passes a read that matches the source MD5 through whole, with its SHA-256', async () => {
    const { out, ended, error, verified } = await verify(chunks, {
      size: data.length,
      start: 0,
      check: { kind: 'md5', md5: md5(data).toString('hex') },
    });

    expect(error).toBeUndefined();
    expect(ended).toBe(true);
    expect(out.equals(data)).toBe(true);
    expect(verified.digests().sha256).toBe(createHash('sha256').update(data).digest('base64'));
  });

  it('holds back the last chunk of a read cut short and fails instead of ending', async () => {
    const { out, ended, error } = await verify(chunks.slice(0, 2), {
      size: data.length,
      start: 0,
      check: { kind: 'md5', md5: md5(data).toString('hex') },
    });

    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toMatch(/ended after 13 of 21 bytes/);
    expect(ended).toBe(false);
    expect(out.equals(chunks[0] as Buffer)).toBe(true); // the last chunk read never left
  });

  it('fails a read of the right length whose bytes do not hash to the source ETag', async () => {
    const corrupted = Buffer.from(data);
    corrupted[7] = 0;

    const { ended, error } = await verify([corrupted], {
      size: data.length,
      start: 0,
      check: { kind: 'md5', md5: md5(data).toString('hex') },
    });

    expect((error as Error).message).toMatch(/bytes read do not match its ETag/);
    expect(ended).toBe(false);
  });

  it('fails a read that carries more bytes than the object has', async () => {
    const { error } = await verify([data, Buffer.from('x')], {
      size: data.length,
      start: 0,
      check: { kind: 'size-only' },
    });

    expect((error as Error).message).toMatch(/more than the object's 21 bytes/);
  });

  it("rebuilds a multipart source's composite ETag from its parts' layout", async () => {
    const partSizes = [8, 8, 5];
    const parts = [data.subarray(0, 8), data.subarray(8, 16), data.subarray(16)];
    const etag = compositeEtag(parts.map(md5));

    const good = await verify(chunks, {
      size: data.length,
      start: 0,
      check: { kind: 'composite', etag, partSizes },
    });
    const corrupted = Buffer.from(data);
    corrupted[20] = 0;
    const bad = await verify([corrupted], {
      size: data.length,
      start: 0,
      check: { kind: 'composite', etag, partSizes },
    });

    expect(etag).toBe(
      `${createHash('md5')
        .update(Buffer.concat(parts.map(md5)))
        .digest('hex')}-3`,
    );
    expect(good.error).toBeUndefined();
    expect(good.verified.closedPartMd5s).toEqual(parts.map(md5));
    expect((bad.error as Error).message).toMatch(/parts rebuild/);
  });

  it('says when a read fails to rebuild the ETag under part sizes that were only assumed, and only then', async () => {
    const parts = [data.subarray(0, 8), data.subarray(8, 15), data.subarray(15)];
    const etag = compositeEtag(parts.map(md5));
    const assumedEqual = { kind: 'composite' as const, etag, partSizes: [8, 8, 5], assumed: true };

    const assumed = await verify(chunks, { size: data.length, start: 0, check: assumedEqual });
    const asked = await verify(chunks, {
      size: data.length,
      start: 0,
      check: { ...assumedEqual, assumed: undefined },
    });
    const short = await verify([data.subarray(0, 16)], { size: data.length, start: 0, check: assumedEqual });

    expect(assumed.error).toBeInstanceOf(AssumedLayoutError);
    expect(asked.error).toBeInstanceOf(IntegrityError);
    expect(asked.error).not.toBeInstanceOf(AssumedLayoutError);
    expect(short.error).not.toBeInstanceOf(AssumedLayoutError);
    expect((short.error as Error).message).toMatch(/the read ended after 16 of 21 bytes/);
  });

  it('names the source part a read ends inside when the layout lists more bytes than the object has', async () => {
    const partSizes = [8, 8, 8];
    const etag = compositeEtag([data.subarray(0, 8), data.subarray(8, 16), data.subarray(16)].map(md5));

    const result = await verify(chunks, {
      size: data.length,
      start: 0,
      check: { kind: 'composite', etag, partSizes },
    });

    expect(result.error).toBeInstanceOf(IntegrityError);
    expect((result.error as Error).message).toBe(
      `${where}: the read ended inside source part 3; nothing was written from this read`,
    );
    expect(result.ended).toBe(false);
  });

  it('passes an empty object through as nothing, and ends', async () => {
    const result = await verify([], {
      size: 0,
      start: 0,
      check: { kind: 'md5', md5: md5(Buffer.alloc(0)).toString('hex') },
    });

    expect(result).toMatchObject({ ended: true, error: undefined });
    expect(result.out).toHaveLength(0);
  });

  it('checks a read continued from a source part boundary with the MD5s of the parts before it', async () => {
    const partSizes = [8, 8, 5];
    const parts = [data.subarray(0, 8), data.subarray(8, 16), data.subarray(16)];
    const etag = compositeEtag(parts.map(md5));

    const { error, out, verified } = await verify([data.subarray(8)], {
      size: data.length,
      start: 8,
      check: { kind: 'composite', etag, partSizes },
      priorPartMd5s: [md5(parts[0] as Buffer)],
    });

    expect(error).toBeUndefined();
    expect(out.equals(data.subarray(8))).toBe(true);
    expect(verified.digests().sha256).toBeUndefined(); // not every byte passed through this read
  });

  it('gives the whole-body MD5 when asked, for any source', async () => {
    const { verified } = await verify(chunks, {
      size: data.length,
      start: 0,
      check: { kind: 'size-only' },
      wholeMd5: true,
    });

    expect(verified.digests().md5).toBe(md5(data).toString('hex'));
  });
});
