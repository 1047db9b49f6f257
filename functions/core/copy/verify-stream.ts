import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../errors.js';

/**
 * How the bytes of a source object can be checked, learned from its ETag (and, for a multipart ETag, its
 * part layout):
 * - `md5`: a single-part, unencrypted or SSE-S3 object; its ETag is the MD5 of its bytes;
 * - `composite`: a multipart object; its ETag is the MD5 of its parts' MD5s, with the part count;
 * - `size-only`: SSE-KMS / SSE-C objects, whose ETag is not a digest of the bytes.
 */
export type SourceCheck =
  | { kind: 'md5'; md5: string }
  | {
      kind: 'composite';
      etag: string;
      partSizes: number[];
      /** The sizes were assumed equal from the first part's, not each asked for (see learnSourceCheck). */
      assumed?: boolean;
    }
  | { kind: 'size-only' };

/** What one read of a source object must deliver. */
export interface ReadExpectation {
  /** s3://bucket/key, for messages. */
  where: string;
  size: number;
  /** Offset in the object of the first byte this read carries (a continued copy reads a range). */
  start: number;
  check: SourceCheck;
  /** For `composite` reads that start past 0: the MD5s of the source parts before `start`. */
  priorPartMd5s?: Buffer[];
  /** Also compute the MD5 of the whole body (a read starting at 0 that a single PutObject will write). */
  wholeMd5?: boolean;
}

/** What a VerifyStream computed. */
export interface ReadDigests {
  /** SHA-256 (base64) of the whole object; only for a read from its first byte. */
  sha256: string | undefined;
  /** MD5 (hex) of the whole object, when a whole-body MD5 was asked for or checked. */
  md5: string | undefined;
}

/**
 * A pass-through that checks a source read before its last byte leaves: it counts and hashes what flows
 * through and holds back the most recent chunk. Only when the source has ended, and the byte count and the
 * digest the source's ETag implies both match, does it release that chunk and end; otherwise it fails with
 * an IntegrityError and never ends. A writer downstream (one PutObject, or a multipart upload whose last
 * part needs the last chunk) therefore never receives a complete body that is wrong: a truncated read,
 * even one whose response ended cleanly with a matching Content-Length, or a corrupted one.
 *
 * For a multipart source the MD5 of each source part is taken on the fly (the parts' layout comes from the
 * source, see learnSourceCheck) and the composite ETag is rebuilt at the end.
 */
export class VerifyStream extends Transform {
  readonly #expect: ReadExpectation;
  readonly #sha256: Hash | undefined;
  readonly #md5: Hash | undefined;
  /** Composite only: digests of the source parts closed so far, from part 1. */
  readonly #partMd5s: Buffer[];
  #part: Hash = createHash('md5');
  #partBytes = 0;
  #held: Buffer | undefined;
  /** Bytes that passed through (from `start`). */
  bytes = 0;
  #digests: ReadDigests | undefined;
  /** The whole read rebuilt another ETag than the source's under part sizes that were only assumed. */
  #rebuiltOtherEtag = false;

  constructor(expectation: ReadExpectation) {
    super();
    this.#expect = expectation;
    const fromStart = expectation.start === 0;
    this.#sha256 = fromStart ? createHash('sha256') : undefined;
    this.#md5 =
      fromStart && (expectation.check.kind === 'md5' || expectation.wholeMd5) ? createHash('md5') : undefined;
    this.#partMd5s = [...(expectation.priorPartMd5s ?? [])];
  }

  /** What this read is checked against. */
  get check(): SourceCheck {
    return this.#expect.check;
  }

  /** MD5s of the source parts read whole so far, from part 1 (composite sources); empty otherwise. */
  get closedPartMd5s(): readonly Buffer[] {
    return this.#partMd5s;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const { start, size, where } = this.#expect;
    if (start + this.bytes + chunk.length > size) {
      callback(new IntegrityError(`${where}: the read carried more than the object's ${size} bytes`));
      return;
    }
    this.bytes += chunk.length;
    this.#sha256?.update(chunk);
    this.#md5?.update(chunk);
    if (this.#expect.check.kind === 'composite') this.#hashParts(chunk, this.#expect.check.partSizes);
    const release = this.#held;
    this.#held = chunk;
    callback(null, release);
  }

  override _flush(callback: TransformCallback): void {
    const problem = this.#verify();
    if (problem) {
      this.#held = undefined;
      const message = `${this.#expect.where}: ${problem}; nothing was written from this read`;
      callback(this.#rebuiltOtherEtag ? new AssumedLayoutError(message) : new IntegrityError(message));
      return;
    }
    // Stryker disable next-line ConditionalExpression: with nothing held (an empty read), push(undefined) adds no data to a byte stream, as not pushing does
    if (this.#held) this.push(this.#held);
    this.#held = undefined;
    callback();
  }

  /** Call after the stream has ended; the result is computed once. */
  digests(): ReadDigests {
    this.#digests ??= { sha256: this.#sha256?.digest('base64'), md5: this.#md5?.digest('hex') };
    return this.#digests;
  }

  #hashParts(chunk: Buffer, partSizes: number[]): void {
    let offset = 0;
    while (offset < chunk.length) {
      const partSize = partSizes[this.#partMd5s.length] ?? Number.POSITIVE_INFINITY;
      const take = Math.min(partSize - this.#partBytes, chunk.length - offset);
      this.#part.update(chunk.subarray(offset, offset + take));
      this.#partBytes += take;
      offset += take;
      if (this.#partBytes === partSize) {
        this.#partMd5s.push(this.#part.digest());
        this.#part = createHash('md5');
        this.#partBytes = 0;
      }
    }
  }

  /** Why the bytes read are not the object, or undefined when they are. */
  #verify(): string | undefined {
    const { start, size, check } = this.#expect;
    const read = start + this.bytes;
    if (read !== size) return `the read ended after ${read} of ${size} bytes`;
    if (check.kind === 'md5') {
      const md5 = this.digests().md5;
      return md5 === check.md5
        ? undefined
        : `the bytes read do not match its ETag: they hash to MD5 ${md5}, the ETag is ${check.md5}`;
    }
    if (check.kind === 'composite') {
      if (this.#partBytes > 0) return `the read ended inside source part ${this.#partMd5s.length + 1}`;
      const etag = compositeEtag(this.#partMd5s);
      if (etag === check.etag) return undefined;
      // Parts assumed equal that do not rebuild the ETag may just not be equal: the copy asks their sizes.
      this.#rebuiltOtherEtag = check.assumed === true;
      return `the bytes read do not match its ETag: their parts rebuild ${etag}, the ETag is ${check.etag}`;
    }
    return undefined;
  }
}

/**
 * A multipart source's bytes did not rebuild its ETag under the part sizes assumed from its first part.
 * Either the bytes are wrong or the parts are not equal; the copy reads again with each part's size.
 */
export class AssumedLayoutError extends IntegrityError {}

/** The ETag S3 gives a multipart object whose parts have these MD5s: MD5 of the concatenated digests, "-N". */
export function compositeEtag(partMd5s: readonly Buffer[]): string {
  return `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`;
}
