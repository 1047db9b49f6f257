/** What a refused or failed write becomes: an ObjectCopyError (or IntegrityError) naming the object and why. */
import { awsErrorCode, IntegrityError, ObjectCopyError } from '../errors.js';

/** Whatever a request cut by the deadline threw (the SDK's, the signal's reason), as an AbortError. */
export function deadlineError(error: unknown): Error {
  return Object.assign(new Error('aborted at the deadline', { cause: error }), { name: 'AbortError' });
}

/** S3 refused a conditional write (412 PreconditionFailed). */
export function isPreconditionFailure(error: unknown): boolean {
  const { name, status } = awsErrorCode(error);
  return name === 'PreconditionFailed' || status === 412;
}

/** A failed write as the error a run reports: the deadline, a conflict, a refused digest, denied access. */
export function explainUploadFailure(error: unknown, where: string): Error {
  if (error instanceof ObjectCopyError) return error;
  const { name, status } = awsErrorCode(error);
  if (name === 'AbortError') {
    return new ObjectCopyError(`${where}: upload aborted at the deadline; the next run copies it`, {
      cause: error,
      retryable: false,
    });
  }
  if (name === 'ConditionalRequestConflict' || status === 409) {
    return new ObjectCopyError(`${where} was written by someone else during the copy; retrying next run`, {
      cause: error,
    });
  }
  if (name === 'BadDigest' || name === 'InvalidDigest') {
    return new IntegrityError(`${where}: S3 refused the bytes as not matching their digest`, {
      cause: error,
    });
  }
  if (name === 'NoSuchKey') return error as Error;
  if (name === 'AccessDenied' || status === 403) {
    return new ObjectCopyError(
      `PUT ${where} was denied: this identity needs s3:PutObject on the destination`,
      {
        cause: error,
        retryable: false,
      },
    );
  }
  return new ObjectCopyError(`PUT ${where} failed: ${(error as Error).message ?? String(error)}`, {
    cause: error,
  });
}
