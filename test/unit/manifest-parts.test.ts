import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { gatherParts, ManifestPart, removeParts } from '../../functions/core/report/manifest-parts.js';
import type { ManifestLine, VanishedLine } from '../../functions/core/report/run-manifest.js';

const s3 = new S3Client({ region: 'us-east-1' });
const s3Mock = mockClient(S3Client);
const FOLDER = '.cross-account-sync/runs/job-1/20261202T000000Z-abc/';

const copied = (n: number): ManifestLine => ({
  destinationKey: `copy/k${n}`,
  sourceKey: `k${n}`,
  size: n,
  etag: `"e${n}"`,
  sha256: `h${n}`,
  sourceLastModified: '2026-12-01T00:00:00.000Z',
});
const vanished = (n: number): VanishedLine => ({
  sourceKey: `gone${n}`,
  etag: `"g${n}"`,
  sourceLastModified: '2026-12-01T00:00:00.000Z',
  reason: 'NoSuchKey',
});
const body = (text: string) => sdkStreamMixin(Readable.from([Buffer.from(text)]));
const jsonl = (...lines: object[]) => lines.map((line) => `${JSON.stringify(line)}\n`).join('');
const manifestStub = () => ({ add: vi.fn(async () => {}), addVanished: vi.fn(async () => {}) });

beforeEach(() => {
  s3Mock.reset();
});

describe('ManifestPart: the manifest lines of one task', () => {
  it('saves nothing for a task without lines', async () => {
    const part = new ManifestPart();

    await part.save(s3, 'dst', FOLDER, 'shard-0-0');

    expect(part.lines).toBe(0);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('writes <folder>parts/<taskId>.jsonl with one JSON line per object, vanished ones marked', async () => {
    s3Mock.on(PutObjectCommand).resolves({});
    const part = new ManifestPart();
    await part.add(copied(1));
    await part.addVanished(vanished(2));
    await part.add(copied(3));

    await part.save(s3, 'dst', FOLDER, 'shard-1-4');

    expect(part.lines).toBe(3);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    const input = s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      Bucket: 'dst',
      Key: `${FOLDER}parts/shard-1-4.jsonl`,
      ContentType: 'application/x-ndjson',
    });
    const text = String(input?.Body);
    expect(text.endsWith('\n')).toBe(true);
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([copied(1), { ...vanished(2), outcome: 'vanished' }, copied(3)]);
  });
});

describe('gatherParts: the pass end joins every part into the manifest', () => {
  it('reads every part across listing pages, feeding copied and vanished lines apart, and returns the keys', async () => {
    const parts = {
      [`${FOLDER}parts/shard-0-0.jsonl`]: jsonl(copied(1), { ...vanished(2), outcome: 'vanished' }),
      [`${FOLDER}parts/shard-0-1.jsonl`]: jsonl(copied(3)),
      [`${FOLDER}parts/shard-1-0.jsonl`]: jsonl({ ...vanished(4), outcome: 'vanished' }, copied(5)),
    };
    const [first, second, third] = Object.keys(parts);
    s3Mock
      .on(ListObjectsV2Command, { ContinuationToken: undefined })
      .resolves({ Contents: [{ Key: first }, { Key: second }], NextContinuationToken: 'page-2' })
      .on(ListObjectsV2Command, { ContinuationToken: 'page-2' })
      .resolves({ Contents: [{ Key: third }] });
    for (const [Key, text] of Object.entries(parts)) {
      s3Mock.on(GetObjectCommand, { Key }).callsFake(() => ({ Body: body(text) }));
    }
    const manifest = manifestStub();

    const keys = await gatherParts(s3, 'dst', FOLDER, manifest);

    expect(keys).toEqual([first, second, third]);
    const lists = s3Mock.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input);
    expect(lists).toEqual([
      { Bucket: 'dst', Prefix: `${FOLDER}parts/`, ContinuationToken: undefined },
      { Bucket: 'dst', Prefix: `${FOLDER}parts/`, ContinuationToken: 'page-2' },
    ]);
    expect(s3Mock.commandCalls(GetObjectCommand).map((call) => call.args[0].input)).toEqual(
      keys.map((Key) => ({ Bucket: 'dst', Key })),
    );
    expect(manifest.add.mock.calls).toEqual([[copied(1)], [copied(3)], [copied(5)]]);
    // Vanished lines go to addVanished as they were added, without the part's `outcome` marker.
    expect(manifest.addVanished.mock.calls).toEqual([[vanished(2)], [vanished(4)]]);
  });

  it('finds nothing when there are no parts', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({});
    const manifest = manifestStub();

    expect(await gatherParts(s3, 'dst', FOLDER, manifest)).toEqual([]);
    expect(manifest.add).not.toHaveBeenCalled();
    expect(manifest.addVanished).not.toHaveBeenCalled();
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  it('reads back what ManifestPart saved', async () => {
    s3Mock.on(PutObjectCommand).resolves({});
    const part = new ManifestPart();
    await part.add(copied(7));
    await part.addVanished(vanished(8));
    await part.save(s3, 'dst', FOLDER, 'shard-2-0');
    const saved = s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input;
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: saved?.Key }] });
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(String(saved?.Body)) }));
    const manifest = manifestStub();

    expect(await gatherParts(s3, 'dst', FOLDER, manifest)).toEqual([`${FOLDER}parts/shard-2-0.jsonl`]);
    expect(manifest.add.mock.calls).toEqual([[copied(7)]]);
    expect(manifest.addVanished.mock.calls).toEqual([[vanished(8)]]);
  });
});

describe('removeParts: the parts go once the manifest is published', () => {
  const keys = (count: number) => Array.from({ length: count }, (_, n) => `${FOLDER}parts/shard-${n}.jsonl`);

  it('deletes in batches of at most 1000 keys, every key once', async () => {
    s3Mock.on(DeleteObjectsCommand).resolves({});
    const all = keys(2001);

    await removeParts(s3, 'dst', all);

    const inputs = s3Mock.commandCalls(DeleteObjectsCommand).map((call) => call.args[0].input);
    expect(inputs.map((input) => input.Delete?.Objects?.length)).toEqual([1000, 1000, 1]);
    expect(inputs.every((input) => input.Bucket === 'dst' && input.Delete?.Quiet === true)).toBe(true);
    expect(inputs.flatMap((input) => input.Delete?.Objects?.map((object) => object.Key))).toEqual(all);
  });

  it('deletes exactly 1000 keys in one request, and sends nothing for none', async () => {
    s3Mock.on(DeleteObjectsCommand).resolves({});

    await removeParts(s3, 'dst', []);
    expect(s3Mock).not.toHaveReceivedCommand(DeleteObjectsCommand);

    await removeParts(s3, 'dst', keys(1000));
    expect(s3Mock).toHaveReceivedCommandTimes(DeleteObjectsCommand, 1);
  });

  it('throws, naming how many and one key, when S3 answers with Errors', async () => {
    s3Mock.on(DeleteObjectsCommand).resolves({
      Errors: [
        { Key: `${FOLDER}parts/shard-3.jsonl`, Code: 'AccessDenied', Message: 'Access Denied' },
        { Key: `${FOLDER}parts/shard-4.jsonl`, Code: 'AccessDenied', Message: 'Access Denied' },
      ],
    });

    await expect(removeParts(s3, 'dst', keys(5))).rejects.toThrow(
      `2 manifest parts not removed, e.g. ${FOLDER}parts/shard-3.jsonl: AccessDenied Access Denied`,
    );
  });

  it('stops at the first batch S3 refused', async () => {
    s3Mock
      .on(DeleteObjectsCommand)
      .resolvesOnce({ Errors: [{ Key: 'k', Code: 'InternalError', Message: 'try again' }] })
      .resolves({});

    await expect(removeParts(s3, 'dst', keys(1500))).rejects.toThrow(
      /^1 manifest parts not removed, e\.g\. k: /,
    );
    expect(s3Mock).toHaveReceivedCommandTimes(DeleteObjectsCommand, 1);
  });

  it('does not throw for an empty Errors list', async () => {
    s3Mock.on(DeleteObjectsCommand).resolves({ Errors: [] });

    await expect(removeParts(s3, 'dst', keys(3))).resolves.toBeUndefined();
  });
});
