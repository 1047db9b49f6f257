/**
 * The diagnose room: read-only looks at a job, for the CLI.
 *
 * - diagnose-job.ts (this file): the doctor, checking each link a run depends on and naming the fix; the
 *   checks themselves live beside it, one file per group of links:
 *   - check-assume-role.ts: the caller assumes the source role, and the role requires the ExternalId;
 *   - consumer-trust.ts: whether the source role trusts only the sync function's role;
 *   - check-source.ts: the role lists and reads the source (and, server-side, this identity reads it);
 *   - check-this-account.ts: this identity writes the destination, and the state table answers;
 *   - event-path.ts: the event path of a job that follows S3 events;
 * - preview-job.ts: the plan a run would follow, without copying;
 * - read-job-status.ts: the lease, checkpoint and last runs on record.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { Job } from '../job.js';
import { callerArn, checkAssumeRole } from './check-assume-role.js';
import { checkGetSource, checkListSource, checkServerSideRead } from './check-source.js';
import { checkStateTable, checkWriteDestination } from './check-this-account.js';
import { diagnoseEventPath, type EventPathDependencies } from './event-path.js';

/** The links of the chain a run depends on, in the order a run uses them. */
export type DoctorLink =
  | 'assumeRole'
  | 'externalId'
  | 'consumerTrust'
  | 'listSource'
  | 'getSource'
  | 'serverSideCopy'
  | 'writeDestination'
  | 'stateTable'
  // A job that follows S3 events (event-path.ts).
  | 'bucketEvents'
  | 'producerRule'
  | 'busPolicy'
  | 'eventDelivery';

/** One link's verdict. `warn` works but is risky; `skipped` could not be tested (an earlier link broke). */
export interface DoctorCheck {
  link: DoctorLink;
  status: 'ok' | 'warn' | 'fail' | 'skipped';
  /** What was found, e.g. "listed s3://bucket/prefix". */
  detail: string;
  /** What to change, for `warn` and `fail`. */
  fix?: string;
  /** The link failed because an endpoint did not answer (refused, no such host, timed out): not access. */
  unreachable?: boolean;
}

/** The doctor's findings: `ok` unless some link failed. */
export interface DoctorReport {
  jobId: string;
  ok: boolean;
  /** The identity the checks ran as (GetCallerIdentity), when STS answered. */
  caller?: string;
  checks: DoctorCheck[];
}

/** The caller's clients. The table name may be missing: that is one of the findings. */
export interface DoctorDependencies {
  sts: STSClient;
  destinationS3: S3Client;
  sourceS3: (credentials: AwsCredentialIdentity, region?: string) => S3Client;
  dynamodb: DynamoDBClient;
  tableName?: string;
  /** Where STS is called, for a message when it does not answer (AWS_ENDPOINT_URL_STS, or AWS's). */
  stsEndpoint?: string;
  /**
   * The execution role(s) of the deployed sync function (the stack's SyncFunctionRoleArn output), when
   * known: a caller outside them that may still assume the source role shows the trust is account-wide.
   */
  functionRoleArns?: string[];
  /** The doctor runs inside the sync function (a doctor event), so the caller is its role. */
  callerIsFunction?: boolean;
  /** For a job that follows S3 events: what the event path's checks need (event-path.ts); without it none run. */
  eventPath?: EventPathDependencies;
}

/**
 * Checks, in order, every link a run of `job` needs and says which is broken and how to fix it: the
 * caller may assume the source role, the ExternalId is required and accepted, the role may list and get
 * the source, this identity may write the destination, and the state table answers. Its only write is a
 * multipart upload started and aborted in the destination (no object is ever stored); no lease, no state.
 */
export async function diagnoseJob(deps: DoctorDependencies, job: Job): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const caller = await callerArn(deps.sts);
  const assumed = await checkAssumeRole(deps, job, caller, checks);
  if (assumed) {
    const sourceS3 = deps.sourceS3(assumed, job.source.region);
    const firstKey = await checkListSource(sourceS3, job, checks);
    await checkGetSource(sourceS3, job, firstKey, checks);
    if (job.options.copyMethod === 'server-side') {
      checks.push(await checkServerSideRead(deps.destinationS3, job, firstKey?.Key, caller));
    }
  } else {
    const why = 'not tested: the source role could not be assumed';
    checks.push({ link: 'listSource', status: 'skipped', detail: why });
    checks.push({ link: 'getSource', status: 'skipped', detail: why });
  }
  checks.push(await checkWriteDestination(deps.destinationS3, job));
  checks.push(await checkStateTable(deps, job));
  if (job.options.events && deps.eventPath) checks.push(...(await diagnoseEventPath(deps.eventPath, job)));
  return { jobId: job.jobId, ok: checks.every((check) => check.status !== 'fail'), caller, checks };
}
