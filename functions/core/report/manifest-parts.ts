/**
 * A fan-out pass's manifest in parts: each copy task writes the lines of what it copied (or found vanished)
 * to `<run folder>/parts/<taskId>.jsonl`, and the worker that ends the pass joins them into the run's one
 * `manifest.jsonl` (RunManifest), writes `_SUCCESS`, and removes the parts.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ManifestLine, RunManifest, VanishedLine } from './run-manifest.js';

/** A task's lines, held until the task is done (a task is at most a few hundred objects). */
export class ManifestPart {
  readonly #lines: string[] = [];

  async add(line: ManifestLine): Promise<void> {
    this.#lines.push(JSON.stringify(line));
  }

  async addVanished(line: VanishedLine): Promise<void> {
    this.#lines.push(JSON.stringify({ ...line, outcome: 'vanished' }));
  }

  get lines(): number {
    return this.#lines.length;
  }

  /**
   * Writes the part as `<folder>parts/<name>.jsonl` (`folder`: the run's manifest folder) and returns its
   * key; nothing, and undefined, when the task had no lines.
   */
  async save(s3: S3Client, bucket: string, folder: string, name: string): Promise<string | undefined> {
    if (this.#lines.length === 0) return undefined;
    const key = `${folder}parts/${name}.jsonl`;
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: `${this.#lines.join('\n')}\n`,
        ContentType: 'application/x-ndjson',
      }),
    );
    return key;
  }
}

/**
 * Adds the lines of the parts under `folder` to `manifest`, of those in `only` when given (the parts of the
 * settled deliveries: a duplicate delivery's part is not read); returns every part's key, to remove once
 * the manifest is published.
 */
export async function gatherParts(
  s3: S3Client,
  bucket: string,
  folder: string,
  manifest: Pick<RunManifest, 'add' | 'addVanished'>,
  only?: ReadonlySet<string>,
): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `${folder}parts/`, ContinuationToken: token }),
    );
    for (const { Key } of page.Contents ?? []) {
      if (!Key) continue;
      keys.push(Key);
      if (only && !only.has(Key)) continue;
      const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
      const text = (await Body?.transformToString()) ?? '';
      for (const json of text.split('\n')) {
        if (json === '') continue;
        const { outcome, ...line } = JSON.parse(json);
        if (outcome === 'vanished') await manifest.addVanished(line as VanishedLine);
        else await manifest.add(line as ManifestLine);
      }
    }
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

/** Removes the parts once the manifest they made is published. */
export async function removeParts(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (let start = 0; start < keys.length; start += 1000) {
    const { Errors } = await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.slice(start, start + 1000).map((Key) => ({ Key })), Quiet: true },
      }),
    );
    // DeleteObjects answers 200 and lists what it refused, key by key.
    const [refused] = Errors ?? [];
    if (refused) {
      throw new Error(
        `${Errors?.length} manifest parts not removed, e.g. ${refused.Key}: ${refused.Code} ${refused.Message}`,
      );
    }
  }
}
