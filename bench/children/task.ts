import { existsSync, readFileSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';

/** Reads the task a child was started with: a JSON file named by its first argument. */
export function readTask<T>(): T {
  const path = process.argv[2];
  if (!path) throw new Error('usage: node <child>.mjs <task.json>');
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Where the source is and who may read it. */
export interface SourceAccess {
  roleArn: string;
  externalId: string;
}

/**
 * An S3 client reading with the source role's credentials, assumed with the environment's keys
 * (AccountB's syncer), as the sync does. Endpoints come from AWS_ENDPOINT_URL_*; path-style, as locally.
 */
export async function assumedRoleS3(access: SourceAccess): Promise<S3Client> {
  const { Credentials } = await new STSClient({}).send(
    new AssumeRoleCommand({
      RoleArn: access.roleArn,
      ExternalId: access.externalId,
      RoleSessionName: 'bench-baseline',
    }),
  );
  if (!Credentials?.AccessKeyId || !Credentials.SecretAccessKey) throw new Error('AssumeRole gave no keys');
  return new S3Client({
    forcePathStyle: true,
    credentials: {
      accessKeyId: Credentials.AccessKeyId,
      secretAccessKey: Credentials.SecretAccessKey,
      sessionToken: Credentials.SessionToken,
    },
  });
}

/** The child's last stdout line: its result as JSON, for the parent to parse. */
export function printResult(result: object): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * Seconds this process's main thread (where its JavaScript runs) has waited runnable for a CPU, from
 * /proc/self/schedstat's second field: on a shared machine, the time other work took from it. Undefined
 * where the kernel does not keep it.
 */
export function cpuWaitSeconds(): number | undefined {
  const path = '/proc/self/schedstat';
  if (!existsSync(path)) return undefined;
  const waitedNs = Number(readFileSync(path, 'utf8').split(' ')[1]);
  return Number.isFinite(waitedNs) ? waitedNs / 1e9 : undefined;
}
