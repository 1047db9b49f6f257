import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { compareKeys } from '../../functions/core/plan/keys.js';

/** An object as the fake stores it. */
export interface FakeObject {
  body: Buffer;
  etag: string;
  lastModified: Date;
  contentType?: string;
  metadata?: Record<string, string>;
  /** A multipart object's part sizes, which HeadObject with PartNumber reports (as S3 does). */
  partSizes?: number[];
  /** The storage class LIST reports (STANDARD when absent), e.g. GLACIER for an archived object. */
  storageClass?: string;
}

interface OpenUpload {
  bucket: string;
  key: string;
  initiated: Date;
  parts: Map<number, Buffer>;
  contentType?: string;
  metadata?: Record<string, string>;
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest();
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    message: name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  if (typeof body === 'string' || body instanceof Uint8Array) return Buffer.from(body as Uint8Array);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * An in-process S3 with the rules the sync depends on: keys listed in UTF-8 byte order in small pages,
 * MD5 and multipart ETags, LastModified from the wall clock truncated to the second (so writes within one
 * second share it) and returned by LIST, GET and HEAD, a multipart object's LastModified set when its
 * upload was *initiated* (as on real S3, unlike moto), conditional GET (If-Match) and conditional writes
 * (If-None-Match, If-Match). It stubs every S3Client in the test file, so source and destination clients
 * share it.
 */
export class FakeS3 {
  readonly buckets = new Map<string, Map<string, FakeObject>>();
  readonly uploads = new Map<string, OpenUpload>();
  /** Every completed write to a bucket: which key, which bytes. */
  readonly writes: { bucket: string; key: string; sha256: string }[] = [];
  /** Small pages make every history exercise pagination. */
  pageSize = 3;
  /**
   * Called before each GetObject; may mutate the store (a producer writing mid-run), throw a fault, or
   * return a promise the GET waits for (a read held open).
   */
  beforeGet: ((bucket: string, key: string) => Promise<void> | void) | undefined;
  /** Called after a PutObject is stored; may throw (the answer lost on its way back). */
  afterPut: ((bucket: string, key: string) => void) | undefined;
  /** Called before each ListObjectsV2 page; may throw (a run failing part-way). */
  beforeList: ((page: number) => void) | undefined;
  #listPages = 0;

  constructor() {
    this.#install();
  }

  /**
   * S3's clock: LastModified has one-second resolution, so two writes in the same second carry the same
   * LastModified, and it is comparable with the times the sync itself records (upload intents).
   */
  now(): Date {
    return new Date(Math.floor(Date.now() / 1000) * 1000);
  }

  createBucket(name: string): void {
    this.buckets.set(name, new Map());
  }

  objects(bucket: string): Map<string, FakeObject> {
    const objects = this.buckets.get(bucket);
    if (!objects) throw s3Error('NoSuchBucket', 404);
    return objects;
  }

  /** The producer writing directly, as a single PUT. */
  put(bucket: string, key: string, body: Buffer, extra: Partial<FakeObject> = {}): FakeObject {
    const object = { body, etag: `"${md5(body).toString('hex')}"`, lastModified: this.now(), ...extra };
    this.objects(bucket).set(key, object);
    return object;
  }

  /** The producer starting a multipart upload now and completing it later (see completeUpload). */
  initiateUpload(bucket: string, key: string, extra: Partial<OpenUpload> = {}): string {
    const id = randomUUID();
    this.uploads.set(id, { bucket, key, initiated: this.now(), parts: new Map(), ...extra });
    return id;
  }

  completeUpload(id: string, parts?: Buffer[]): FakeObject {
    const upload = this.uploads.get(id);
    if (!upload) throw s3Error('NoSuchUpload', 404);
    parts?.forEach((part, index) => {
      upload.parts.set(index + 1, part);
    });
    const ordered = [...upload.parts.entries()].sort(([a], [b]) => a - b).map(([, data]) => data);
    const etag = `"${createHash('md5')
      .update(Buffer.concat(ordered.map(md5)))
      .digest('hex')}-${ordered.length}"`;
    // Real S3 stamps a multipart object with the time its upload was initiated.
    const object: FakeObject = {
      body: Buffer.concat(ordered),
      etag,
      lastModified: upload.initiated,
      contentType: upload.contentType,
      metadata: upload.metadata,
      partSizes: ordered.map((part) => part.length),
    };
    this.uploads.delete(id);
    this.objects(upload.bucket).set(upload.key, object);
    return object;
  }

  #write(bucket: string, key: string, object: FakeObject): void {
    this.objects(bucket).set(key, object);
    this.writes.push({ bucket, key, sha256: sha256(object.body) });
  }

  #checkWrite(bucket: string, key: string, input: { IfNoneMatch?: string; IfMatch?: string }): void {
    const existing = this.objects(bucket).get(key);
    if (input.IfNoneMatch === '*' && existing) throw s3Error('PreconditionFailed', 412);
    if (input.IfMatch !== undefined) {
      if (!existing) throw s3Error('NoSuchKey', 404);
      if (existing.etag !== input.IfMatch) throw s3Error('PreconditionFailed', 412);
    }
  }

  #install(): void {
    const stub = mockClient(S3Client);
    stub.on(HeadBucketCommand).callsFake(async ({ Bucket }) => {
      if (!this.buckets.has(Bucket)) throw s3Error('NotFound', 404);
      return {};
    });
    stub
      .on(ListObjectsV2Command)
      .callsFake(async ({ Bucket, Prefix = '', StartAfter, ContinuationToken, MaxKeys }) => {
        this.#listPages += 1;
        this.beforeList?.(this.#listPages);
        const after = ContinuationToken ?? StartAfter;
        const keys = [...this.objects(Bucket).keys()]
          .filter((key) => key.startsWith(Prefix) && (after === undefined || compareKeys(key, after) > 0))
          .sort(compareKeys);
        const page = keys.slice(0, MaxKeys ?? this.pageSize);
        const truncated = keys.length > page.length;
        return {
          Contents: page.map((key) => {
            const object = this.objects(Bucket).get(key) as FakeObject;
            return {
              Key: key,
              ETag: object.etag,
              Size: object.body.length,
              LastModified: object.lastModified,
              StorageClass: object.storageClass,
            };
          }),
          IsTruncated: truncated,
          NextContinuationToken: truncated ? page[page.length - 1] : undefined,
        };
      });
    stub.on(GetObjectCommand).callsFake(async ({ Bucket, Key, IfMatch }) => {
      await this.beforeGet?.(Bucket, Key);
      const object = this.objects(Bucket).get(Key);
      if (!object) throw s3Error('NoSuchKey', 404);
      if (IfMatch !== undefined && IfMatch !== object.etag) throw s3Error('PreconditionFailed', 412);
      return {
        Body: sdkStreamMixin(Readable.from([object.body])),
        ETag: object.etag,
        LastModified: object.lastModified,
        ContentLength: object.body.length,
        ContentType: object.contentType,
        Metadata: object.metadata,
      };
    });
    stub.on(HeadObjectCommand).callsFake(async ({ Bucket, Key, PartNumber }) => {
      const object = this.objects(Bucket).get(Key);
      if (!object) throw s3Error('NotFound', 404);
      const head = {
        ETag: object.etag,
        ContentLength: object.body.length,
        LastModified: object.lastModified,
        ContentType: object.contentType,
        Metadata: object.metadata,
      };
      if (PartNumber === undefined) return head;
      // As S3: the part's length and the object's part count; a single-part object is its own part 1.
      const sizes = object.partSizes ?? [object.body.length];
      if (PartNumber > sizes.length) throw s3Error('InvalidPartNumber', 416);
      return { ...head, ContentLength: sizes[PartNumber - 1], PartsCount: object.partSizes?.length };
    });
    stub.on(PutObjectCommand).callsFake(async (input) => {
      this.#checkWrite(input.Bucket, input.Key, input);
      const body = await bodyBytes(input.Body);
      const object = {
        body,
        etag: `"${md5(body).toString('hex')}"`,
        lastModified: this.now(),
        contentType: input.ContentType,
        metadata: input.Metadata,
      };
      this.#write(input.Bucket, input.Key, object);
      this.afterPut?.(input.Bucket ?? '', input.Key ?? '');
      return { ETag: object.etag };
    });
    stub.on(CreateMultipartUploadCommand).callsFake(async ({ Bucket, Key, ContentType, Metadata }) => ({
      UploadId: this.initiateUpload(Bucket, Key, { contentType: ContentType, metadata: Metadata }),
    }));
    stub.on(UploadPartCommand).callsFake(async ({ UploadId, PartNumber, Body }) => {
      const upload = this.uploads.get(UploadId);
      if (!upload) throw s3Error('NoSuchUpload', 404);
      const data = await bodyBytes(Body);
      upload.parts.set(PartNumber, data);
      return { ETag: `"${md5(data).toString('hex')}"` };
    });
    stub.on(CompleteMultipartUploadCommand).callsFake(async (input) => {
      this.#checkWrite(input.Bucket, input.Key, input);
      const object = this.completeUpload(input.UploadId);
      this.writes.push({ bucket: input.Bucket, key: input.Key, sha256: sha256(object.body) });
      return { ETag: object.etag };
    });
    stub.on(AbortMultipartUploadCommand).callsFake(async ({ UploadId }) => {
      this.uploads.delete(UploadId);
      return {};
    });
    stub.on(ListMultipartUploadsCommand).callsFake(async ({ Bucket }) => ({
      Uploads: [...this.uploads.entries()]
        .filter(([, upload]) => upload.bucket === Bucket)
        .map(([id, upload]) => ({ UploadId: id, Key: upload.key })),
    }));
    stub.on(DeleteObjectCommand).callsFake(async ({ Bucket, Key }) => {
      this.objects(Bucket).delete(Key);
      return {};
    });
  }
}
