/**
 * The state room: everything the job keeps in DynamoDB between runs, written only under the lease fence.
 *
 * - state-store.ts (this file): the StateStore the rest of the code is given, one method per request,
 *   each answered by the file that owns that kind of item:
 *   - state-table.ts: the table's layout, its client and capacity count, errors, the fence condition;
 *   - ledger.ts, ledger-writes.ts, ledger-item.ts: the ledger read, a pass's writes to it, and the compact
 *     item a ledger entry is stored as;
 *   - ledger-in-order.ts, deletion-marks.ts: an event's writes in sequencer order, and the marks that
 *     order a destination delete against a writer of the same key;
 *   - leases.ts: the job's lease and its fencing token;
 *   - run-records.ts: the checkpoint, run records, and which jobs the table holds;
 *   - upload-records.ts: upload intents and multipart upload records;
 * - resume-tracker.ts: the settled prefix of a pass and the periodic checkpoint that saves it;
 * - interrupted-writes.ts: what runs that died may have written, from their upload intents;
 * - release-lease.ts: handing the lease back when a run ends.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KeyRange } from '../plan/list-source.js';
import * as deletionMarks from './deletion-marks.js';
import * as leases from './leases.js';
import * as ledger from './ledger.js';
import * as inOrder from './ledger-in-order.js';
import type { LedgerEntry } from './ledger-item.js';
import * as ledgerWrites from './ledger-writes.js';
import * as runRecords from './run-records.js';
import { type CapacityCounter, openStateTable, type StateTable } from './state-table.js';
import * as uploadRecords from './upload-records.js';

export type { Lease } from './leases.js';
export type { LedgerEntry, UnrecordedWrite } from './ledger-item.js';
export type { Checkpoint } from './run-records.js';
export type { CapacityCounter } from './state-table.js';
export { callStateTable } from './state-table.js';
export { intentPrefix, type MultipartUploadRecord, type UploadIntent } from './upload-records.js';

/**
 * DynamoDB-backed state for sync jobs: one object to pass around and fake in tests, its methods documented
 * where they are written.
 */
export class StateStore {
  readonly #table: StateTable;
  readonly capacity: CapacityCounter = { readCapacityUnits: 0, writeCapacityUnits: 0 };

  /** `client` and `tableName` stay readable: the doctor run by the function checks the same table. */
  constructor(
    readonly client: DynamoDBClient,
    readonly tableName: string,
  ) {
    this.#table = openStateTable(client, tableName, this.capacity);
  }

  ledger(jobId: string, range: KeyRange = {}) {
    return ledger.ledger(this.#table, jobId, range);
  }
  ledgerFailures(jobId: string) {
    return ledger.ledgerFailures(this.#table, jobId);
  }
  putLedgerEntry(jobId: string, entry: LedgerEntry, fence: number) {
    return ledgerWrites.putLedgerEntry(this.#table, jobId, entry, fence);
  }
  putPlannedEntry(jobId: string, entry: LedgerEntry, fence: number, written?: string) {
    return ledgerWrites.putPlannedEntry(this.#table, jobId, entry, fence, written);
  }
  putUncopiedEntry(jobId: string, entry: LedgerEntry, fence: number, plannedCopiedAt?: string) {
    return ledgerWrites.putUncopiedEntry(this.#table, jobId, entry, fence, plannedCopiedAt);
  }
  ledgerEntry(jobId: string, key: string) {
    return ledger.ledgerEntry(this.#table, jobId, key);
  }
  putLedgerEntryInOrder(
    jobId: string,
    entry: LedgerEntry & { sequencer: string },
    fence: number,
    guard?: inOrder.InOrderGuard,
  ) {
    return inOrder.putLedgerEntryInOrder(this.#table, jobId, entry, fence, guard);
  }
  deleteLedgerEntry(jobId: string, key: string, fence: number, readSequencer?: string, token?: string) {
    return ledgerWrites.deleteLedgerEntry(this.#table, jobId, key, fence, readSequencer, token);
  }
  markDeletion(jobId: string, read: LedgerEntry, fence: number, owner: string, now = Date.now()) {
    return deletionMarks.markDeletion(this.#table, jobId, read, fence, owner, now);
  }
  widenDeletionMark(jobId: string, key: string, token: string) {
    return deletionMarks.widenDeletionMark(this.#table, jobId, key, token);
  }
  clearDeletionMark(jobId: string, key: string, token: string) {
    return deletionMarks.clearDeletionMark(this.#table, jobId, key, token);
  }

  acquireLease(jobId: string, owner: string, ttlMs: number, now = Date.now()) {
    return leases.acquireLease(this.#table, jobId, owner, ttlMs, now);
  }
  renewLease(jobId: string, lease: leases.Lease, ttlMs: number, now = Date.now()) {
    return leases.renewLease(this.#table, jobId, lease, ttlMs, now);
  }
  releaseLease(jobId: string, lease: leases.Lease) {
    return leases.releaseLease(this.#table, jobId, lease);
  }
  readLease(jobId: string) {
    return leases.readLease(this.#table, jobId);
  }
  endLease(jobId: string, lease: leases.Lease) {
    return leases.endLease(this.#table, jobId, lease);
  }

  readCheckpoint(jobId: string) {
    return runRecords.readCheckpoint(this.#table, jobId);
  }
  writeCheckpoint(jobId: string, checkpoint: runRecords.Checkpoint, fence: number) {
    return runRecords.writeCheckpoint(this.#table, jobId, checkpoint, fence);
  }
  putRunRecord(jobId: string, record: { runId: string; startedAt: string } & object) {
    return runRecords.putRunRecord(this.#table, jobId, record);
  }
  recentRuns(jobId: string, limit = 10) {
    return runRecords.recentRuns(this.#table, jobId, limit);
  }
  hasJobRecords(jobId: string) {
    return runRecords.hasJobRecords(this.#table, jobId);
  }
  sampleJobIds(maxItems: number) {
    return runRecords.sampleJobIds(this.#table, maxItems);
  }

  putUploadIntent(
    jobId: string,
    runId: string,
    batch: number | string,
    intent: Omit<uploadRecords.UploadIntent, 'id'>,
  ) {
    return uploadRecords.putUploadIntent(this.#table, jobId, runId, batch, intent);
  }
  readUploadIntents(jobId: string, runId?: string) {
    return uploadRecords.readUploadIntents(this.#table, jobId, runId);
  }
  deleteUploadIntents(jobId: string, ids: string[]) {
    return uploadRecords.deleteUploadIntents(this.#table, jobId, ids);
  }
  putMultipartUpload(jobId: string, record: uploadRecords.MultipartUploadRecord) {
    return uploadRecords.putMultipartUpload(this.#table, jobId, record);
  }
  readMultipartUploads(jobId: string) {
    return uploadRecords.readMultipartUploads(this.#table, jobId);
  }
  deleteMultipartUpload(jobId: string, key: string, delivery?: string) {
    return uploadRecords.deleteMultipartUpload(this.#table, jobId, key, delivery);
  }
}
