/**
 * The fault matrix's harness: a mixed source seeded once, the sync wired the way production wires it
 * (`dependenciesFromEnvironment` with `AWS_ENDPOINT_URL_*` on the fault proxy), bounded runs, and the
 * invariants every case must end in. Reads and checks go straight to moto, never through the proxy.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { expect } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { JobAlreadyRunningError } from '../../functions/core/errors.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import { type RunSummary, type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import type { LedgerEntry } from '../../functions/core/state/state-store.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { type FaultProxy, startFaultProxy } from '../../sandbox/fault-proxy.js';
import { faultProxyEnv, type SandboxInfo } from '../../sandbox/sandbox.js';

const MiB = 1024 * 1024;
/** Above two 8 MiB parts, so each large object is a three-part multipart upload at the destination. */
export const LARGE_OBJECT_BYTES = 17 * MiB + 4321;
/** The versioned bucket every case writes into, each case under its own prefix. */
export const DESTINATION_BUCKET = 'accountb-fault-matrix';
/** A killed run's lease frees the job this soon, so clean runs after a fault need not wait two minutes. */
export const LEASE_TTL_MS = 1_500;

/** One seeded source object and what the destination must hold for it. */
export interface SourceObject {
  key: string;
  size: number;
  sha256: string;
}

/** The proxy, the sync's dependencies through it, and admin clients straight to moto for checks. */
export interface FaultMatrix {
  sandbox: SandboxInfo;
  proxy: FaultProxy;
  deps: SyncDependencies;
  /** The environment that points a child process's sync at the proxy. */
  env: Record<string, string>;
  producer: S3Client;
  consumer: S3Client;
}

/**
 * Starts a fault proxy in front of the shared sandbox and builds the sync's clients exactly as the Lambda
 * does, from `AWS_ENDPOINT_URL_*` (set in this worker's process environment, which is its own).
 */
export async function startFaultMatrix(sandbox: SandboxInfo): Promise<FaultMatrix> {
  // S3 closes a stalled upload body after ~20 s; a quarter of that keeps a case short and is still far
  // above any pause of a healthy client.
  const proxy = await startFaultProxy(sandbox, { s3RequestIdleTimeoutMs: 5_000 });
  const env = {
    ...faultProxyEnv(sandbox, proxy.endpoints),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  Object.assign(process.env, env);
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const consumer = sandboxS3(sandbox, sandbox.accountB.admin);
  await consumer.send(new CreateBucketCommand({ Bucket: DESTINATION_BUCKET })).catch(() => {});
  await consumer.send(
    new PutBucketVersioningCommand({
      Bucket: DESTINATION_BUCKET,
      VersioningConfiguration: { Status: 'Enabled' },
    }),
  );
  return {
    sandbox,
    proxy,
    deps: dependenciesFromEnvironment(silent, env),
    env,
    producer: sandboxS3(sandbox, sandbox.accountA.admin),
    consumer,
  };
}

/**
 * A few dozen objects under `prefix`: empty to 1.5 MiB, non-ASCII keys, every content header and user
 * metadata, and two of 17 MiB (one uploaded multipart, ETag `…-3`; one a single PUT). Half carry S3's
 * CRC32 and half no additional checksum at all, as objects written by older tools do: for those the SDK
 * cannot catch a bad body, and the sync must.
 */
export async function seedMixedSource(matrix: FaultMatrix, prefix: string): Promise<SourceObject[]> {
  const { sandbox } = matrix;
  const bucket = sandbox.accountA.bucket;
  const withChecksum = matrix.producer;
  const withoutChecksum = new S3Client({
    region: sandbox.region,
    endpoint: sandbox.motoEndpoint,
    forcePathStyle: true,
    credentials: { ...sandbox.accountA.admin },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  const sizes = [0, 1, 100, 1000, 4096, 10_000, 65_537, 200_000, 1024 * 1024 + 1, 1.5 * MiB];
  const names = ['plain', 'ü/x', 'a😀', 'a！', 'b b', 'deep/er/key'];
  const objects: { key: string; body: Buffer; checksum: boolean; extra: Partial<PutObjectCommandInput> }[] =
    [];
  for (let i = 0; i < 30; i += 1) {
    const size = sizes[i % sizes.length] ?? 0;
    const checksum = i % 2 === 0;
    const name = `${names[i % names.length]}-${i}${checksum ? '-crc' : ''}`;
    objects.push({
      key: `${prefix}${name}`,
      body: randomBytes(size),
      checksum,
      extra: {
        ContentType: i % 3 === 0 ? 'application/octet-stream' : 'text/plain; charset=utf-8',
        ...(i % 4 === 0 && { CacheControl: 'max-age=60' }),
        ...(i % 5 === 0 && { ContentDisposition: `attachment; filename="f${i}.bin"` }),
        ...(i % 6 === 0 && { ContentEncoding: 'identity' }),
        ...(i % 7 === 0 && { ContentLanguage: 'de-CH' }),
        Metadata: { index: String(i), ...(i % 2 === 1 && { note: 'no-checksum' }) },
      },
    });
  }
  await Promise.all(
    objects.map(({ key, body, checksum, extra }) =>
      (checksum ? withChecksum : withoutChecksum).send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }),
      ),
    ),
  );
  const large = [
    { key: `${prefix}big/multipart-source`, body: randomBytes(LARGE_OBJECT_BYTES) },
    { key: `${prefix}big/single-put`, body: randomBytes(LARGE_OBJECT_BYTES + 1) },
  ];
  const [multipart, single] = large;
  await new Upload({
    client: withoutChecksum,
    params: {
      Bucket: bucket,
      Key: multipart?.key,
      Body: multipart?.body,
      ContentType: 'application/x-big',
      Metadata: { kind: 'multipart-source' },
    },
    partSize: 8 * MiB,
  }).done();
  await withoutChecksum.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: single?.key,
      Body: single?.body,
      ContentType: 'application/x-big',
      CacheControl: 'no-store',
      Metadata: { kind: 'single-put' },
    }),
  );
  return [...objects, ...large].map(({ key, body }) => ({ key, size: body.length, sha256: sha256(body) }));
}

/** A job reading the shared source prefix and writing its own prefix of the versioned destination. */
export function matrixJob(sandbox: SandboxInfo, name: string, sourcePrefix: string): Job {
  const jobId = `fm-${name}-${randomBytes(3).toString('hex')}`;
  return parseJob({
    jobId,
    source: {
      roleArn: sandbox.accountA.roleArn,
      externalId: sandbox.accountA.externalId,
      bucket: sandbox.accountA.bucket,
      prefix: sourcePrefix,
    },
    destination: { bucket: DESTINATION_BUCKET, prefix: `${jobId}/` },
    options: { concurrency: 8 },
  });
}

/** Thrown when a run does not settle in its time bound: a hang, reported instead of hanging the suite. */
export class RunHungError extends Error {
  /** The run itself, still going: await it (bounded) once its connections are freed. */
  constructor(
    message: string,
    readonly settled: Promise<unknown>,
  ) {
    super(message);
    this.name = 'RunHungError';
  }
}

/**
 * One run, bounded: rejects with {@link RunHungError} after `timeoutMs` (the run itself goes on in the
 * background until its connections are reset). Waits out a lease a dead or hung run left behind.
 */
export async function runBounded(deps: SyncDependencies, job: Job, timeoutMs: number): Promise<RunSummary> {
  const deadline = Date.now() + timeoutMs;
  const attempt = async (): Promise<RunSummary> => {
    for (;;) {
      try {
        return await syncJob(deps, job, { leaseTtlMs: LEASE_TTL_MS, objectRetry: { baseBackoffMs: 20 } });
      } catch (error) {
        if (!(error instanceof JobAlreadyRunningError) || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, LEASE_TTL_MS / 3));
      }
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const run = attempt();
  const settled = run.catch(() => {});
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new RunHungError(`run of ${job.jobId} did not finish within ${timeoutMs / 1000} s`, settled)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([run, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Clean runs until one copies nothing and fails no more than the keys expected to fail, at most
 * `maxRuns`; returns every run's summary.
 */
export async function runUntilQuiet(
  deps: SyncDependencies,
  job: Job,
  options: { maxRuns?: number; timeoutMs: number; expectedFailures?: string[] },
): Promise<RunSummary[]> {
  const summaries: RunSummary[] = [];
  const expected = new Set(options.expectedFailures ?? []);
  for (let run = 0; run < (options.maxRuns ?? 4); run += 1) {
    const summary = await runBounded(deps, job, options.timeoutMs);
    summaries.push(summary);
    const unexpected = summary.failures.filter((failure) => !expected.has(failure.key));
    if (summary.copied === 0 && unexpected.length === 0 && summary.status === 'complete') break;
  }
  return summaries;
}

/**
 * What every case must end in: the destination equals the source byte for byte (content, content headers,
 * metadata), one version per key and no delete markers, no incomplete multipart upload under the job's
 * prefix, and the ledger agrees with both. Keys in `failing` must be absent and recorded as failed.
 */
export async function expectConverged(
  matrix: FaultMatrix,
  job: Job,
  source: SourceObject[],
  failing: string[] = [],
): Promise<void> {
  const { producer, consumer, deps } = matrix;
  const sourceBucket = job.source.bucket;
  const destinationKey = (key: string) => job.destination.prefix + key.slice(job.source.prefix.length);
  const problems: string[] = [];

  const versions = await listVersions(consumer, job.destination.prefix);
  const stored = new Map<string, number>();
  for (const version of versions.versions) stored.set(version.key, (stored.get(version.key) ?? 0) + 1);
  for (const marker of versions.deleteMarkers) problems.push(`${marker}: delete marker`);
  for (const [key, count] of stored) if (count !== 1) problems.push(`${key}: ${count} versions, not 1`);
  const expectedKeys = new Set(
    source.filter((o) => !failing.includes(o.key)).map((o) => destinationKey(o.key)),
  );
  for (const key of stored.keys())
    if (!expectedKeys.has(key)) problems.push(`${key}: not expected at the destination`);

  const ledger = new Map<string, LedgerEntry>();
  for (const entry of await readLedger(deps, job.jobId)) ledger.set(entry.key, entry);

  const checks = source.map((object) => async () => {
    const target = destinationKey(object.key);
    const entry = ledger.get(object.key);
    if (failing.includes(object.key)) {
      if (stored.has(target)) {
        const copy = await readAll(consumer, target);
        const verdict = sha256(copy) === object.sha256 ? 'the right bytes' : 'a WRONG object';
        problems.push(`${object.key}: must have failed, yet the destination holds ${verdict}`);
      }
      if (!entry?.failure) problems.push(`${object.key}: not recorded as failed in the ledger`);
      if (entry?.etag) problems.push(`${object.key}: ledger records a copy of a key that must fail`);
      return;
    }
    if (!stored.has(target)) {
      problems.push(`${object.key}: missing at the destination`);
      return;
    }
    const [sourceHead, copyHead, copy] = await Promise.all([
      producer.send(new HeadObjectCommand({ Bucket: sourceBucket, Key: object.key })),
      consumer.send(new HeadObjectCommand({ Bucket: DESTINATION_BUCKET, Key: target })),
      readAll(consumer, target),
    ]);
    if (copy.length !== object.size || sha256(copy) !== object.sha256) {
      problems.push(`${object.key}: content differs (${copy.length} bytes, source ${object.size})`);
    }
    const headerDiff = diffHeaders(sourceHead, copyHead);
    if (headerDiff) problems.push(`${object.key}: ${headerDiff}`);
    if (!entry) {
      problems.push(`${object.key}: no ledger entry`);
      return;
    }
    if (entry.etag !== sourceHead.ETag) {
      problems.push(`${object.key}: ledger ETag ${entry.etag}, source ${sourceHead.ETag}`);
    }
    if (entry.size !== object.size)
      problems.push(`${object.key}: ledger size ${entry.size}, source ${object.size}`);
    if (unquote(entry.destinationEtag) !== unquote(copyHead.ETag)) {
      problems.push(
        `${object.key}: ledger destination ETag ${entry.destinationEtag}, stored ${copyHead.ETag}`,
      );
    }
    if (entry.failure)
      problems.push(`${object.key}: ledger still records a failure (${entry.failure.reason})`);
    if (entry.pending) problems.push(`${object.key}: ledger still records a pending write`);
  });
  // A few reads at a time: moto serves them in parallel, and 35 MiB read back one by one is most of a case.
  for (let start = 0; start < checks.length; start += CHECK_CONCURRENCY) {
    await Promise.all(checks.slice(start, start + CHECK_CONCURRENCY).map((check) => check()));
  }
  for (const key of ledger.keys()) {
    if (!source.some((object) => object.key === key))
      problems.push(`${key}: in the ledger, not in the source`);
  }

  const uploads = await consumer.send(
    new ListMultipartUploadsCommand({ Bucket: DESTINATION_BUCKET, Prefix: job.destination.prefix }),
  );
  for (const upload of uploads.Uploads ?? []) {
    problems.push(`${upload.Key}: incomplete multipart upload ${upload.UploadId} left behind`);
  }
  expect(problems, 'destination, versions, uploads and ledger after the clean runs').toEqual([]);
}

async function readLedger(deps: SyncDependencies, jobId: string): Promise<LedgerEntry[]> {
  const entries: LedgerEntry[] = [];
  for await (const entry of deps.state.ledger(jobId)) entries.push(entry);
  return entries;
}

const CHECK_CONCURRENCY = 8;

const HEADERS = [
  'ContentType',
  'ContentEncoding',
  'CacheControl',
  'ContentDisposition',
  'ContentLanguage',
  'ContentLength',
] as const;

function diffHeaders(source: HeadObjectCommandOutput, copy: HeadObjectCommandOutput): string | undefined {
  const differing = HEADERS.filter((name) => source[name] !== copy[name]).map(
    (name) => `${name} ${JSON.stringify(copy[name])}, source ${JSON.stringify(source[name])}`,
  );
  if (JSON.stringify(source.Metadata ?? {}) !== JSON.stringify(copy.Metadata ?? {})) {
    differing.push(`metadata ${JSON.stringify(copy.Metadata)}, source ${JSON.stringify(source.Metadata)}`);
  }
  return differing.length > 0 ? differing.join('; ') : undefined;
}

async function listVersions(s3: S3Client, prefix: string) {
  const versions: { key: string; versionId?: string }[] = [];
  const deleteMarkers: string[] = [];
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  // A case holds a few dozen keys; 20 pages of 1,000 bound the loop with room to spare.
  for (let page = 0; page < 20; page += 1) {
    const listing = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: DESTINATION_BUCKET,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionIdMarker,
      }),
    );
    for (const version of listing.Versions ?? [])
      versions.push({ key: version.Key ?? '', versionId: version.VersionId });
    for (const marker of listing.DeleteMarkers ?? []) deleteMarkers.push(marker.Key ?? '');
    if (!listing.IsTruncated) break;
    keyMarker = listing.NextKeyMarker;
    versionIdMarker = listing.NextVersionIdMarker;
  }
  return { versions, deleteMarkers };
}

async function readAll(s3: S3Client, key: string): Promise<Buffer> {
  const object = await s3.send(new GetObjectCommand({ Bucket: DESTINATION_BUCKET, Key: key }));
  return Buffer.from(await (object.Body?.transformToByteArray() ?? new Uint8Array()));
}

function sha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('base64');
}

const unquote = (etag: string | undefined) => etag?.replaceAll('"', '');
