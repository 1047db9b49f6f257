/**
 * A giant object's shared multipart upload as part-uploads.ts stores it: what its opener knows, the state
 * it moves through, and each part as uploaded.
 */
import type { LedgerEntry } from './state-store.js';

/** What the opener of a version's upload knows: the object as listed, and the upload it created. */
export interface NewPartUpload {
  key: string;
  etag: string;
  size: number;
  /** ISO 8601, as listed. */
  lastModified: string;
  storageClass: string;
  reason: 'new' | 'changed' | 'retry';
  /** The key's ledger entry before this copy (its destination ETag makes the completion conditional). */
  previous?: LedgerEntry;
  destinationKey: string;
  partSize: number;
  partCount: number;
  uploadId: string;
  /** The opener's own record of the upload in the job's state (state-store's upload records). */
  recordKey: string;
  /**
   * A change no event delivered, outside the grace (events/missed-by-events.ts), judged by the planner:
   * the task that settles the completed copy counts it in `missedByEvents`, as a copy task counts its own.
   */
  missedByEvents?: true;
}

export type PartUploadState = 'open' | 'completing' | 'completed' | 'aborted';

/** A version's upload as stored. */
export interface PartUpload extends NewPartUpload {
  state: PartUploadState;
  /** Parts recorded so far (each once). */
  recorded: number;
  claimedBy?: string;
  /** The part task whose delivery claimed the completion: only its redelivery may take a quiet claim over. */
  claimedFor?: string;
  /** When the completion was claimed (ISO 8601). */
  claimedAt?: string;
  /** Why it was aborted, and the part task that counts the object failed. */
  abortedBecause?: string;
  abortedFor?: string;
  /** Aborted because the source object was deleted (counted vanished, not failed). */
  vanished?: boolean;
  /**
   * Given up because an event recorded a newer change of the key meanwhile (its stored sequencer): the
   * event's copy and record stand, and the object counts as already current (skipped), not failed.
   */
  leftToEvent?: string;
  /** The completed object's ETag. */
  destinationEtag?: string;
}

/** One part as uploaded. */
export interface RecordedPart {
  partNumber: number;
  /** The ETag S3 returned for the part, quoted as S3 gives it. */
  etag: string;
  size: number;
  /** MD5 (base64) of the bytes sent, as its Content-MD5; absent for a part S3 copied (UploadPartCopy). */
  md5?: string;
}
