import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** What a HashingStream computed. */
export interface Digests {
  sha256: string;
  /** MD5 of the whole body (a single-part S3 ETag); undefined for a body of several parts not asked for it. */
  md5: string | undefined;
  /** The ETag of a multipart upload of these bytes in `parts` parts of the stream's part size. */
  multipartEtag: (parts: number) => string | undefined;
}

/**
 * A pass-through stream that hashes what flows through it: SHA-256 of the whole body (recorded in the
 * ledger) and MD5 of each `partSize` slice (a multipart ETag is the MD5 of the parts' MD5s), so the bytes
 * S3 stored can be checked against the bytes read. A body of one part has that part's MD5 as its whole
 * MD5; a longer body gets a second, whole-body MD5 only with `wholeMd5` (a source whose single-part ETag
 * must be checked): MD5 is the costliest hash here, and most large objects never need it.
 */
export class HashingStream extends Transform {
  readonly #partSize: number;
  readonly #sha256 = createHash('sha256');
  readonly #md5: Hash | undefined;
  readonly #partDigests: Buffer[] = [];
  #part: Hash = createHash('md5');
  #partBytes = 0;
  bytes = 0;

  constructor(partSize: number, options: { wholeMd5?: boolean } = {}) {
    super();
    this.#partSize = partSize;
    if (options.wholeMd5) this.#md5 = createHash('md5');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#sha256.update(chunk);
    this.#md5?.update(chunk);
    this.bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.#partSize - this.#partBytes, chunk.length - offset);
      this.#part.update(chunk.subarray(offset, offset + take));
      this.#partBytes += take;
      offset += take;
      if (this.#partBytes === this.#partSize) this.#closePart();
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#partBytes > 0 || this.#partDigests.length === 0) this.#closePart();
    callback();
  }

  #closePart(): void {
    this.#partDigests.push(this.#part.digest());
    this.#part = createHash('md5');
    this.#partBytes = 0;
  }

  #digests: Digests | undefined;

  /** Call after the stream has ended; the result is computed once. */
  digests(): Digests {
    this.#digests ??= this.#finish();
    return this.#digests;
  }

  #finish(): Digests {
    const sha256 = this.#sha256.digest('base64');
    const parts = this.#partDigests;
    const md5 = this.#md5?.digest('hex') ?? (parts.length === 1 ? parts[0]?.toString('hex') : undefined);
    return {
      sha256,
      md5,
      multipartEtag: (count) =>
        count === parts.length
          ? `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${count}`
          : undefined,
    };
  }
}

/** The ETag an S3 object would have if its bytes hashed as `digests`, or undefined if it can't be known. */
export function expectedEtag(actualEtag: string, digests: Digests): string | undefined {
  const etag = stripQuotes(actualEtag);
  const multipart = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
  if (multipart) return digests.multipartEtag(Number(multipart[1]));
  return /^[0-9a-f]{32}$/.test(etag) ? digests.md5 : undefined;
}

/** S3 returns ETags in double quotes. */
export function stripQuotes(etag: string): string {
  return etag.replace(/^"|"$/g, '');
}

/** True when an ETag is the MD5 of the body: single-part and not SSE-KMS / SSE-C encrypted. */
export function isPlainMd5Etag(etag: string, serverSideEncryption: string | undefined): boolean {
  return /^[0-9a-f]{32}$/.test(stripQuotes(etag)) && !serverSideEncryption?.startsWith('aws:kms');
}
