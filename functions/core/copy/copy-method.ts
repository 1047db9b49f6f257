/**
 * Which copier a job's objects go through (options.copyMethod): the streamed copy (copy-object.ts), or
 * S3's own server-side copy (server-side-copy.ts). Inline runs and fan-out copy tasks both ask here, and
 * part tasks ask which part copier to use (copy-part.ts, copy-part-server-side.ts).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Job } from '../job.js';
import { type CopyOptions, type CopyRequest, type CopyResult, copyObject } from './copy-object.js';
import { type CopiedPart, copyPart, type PartCopyRequest } from './copy-part.js';
import { copyPartServerSide } from './copy-part-server-side.js';
import { serverSideCopy } from './server-side-copy.js';

/** Copies one object into the destination, verified, with the write conditional. */
export type Copier = (
  clients: { sourceS3: S3Client; destinationS3: S3Client },
  request: CopyRequest,
  options?: CopyOptions,
) => Promise<CopyResult>;

/** The copier for `job`'s options.copyMethod. */
export function copierFor(job: Pick<Job, 'options'>): Copier {
  return job.options.copyMethod === 'server-side' ? serverSideCopy : copyObject;
}

/** Copies one part of a giant object into its multipart upload (a fan-out part task). */
export type PartCopier = (
  clients: { sourceS3: S3Client; destinationS3: S3Client },
  request: PartCopyRequest,
  signal?: AbortSignal,
) => Promise<CopiedPart>;

/** The part copier for `job`'s options.copyMethod: a ranged GET and UploadPart, or UploadPartCopy. */
export function partCopierFor(job: Pick<Job, 'options'>): PartCopier {
  return job.options.copyMethod === 'server-side' ? copyPartServerSide : copyPart;
}
