/**
 * Every error the sync raises on purpose. Each message names the problem and, where there is one, the fix;
 * the SDK error that caused it is kept as `cause`.
 */
export class SyncError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The event or job does not match the job schema. Nothing has been read or written. */
export class JobValidationError extends SyncError {
  readonly problems: string[];
  constructor(message: string, options?: ErrorOptions & { problems?: string[] }) {
    super(message, options);
    this.problems = options?.problems ?? [message];
  }
}

/** STS refused to hand out the source account's credentials. */
export class AssumeRoleError extends SyncError {}

/** A bucket is missing or this identity may not use it. */
export class BucketAccessError extends SyncError {}

/** Another invocation holds the job's lease; this one did nothing. */
export class JobAlreadyRunningError extends SyncError {}

/** This invocation lost its lease (it expired and another run took over) and stopped writing state. */
export class LeaseLostError extends SyncError {}

/** A request to the DynamoDB state table failed; the message names the table and the operation. */
export class StateStoreError extends SyncError {
  readonly table: string;
  readonly operation: string;
  constructor(message: string, options: ErrorOptions & { table: string; operation: string }) {
    super(message, options);
    this.table = options.table;
    this.operation = options.operation;
  }
}

/** Copying one object failed; recorded in the ledger and retried on a later run. */
export class ObjectCopyError extends SyncError {
  /** Retrying in a later run may succeed (throttling, a source changed mid-copy, a network error). */
  readonly retryable: boolean;
  constructor(message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super(message, options);
    this.retryable = options?.retryable ?? true;
  }
}

/** The source object was deleted between listing and copy: counted, not a failure. */
export class SourceVanishedError extends ObjectCopyError {}

/**
 * The source object is archived (an Intelligent-Tiering archive tier, or a Glacier object whose restore
 * the listing did not show): S3 refuses the GET until it is restored. Counted as archived, not a failure.
 */
export class SourceArchivedError extends ObjectCopyError {}

/** The bytes written differ from the bytes read. The destination object is not recorded as copied. */
export class IntegrityError extends ObjectCopyError {}

/** The SDK's error name and HTTP status, where the thrown value has them. */
export function awsErrorCode(error: unknown): { name?: string; status?: number } {
  if (error === null || typeof error !== 'object') return {};
  const { name, $metadata, Code } = error as {
    name?: unknown;
    Code?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  return {
    name: typeof Code === 'string' ? Code : typeof name === 'string' ? name : undefined,
    status: $metadata?.httpStatusCode,
  };
}

/**
 * Whether S3 asked to slow down (503 SlowDown), here or in an error it caused: the prefix takes more
 * requests than S3 serves it now, and trying again at once only adds to them.
 */
export function isSlowDown(error: unknown): boolean {
  for (let at = error, depth = 0; at && depth < 5; at = (at as { cause?: unknown }).cause, depth += 1) {
    const { name, status } = awsErrorCode(at);
    if (name === 'SlowDown' || status === 503) return true;
  }
  return false;
}

/**
 * Error names with which AWS refuses a session's credentials before their stated expiry (a revoked
 * session, clock skew, a token the service no longer accepts). Assuming the role again fixes them.
 */
const REFUSED_CREDENTIALS = new Set([
  'ExpiredToken',
  'InvalidToken',
  'ExpiredTokenException',
  'TokenRefreshRequired',
]);

/** Whether `error`, or an error it was caused by, is AWS refusing the credentials it was signed with. */
export function isRefusedCredentials(error: unknown): boolean {
  // Our errors wrap the SDK's as `cause`; a few levels is plenty.
  for (let current = error, depth = 0; current !== undefined && depth < 5; depth += 1) {
    const { name } = awsErrorCode(current);
    // Stryker disable next-line ConditionalExpression: `name !== undefined` is only a type guard; the set never has undefined
    if (name !== undefined && REFUSED_CREDENTIALS.has(name)) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}

/** A one-line reason for logs and the ledger. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const { name } = awsErrorCode(error);
    return name && name !== 'Error' && !error.message.startsWith(name)
      ? `${name}: ${error.message}`
      : error.message;
  }
  return String(error);
}

/** The state table has nothing of a job id (a typo, or the wrong table): no lease, checkpoint, run or ledger. */
export class UnknownJobError extends SyncError {}

/** `jobs add` refused: the job store already holds a job with this id (`--replace` overwrites it). */
export class JobExistsError extends SyncError {}

/** `unlock` refused: the lease's holder is renewing it, or it changed while being ended. */
export class LeaseHeldError extends SyncError {}

/** Node's codes for a connection that never got an HTTP answer: refused, no such host, reset, timed out. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Why `error`, or an error it was caused by, is a failure to reach the endpoint rather than an answer
 * from AWS ("ECONNREFUSED 127.0.0.1:1", "ENOTFOUND sts.example.com", "TimeoutError"); undefined for an
 * answer (a refusal, a missing resource), which has an HTTP status.
 */
export function networkFailure(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== undefined && depth < 5; depth += 1) {
    if (current === null || typeof current !== 'object') return undefined;
    const { code, name, address, port, hostname } = current as {
      code?: unknown;
      name?: unknown;
      address?: unknown;
      port?: unknown;
      hostname?: unknown;
    };
    if (typeof code === 'string' && NETWORK_CODES.has(code)) {
      const where =
        typeof address === 'string'
          ? ` ${address}${port === undefined ? '' : `:${String(port)}`}`
          : typeof hostname === 'string'
            ? ` ${hostname}`
            : '';
      return `${code}${where}`;
    }
    // The SDK's request handler names a connection or socket timeout so, without an HTTP status.
    if (name === 'TimeoutError' && awsErrorCode(current).status === undefined) return 'timed out';
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}
