/**
 * The planner's side of a giant object (docs/fan-out.md): a copy step above `options.fanOut.partTasksAbove`
 * becomes one multipart upload of the pass (state/part-uploads.ts) and one part task per part, announced
 * to the pass (`expect`, once per object version) before they are sent, so the pass cannot end while any
 * part is outstanding.
 *
 * A planner delivered twice opens the version's upload once: the second opener finds the first one's, or,
 * racing it, loses the conditional write, adopts the winner's id and aborts the upload it created. Each
 * opener keeps its own upload on record in the job's state (one record per delivery, so a duplicate never
 * overwrites another's) until it is completed or aborted: an opener that dies between creating the upload
 * and recording it leaves a record the next pass's start aborts (copy/clean-orphan-uploads.ts).
 */
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
} from '@aws-sdk/client-s3';
import { type CopyRequest, contentHeaders } from '../copy/copy-object.js';
import { followSourceParts, planParts } from '../copy/part-plan.js';
import { explainSourceFailure, learnSourceCheck, readSourceTags } from '../copy/read-source.js';
import { partTasks, versionId } from '../dispatch/part-tasks.js';
import { ObjectCopyError } from '../errors.js';
import { destinationKeyFor } from '../plan/keys.js';
import type { PlanStep } from '../plan/plan.js';
import type { PartUpload } from '../state/part-upload-item.js';
import { PartUploads } from '../state/part-uploads.js';
import type { OpenPass, TaskControl } from './open-pass.js';

/** A giant object's copy, `missedByEvents` when the planner judged it a change no event delivered. */
type CopyStep = Extract<PlanStep, { action: 'copy' }> & { missedByEvents?: boolean };

const MiB = 1024 * 1024;
/**
 * The bytes of one part task (unless 10,000 parts need more): a worker holds the part in memory and
 * uploads it in a few seconds, so a delivery that fails costs little to repeat.
 */
export const PART_TASK_BYTES = 64 * MiB;
/**
 * The bytes of one part task of a server-side job (UploadPartCopy: no byte in the worker, so no memory
 * bound). Larger parts mean fewer tasks: a 5 TiB object is 5,120 of these, where streamed parts need
 * 9,987 of 525 MiB. Not S3's 5 GiB: one UploadPartCopy runs at about 66 MiB/s on S3 (awslabs/aws-c-s3
 * PR #288 measured a 1 GiB part in 15.6 s) and as slowly as 1 GB a minute (HumanCellAtlas/data-store
 * #393), so a 1 GiB part takes 15-65 s, within the S3 client's 120 s request timeout even if S3 held its
 * answer to the end, and a failed delivery repeats at most a minute of S3's work (docs/fan-out.md).
 */
export const SERVER_SIDE_PART_TASK_BYTES = 1024 * MiB;

/** The part tasks of an object's copy step, or why it goes as a copy task instead. */
export type PartOpening =
  | { status: 'sent'; tasks: number; upload: PartUpload }
  /** The upload of this version was completed or aborted by an earlier delivery: nothing to send. */
  | { status: 'settled'; upload: PartUpload }
  /** The source refused before any upload (changed, deleted, archived): a copy task reports it. */
  | { status: 'refused'; reason: string };

/** The version's upload in `pass`, opened (or adopted) for `step`. */
export function partUploadsOf(pass: OpenPass): PartUploads {
  const { state } = pass.deps;
  return new PartUploads(state.client, state.tableName, pass.job.jobId, pass.fence);
}

/**
 * Opens (or adopts) the multipart upload of `step`'s object version, announces its part tasks and sends
 * them. `control.minPartSize` is a test's smaller part size (default PART_TASK_BYTES, or
 * SERVER_SIDE_PART_TASK_BYTES for a server-side job).
 *
 * @throws what failed on the way (the planner's message comes back and opens the same upload again)
 */
export async function openPartUpload(
  pass: OpenPass,
  step: CopyStep,
  control: Pick<TaskControl, 'worker' | 'signal' | 'minPartSize'>,
): Promise<PartOpening> {
  const { deps, job } = pass;
  const send = deps.queues.part;
  if (!send) throw new Error('openPartUpload needs the part queue');
  const { key, etag, size } = step.object;
  const version = versionId(key, etag);
  const uploads = partUploadsOf(pass);
  let upload = await uploads.find(version);
  if (!upload) {
    try {
      upload = await createUpload(pass, step, uploads, control);
    } catch (error) {
      if (error instanceof ObjectCopyError && !error.retryable)
        return { status: 'refused', reason: error.message };
      throw error;
    }
  }
  if (upload.state === 'completed' || upload.state === 'aborted') return { status: 'settled', upload };
  const tasks = partTasks({
    jobId: job.jobId,
    fence: pass.fence,
    pass: pass.runId,
    key,
    etag,
    size,
    uploadId: upload.uploadId,
    partSize: upload.partSize,
  });
  await pass.tally.expect(`parts-${version}`, tasks.length);
  for (const task of tasks) await send(task);
  return { status: 'sent', tasks: tasks.length, upload };
}

async function createUpload(
  pass: OpenPass,
  step: CopyStep,
  uploads: PartUploads,
  control: Pick<TaskControl, 'worker' | 'signal' | 'minPartSize'>,
): Promise<PartUpload> {
  const { deps, job, source, runId } = pass;
  const { object, reason, previous } = step;
  const destinationKey = destinationKeyFor(object.key, job.source.prefix, job.destination.prefix);
  const request: CopyRequest = {
    sourceBucket: job.source.bucket,
    key: object.key,
    etag: object.etag,
    size: object.size,
    destinationBucket: job.destination.bucket,
    destinationKey,
    overwrite: job.options.mirror,
  };
  const { signal } = control;
  const head = await source.s3
    .send(new HeadObjectCommand({ Bucket: request.sourceBucket, Key: request.key, IfMatch: request.etag }), {
      abortSignal: signal,
    })
    .catch((error: unknown) => {
      throw explainSourceFailure(error, request, 'HEAD');
    });
  const tagging = job.options.copyTags ? await readSourceTags(source.s3, request, signal) : undefined;
  const partSize =
    control.minPartSize ??
    (job.options.copyMethod === 'server-side' ? SERVER_SIDE_PART_TASK_BYTES : PART_TASK_BYTES);
  const plan = partPlan(object.size, await learnSourceCheck(source.s3, request, signal), partSize);
  // On record before the upload exists, under this delivery's own name (see the file's comment).
  const record = {
    key: `${object.key}\u0000part-upload\u0000${control.worker}`,
    destinationKey,
    uploadId: '',
    runId,
    startedAt: new Date().toISOString(),
    sourceEtag: object.etag,
    size: object.size,
    partSize: plan.partSize,
  };
  await deps.state.putMultipartUpload(job.jobId, record);
  const created = await deps.destinationS3.send(
    new CreateMultipartUploadCommand({
      Bucket: request.destinationBucket,
      Key: destinationKey,
      ...contentHeaders(head),
      ...(tagging && { Tagging: tagging }),
    }),
    { abortSignal: signal },
  );
  const uploadId = created.UploadId ?? '';
  await deps.state.putMultipartUpload(job.jobId, { ...record, uploadId });
  const kept = await uploads.open(versionId(object.key, object.etag), {
    key: object.key,
    etag: object.etag,
    size: object.size,
    lastModified: object.lastModified.toISOString(),
    storageClass: object.storageClass,
    reason,
    ...(previous && { previous }),
    destinationKey,
    partSize: plan.partSize,
    partCount: plan.partCount,
    uploadId,
    recordKey: record.key,
    ...(step.missedByEvents && { missedByEvents: true as const }),
  });
  if (kept.uploadId !== uploadId) {
    // Another delivery of the planner opened this version first: its upload is the one.
    await deps.destinationS3.send(
      new AbortMultipartUploadCommand({
        Bucket: request.destinationBucket,
        Key: destinationKey,
        UploadId: uploadId,
      }),
    );
    await deps.state.deleteMultipartUpload(job.jobId, record.key);
  }
  return kept;
}

/**
 * The parts: the source's own when they are at least `partSize` and equal (the completed copy then has the
 * source's ETag, which checks the whole object), else parts of `partSize` (more if 10,000 need more).
 */
function partPlan(size: number, check: Awaited<ReturnType<typeof learnSourceCheck>>, partSize: number) {
  const own = planParts(size, partSize);
  const followed = check.kind === 'composite' ? followSourceParts(size, check.partSizes) : undefined;
  return followed && followed.partSize >= own.partSize ? followed : own;
}
