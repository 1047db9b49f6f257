/**
 * Jobs stored as data, in the state table: `cross-account-sync jobs add` writes them, and a schedule whose
 * input is only `{"jobId": "..."}` makes the function read its job here (handle-event.ts). So a deployment
 * runs any number of jobs with no template edit.
 *
 *   pk = "jobs"  sk = <jobId>  { job: <the job as given>, status: "active" | "paused", schedule?, createdAt, updatedAt }
 *
 * One partition holds every job: a deployment has tens or hundreds, read one at a time by their runs
 * (a partition serves 3,000 reads/s) and listed in pages by the CLI. The job is kept as it was given, not
 * with defaults filled in, so a later default applies to it as it does to a schedule's input; it is
 * validated with the job schema when written and again when read.
 */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { JobExistsError, JobValidationError, UnknownJobError } from '../errors.js';
import { type Job, parseJob } from '../job.js';
import { callStateTable } from './state-table.js';

const JOBS_PK = 'jobs';

/** Whether a stored job's schedule runs it (`active`) or its runs are skipped (`paused`). */
export type JobStatus = 'active' | 'paused';

/** A job as the store holds it. */
export interface StoredJob {
  job: Job;
  status: JobStatus;
  /** The schedule expression `jobs add` gave its schedule, e.g. `rate(15 minutes)`. */
  schedule?: string;
  createdAt: string;
  updatedAt: string;
}

/** One page of {@link JobStore.list}: `next` is where the following page starts, absent on the last. */
export interface JobPage {
  jobs: StoredJob[];
  next?: string;
}

/** The jobs of one state table. Every write is conditional on whether the job is there. */
export class JobStore {
  readonly #doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly tableName: string,
    readonly now: () => Date = () => new Date(),
  ) {
    this.#doc = DynamoDBDocumentClient.from(client);
  }

  /**
   * Validates `input` as a job and stores it, active. With `replace`, an existing job of that id is
   * overwritten and keeps its status and creation time (a paused job stays paused).
   *
   * @throws JobValidationError naming the field; JobExistsError when the id is taken and not `replace`.
   */
  async add(input: unknown, options: { replace?: boolean; schedule?: string } = {}): Promise<StoredJob> {
    const { jobId } = parseJob(input);
    const at = this.now().toISOString();
    const withSchedule = options.schedule !== undefined;
    try {
      const { Attributes } = await this.#send('add (UpdateItem)', () =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: JOBS_PK, sk: jobId },
            UpdateExpression:
              'SET #job = :job, #status = if_not_exists(#status, :active), #created = if_not_exists(#created, :at), ' +
              `#updated = :at${withSchedule ? ', #schedule = :schedule' : ''}`,
            // A new id only, unless told to replace: two people adding the same id must not overwrite each other.
            ConditionExpression: options.replace ? undefined : 'attribute_not_exists(sk)',
            ExpressionAttributeNames: {
              '#job': 'job',
              '#status': 'status',
              '#created': 'createdAt',
              '#updated': 'updatedAt',
              ...(withSchedule && { '#schedule': 'schedule' }),
            },
            ExpressionAttributeValues: {
              ':job': input,
              ':active': 'active',
              ':at': at,
              ...(withSchedule && { ':schedule': options.schedule }),
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return storedJob(jobId, Attributes);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new JobExistsError(
          `job "${jobId}" is already stored in ${this.tableName}: add it with --replace to overwrite it ` +
            '(it keeps its status), or remove it first',
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** The stored job, validated, or undefined when there is none of that id. */
  async get(jobId: string): Promise<StoredJob | undefined> {
    const { Item } = await this.#send('get (GetItem)', () =>
      this.#doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: JOBS_PK, sk: jobId } })),
    );
    return Item === undefined ? undefined : storedJob(jobId, Item);
  }

  /** The stored job, validated. @throws UnknownJobError naming `jobs add` when there is none. */
  async require(jobId: string): Promise<StoredJob> {
    const stored = await this.get(jobId);
    if (stored === undefined) throw this.#unknown(jobId);
    return stored;
  }

  /** Marks the job active or paused. @throws UnknownJobError when there is none of that id. */
  async setStatus(jobId: string, status: JobStatus): Promise<StoredJob> {
    try {
      const { Attributes } = await this.#send('setStatus (UpdateItem)', () =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: JOBS_PK, sk: jobId },
            UpdateExpression: 'SET #status = :status, #updated = :at',
            // Never create a job that is only a status.
            ConditionExpression: 'attribute_exists(sk)',
            ExpressionAttributeNames: { '#status': 'status', '#updated': 'updatedAt' },
            ExpressionAttributeValues: { ':status': status, ':at': this.now().toISOString() },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return storedJob(jobId, Attributes);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw this.#unknown(jobId, error);
      throw error;
    }
  }

  /** Deletes the job; its ledger, runs and lease stay (a job added again under the id resumes from them). */
  async remove(jobId: string): Promise<boolean> {
    const { Attributes } = await this.#send('remove (DeleteItem)', () =>
      this.#doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: JOBS_PK, sk: jobId },
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return Attributes !== undefined;
  }

  /** One page of jobs in id order (UTF-8 bytes), starting after `after`. */
  async list(options: { limit?: number; after?: string } = {}): Promise<JobPage> {
    const { Items, LastEvaluatedKey } = await this.#send('list (Query)', () =>
      this.#doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': JOBS_PK },
          Limit: options.limit,
          ExclusiveStartKey: options.after === undefined ? undefined : { pk: JOBS_PK, sk: options.after },
        }),
      ),
    );
    const jobs = (Items ?? []).map((item) => storedJob(String(item.sk), item));
    const next = LastEvaluatedKey?.sk;
    return { jobs, ...(typeof next === 'string' && { next }) };
  }

  /** Every stored job, page by page. */
  async *all(pageSize = 100): AsyncGenerator<StoredJob> {
    let after: string | undefined;
    do {
      const page = await this.list({ limit: pageSize, after });
      yield* page.jobs;
      after = page.next;
    } while (after !== undefined);
  }

  #send<T>(operation: string, send: () => Promise<T>): Promise<T> {
    return callStateTable(this.tableName, `job store ${operation}`, send);
  }

  #unknown(jobId: string, cause?: unknown): UnknownJobError {
    return new UnknownJobError(
      `no job "${jobId}" in the job store of ${this.tableName}: add it with ` +
        '`cross-account-sync jobs add --file <job.json>` (`jobs list` shows the stored ones)',
      { cause },
    );
  }
}

/** A stored item as a {@link StoredJob}, its job validated again: the schema may have changed since. */
function storedJob(jobId: string, item: Record<string, unknown> | undefined): StoredJob {
  if (item === undefined) throw new JobValidationError(`stored job "${jobId}" came back empty`);
  let job: Job;
  try {
    job = parseJob(item.job);
  } catch (error) {
    const problems = error instanceof JobValidationError ? error.problems : undefined;
    throw new JobValidationError(`stored job "${jobId}": ${(error as Error).message}`, {
      cause: error,
      problems,
    });
  }
  if (job.jobId !== jobId) {
    throw new JobValidationError(`stored job "${jobId}" holds a job with jobId "${job.jobId}"`);
  }
  const status: JobStatus = item.status === 'paused' ? 'paused' : 'active';
  return {
    job,
    status,
    ...(typeof item.schedule === 'string' && { schedule: item.schedule }),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
  };
}
