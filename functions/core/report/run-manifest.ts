/**
 * The report room: what a run tells the outside about itself.
 *
 * - run-manifest.ts (this file): the manifest of copied and vanished objects and the _SUCCESS marker;
 * - run-tally.ts: the counts a run keeps as it goes, which become the summary's figures;
 * - announce-run.ts: the run's metrics and its EventBridge event (publish-run-event.ts);
 * - observability.ts: the Powertools logger, metrics and tracer of the Lambda.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PART_SIZE, QUEUE_SIZE } from '../copy/copy-object.js';

/** The folder of one run's manifest and marker: `<manifestPrefix><jobId>/<runId>/`. */
export function runFolder(manifestPrefix: string, jobId: string, runId: string): string {
  return `${manifestPrefix}${jobId}/${runId}/`;
}

/** One line of a run manifest: an object this run copied. */
export interface ManifestLine {
  destinationKey: string;
  sourceKey: string;
  size: number;
  etag: string;
  /** SHA-256 (base64) of the bytes copied. */
  sha256: string;
  sourceLastModified: string;
}

/**
 * A line for a listed object that was deleted at the source before it could be copied; copied lines have
 * a `destinationKey`, these an `outcome`.
 */
export interface VanishedLine {
  sourceKey: string;
  etag: string;
  sourceLastModified: string;
  reason: string;
}

/** Where a run's manifest and completion marker went. */
export interface ManifestLocation {
  bucket: string;
  manifestKey: string;
  markerKey: string;
  objects: number;
}

/**
 * The batch a run copied, for pipelines downstream: `manifest.jsonl` (one JSON line per object) and then
 * `_SUCCESS`, written only after the manifest is complete, so a reader that waits for the marker never
 * sees half a batch.
 *
 * Lines are spooled to a temporary file as copies finish, so a run with a million copies holds none of
 * them in memory; the file is streamed to S3 at the end, with the run's finish time added to each line.
 */
export class RunManifest {
  #file: Promise<{ dir: string; path: string; out: WriteStream }> | undefined;
  #objects = 0;
  #bytes = 0;

  constructor(
    readonly run: { jobId: string; runId: string; startedAt: string },
    readonly destination: { bucket: string; prefix: string },
  ) {}

  /** Keys under `<prefix><jobId>/<runId>/`; sortable by run id, so the newest batch lists last. */
  location(): { manifestKey: string; markerKey: string } {
    const base = runFolder(this.destination.prefix, this.run.jobId, this.run.runId);
    return { manifestKey: `${base}manifest.jsonl`, markerKey: `${base}_SUCCESS` };
  }

  async add(line: ManifestLine): Promise<void> {
    this.#objects += 1;
    this.#bytes += line.size;
    await this.#write(line);
  }

  /** Records an object the run listed but could not copy because it was deleted at the source. */
  async addVanished(line: VanishedLine): Promise<void> {
    this.#vanished += 1;
    await this.#write({ ...line, outcome: 'vanished' });
  }

  #vanished = 0;

  async #write(line: object): Promise<void> {
    // Copies finish concurrently: the first one opens the spool file, the others wait for it.
    this.#file ??= mkdtemp(join(tmpdir(), 'sync-manifest-')).then((dir) => {
      const path = join(dir, 'manifest.jsonl');
      return { dir, path, out: createWriteStream(path) };
    });
    const { out } = await this.#file;
    if (out.write(`${JSON.stringify(line)}\n`)) return;
    // Every copy that finds the buffer full waits on the same drain, not on a listener of its own.
    this.#drained ??= once(out, 'drain').finally(() => {
      this.#drained = undefined;
    });
    await this.#drained;
  }

  #drained: Promise<unknown> | undefined;

  get objects(): number {
    return this.#objects;
  }

  /**
   * Uploads the manifest, then the marker. Does nothing (and returns undefined) if nothing was copied
   * and nothing vanished.
   */
  async publish(s3: S3Client, finishedAt: string, summary: object): Promise<ManifestLocation | undefined> {
    if (!this.#file) return undefined;
    const file = await this.#file;
    file.out.end();
    await once(file.out, 'finish');
    const { manifestKey, markerKey } = this.location();
    const { jobId, runId, startedAt } = this.run;
    const { bucket } = this.destination;
    const hash = createHash('sha256');
    async function* lines() {
      for await (const line of createInterface({ input: createReadStream(file.path), crlfDelay: Infinity })) {
        const full = `${JSON.stringify({ ...JSON.parse(line), jobId, runId, runStartedAt: startedAt, runFinishedAt: finishedAt })}\n`;
        hash.update(full);
        yield Buffer.from(full);
      }
    }
    try {
      await new Upload({
        client: s3,
        partSize: PART_SIZE,
        queueSize: QUEUE_SIZE,
        params: {
          Bucket: bucket,
          Key: manifestKey,
          Body: Readable.from(lines()),
          ContentType: 'application/x-ndjson',
        },
      }).done();
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: markerKey,
          ContentType: 'application/json',
          Body: JSON.stringify({
            ...summary,
            jobId,
            runId,
            startedAt,
            finishedAt,
            objects: this.#objects,
            bytes: this.#bytes,
            vanished: this.#vanished,
            manifest: { bucket: bucket, key: manifestKey, sha256: hash.digest('base64') },
          }),
        }),
      );
    } finally {
      await rm(file.dir, { recursive: true, force: true });
    }
    return { bucket: bucket, manifestKey, markerKey, objects: this.#objects };
  }

  /** Removes the spool file of a run that ended without publishing. */
  async discard(): Promise<void> {
    if (!this.#file) return;
    const file = await this.#file;
    file.out.destroy();
    await rm(file.dir, { recursive: true, force: true });
  }
}
