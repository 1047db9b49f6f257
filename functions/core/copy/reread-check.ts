/**
 * Continuing an earlier run's upload: the bytes read again before the first new part must be the bytes
 * its parts already hold.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../errors.js';

/**
 * Checks that the bytes a continued copy reads again, before the first part it uploads, are the bytes the
 * earlier run uploaded: each part read again whole against its MD5 (as the earlier run recorded it, or its
 * ETag where that is the MD5), and a part the read starts inside against the MD5 of its tail that the
 * earlier run recorded.
 */
export class RereadCheck {
  #hash = createHash('md5');
  #offset: number;
  /** Where reading of the current part began: its start, or inside it for the first part. */
  #partReadFrom: number;
  readonly #partSize: number;
  readonly #partMd5: (partNumber: number) => Buffer;
  readonly #tailMd5: Buffer | undefined;
  readonly #where: string;

  constructor(
    start: number,
    partSize: number,
    partMd5: (partNumber: number) => Buffer,
    tailMd5: Buffer | undefined,
    where: string,
  ) {
    this.#offset = start;
    this.#partReadFrom = start;
    this.#partSize = partSize;
    this.#partMd5 = partMd5;
    this.#tailMd5 = tailMd5;
    this.#where = where;
  }

  update(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const partEnd = (Math.floor(this.#offset / this.#partSize) + 1) * this.#partSize;
      const take = Math.min(data.length - at, partEnd - this.#offset);
      this.#hash.update(data.subarray(at, at + take));
      this.#offset += take;
      at += take;
      if (this.#offset === partEnd) this.#closePart(partEnd / this.#partSize);
    }
  }

  #closePart(partNumber: number): void {
    const digest = this.#hash.digest();
    const partStart = (partNumber - 1) * this.#partSize;
    const expected = this.#partReadFrom === partStart ? this.#partMd5(partNumber) : this.#tailMd5;
    this.#hash = createHash('md5');
    this.#partReadFrom = partStart + this.#partSize;
    if (!expected || !digest.equals(expected)) {
      throw new IntegrityError(
        `${this.#where}: part ${partNumber} uploaded by an earlier run does not hold the bytes read again; ` +
          'the upload is not continued',
      );
    }
  }
}
