/**
 * The buffers one multipart upload fills its parts in, each reused once the UploadPart that sent it has
 * settled. A new buffer per part left every sent part to the garbage collector: with a 1 GiB object the
 * array buffers peaked at 108 MB where the parts held at once are 48 MiB. `uploadParts` gives a buffer
 * back only after its `send` settles (retries happen inside `send`; a resolved UploadPart means S3 read the
 * whole body, a rejected one that the SDK stopped writing it), and it keeps at most `queueSize` parts in
 * flight while it fills one, so no more than `queueSize + 1` buffers are ever allocated. Were a buffer
 * refilled while still on the wire, S3 would refuse the part: its Content-MD5 is of the bytes first put in it.
 */
export class PartBuffers {
  readonly #free: Buffer[] = [];
  readonly #partSize: number;
  #allocated = 0;

  constructor(partSize: number) {
    this.#partSize = partSize;
  }

  /** A buffer of the part size to fill: a returned one if any, else a new one. */
  take(): Buffer {
    const reused = this.#free.pop();
    if (reused) return reused;
    this.#allocated += 1;
    // Not from Node's shared pool (allocUnsafe): a part is far larger than that pool, and is its own allocation.
    return Buffer.allocUnsafeSlow(this.#partSize);
  }

  /** Gives back a buffer whose UploadPart has settled, so the next part is filled in it. */
  give(buffer: Buffer): void {
    this.#free.push(buffer);
  }

  /** How many buffers were allocated: at most `queueSize + 1` for an upload. */
  get allocated(): number {
    return this.#allocated;
  }
}
