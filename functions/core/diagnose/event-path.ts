/**
 * The doctor's look at the event path of a job that follows S3 events (docs/event-driven.md), link by
 * link: AccountA's bucket sends its events to EventBridge and a rule on A's default bus forwards them to
 * AccountB's S3-event bus; that bus's policy admits AccountA; a probe object's event reaches the queue.
 *
 * AccountA's side is read with AccountA's own credentials (its admin runs the doctor, or the sandbox): the
 * read-only role the sync uses can read neither rules nor bucket configuration, and must not. Without them
 * those links are `skipped`, naming who can check them.
 *
 * The EventBridge and SQS packages are imported where they are called, not at the top: this file is part of
 * every function's bundle (the doctor), and loading them at start costs each function ~9 MB (lazy-client.ts).
 */
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import {
  DeleteObjectCommand,
  GetBucketNotificationConfigurationCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { awsErrorCode, describeError } from '../errors.js';
import type { Job } from '../job.js';
import type { DoctorCheck } from './diagnose-job.js';

/** The probe object's name under the job's prefix: dot-named so data readers skip it. */
const PROBE_NAME = '.cross-account-sync-doctor-probe';
/** How long the probe's event may take to reach the queue: EventBridge delivers in seconds. */
const PROBE_WAIT_MS = 30_000;
/** SQS's longest long poll. */
const LONG_POLL_SECONDS = 20;

/** What the doctor needs to follow one job's event path. */
export interface EventPathDependencies {
  /** AccountB's EventBridge, where the S3-event bus is. */
  consumerEvents: EventBridgeClient;
  /** AccountB's S3-event bus (name or ARN). */
  busName: string;
  /** AccountA's own clients, when the doctor has AccountA's credentials. */
  producer?: { events: EventBridgeClient; s3: S3Client };
  /**
   * The queue the bus's rule feeds, to watch for the probe's event. The doctor receives with a visibility
   * timeout of 0 and deletes nothing, so the worker still gets every message it sees.
   */
  queue?: { sqs: SQSClient; url: string };
  waitMs?: number;
}

/** The account id in an ARN, or undefined. */
export function accountOf(arn: string): string | undefined {
  return /^arn:[^:]+:[^:]+:[^:]*:(\d{12}):/.exec(arn)?.[1];
}

/**
 * Whether a bus policy lets `account` put events: a statement allowing events:PutEvents (or events:*) to
 * that account's principal, or to `*` on condition of that account (aws:PrincipalAccount,
 * aws:SourceAccount). moto does not enforce bus policies, so the doctor reads the document itself.
 */
export function busPolicyAdmits(policy: string | undefined, account: string): boolean {
  if (policy === undefined) return false;
  const document = JSON.parse(policy) as { Statement?: unknown };
  const statements = [document.Statement ?? []].flat() as Record<string, unknown>[];
  return statements.some((statement) => {
    if (statement.Effect !== 'Allow') return false;
    const actions = [statement.Action ?? []].flat() as string[];
    if (!actions.some((action) => action === 'events:PutEvents' || action === 'events:*')) return false;
    const principal = statement.Principal as string | { AWS?: string | string[] } | undefined;
    const principals = typeof principal === 'string' ? [principal] : [principal?.AWS ?? []].flat();
    if (principals.some((p) => p === account || p.startsWith(`arn:aws:iam::${account}:`))) return true;
    if (!principals.includes('*')) return false;
    const conditions = JSON.stringify(statement.Condition ?? {});
    return /"aws:(PrincipalAccount|SourceAccount)"/.test(conditions) && conditions.includes(`"${account}"`);
  });
}

/** Whether a rule's pattern takes the bucket's object events (and, when it narrows keys, the job's). */
export function patternForwards(pattern: string | undefined, job: Job): boolean {
  if (pattern === undefined) return false;
  const parsed = JSON.parse(pattern) as {
    source?: string[];
    detail?: { bucket?: { name?: string[] }; object?: { key?: ({ prefix?: string } | string)[] } };
  };
  if (!parsed.source?.includes('aws.s3')) return false;
  const names = parsed.detail?.bucket?.name;
  if (names !== undefined && !names.includes(job.source.bucket)) return false;
  const keys = parsed.detail?.object?.key;
  if (keys === undefined) return true;
  return keys.some((k) => typeof k === 'object' && job.source.prefix.startsWith(k.prefix ?? '\u0000'));
}

/**
 * Checks the event path of `job`. Each broken link is named with the fix; links after a broken one that
 * depend on it are `skipped`.
 */
export async function diagnoseEventPath(deps: EventPathDependencies, job: Job): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const producerAccount = accountOf(job.source.roleArn) ?? 'AccountA';
  const bus = await describeBus(deps, producerAccount);
  const busArn = bus.arn ?? deps.busName;
  checks.push(...(await producerChecks(deps, job, busArn)));
  checks.push(bus.check);
  checks.push(await deliveryCheck(deps, job, checks));
  return checks;
}

async function describeBus(
  deps: EventPathDependencies,
  producerAccount: string,
): Promise<{ arn?: string; check: DoctorCheck }> {
  try {
    const { DescribeEventBusCommand } = await import('@aws-sdk/client-eventbridge');
    const bus = await deps.consumerEvents.send(new DescribeEventBusCommand({ Name: deps.busName }));
    if (busPolicyAdmits(bus.Policy, producerAccount)) {
      return {
        arn: bus.Arn,
        check: { link: 'busPolicy', status: 'ok', detail: `${bus.Arn} admits AccountA ${producerAccount}` },
      };
    }
    return {
      arn: bus.Arn,
      check: {
        link: 'busPolicy',
        status: 'fail',
        detail: `the policy of ${bus.Arn} does not let AccountA ${producerAccount} put events`,
        fix:
          `aws events put-permission --event-bus-name ${deps.busName} --action events:PutEvents ` +
          `--principal ${producerAccount} --statement-id AccountA-${producerAccount}`,
      },
    };
  } catch (error) {
    return {
      check: {
        link: 'busPolicy',
        status: 'fail',
        detail: `AccountB's S3-event bus ${deps.busName} could not be read: ${describeError(error)}`,
        fix:
          awsErrorCode(error).name === 'AccessDeniedException'
            ? `Run the doctor as an identity allowed events:DescribeEventBus on ${deps.busName} (AccountB's admin or deployer)`
            : 'Deploy template.yaml with event-driven sync on (it creates the bus), or name the bus it created',
      },
    };
  }
}

async function producerChecks(deps: EventPathDependencies, job: Job, busArn: string): Promise<DoctorCheck[]> {
  if (!deps.producer) {
    const detail =
      "skipped: needs AccountA's credentials (--source-profile PROFILE): only they may read its bucket notifications and rules";
    const fix = `AccountA's admin runs the doctor with its profile, or checks source-account/template.yaml's stack (ConsumerEventBusArn=${busArn})`;
    return [
      { link: 'bucketEvents', status: 'skipped', detail, fix },
      { link: 'producerRule', status: 'skipped', detail, fix },
    ];
  }
  const { events, s3 } = deps.producer;
  const bucket = job.source.bucket;
  const notification = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  const bucketEvents: DoctorCheck =
    notification.EventBridgeConfiguration !== undefined
      ? { link: 'bucketEvents', status: 'ok', detail: `s3://${bucket} sends its events to EventBridge` }
      : {
          link: 'bucketEvents',
          status: 'fail',
          detail: `s3://${bucket} does not send its events to EventBridge`,
          fix: "Run the EnableBucketEventsCommand output of source-account/template.yaml's stack (it keeps the bucket's other notifications)",
        };
  const { ListRulesCommand, ListTargetsByRuleCommand } = await import('@aws-sdk/client-eventbridge');
  const rules = (await events.send(new ListRulesCommand({ EventBusName: 'default' }))).Rules ?? [];
  for (const rule of rules) {
    if (rule.State !== 'ENABLED' || !patternForwards(rule.EventPattern, job)) continue;
    const targets = await events.send(
      new ListTargetsByRuleCommand({ Rule: rule.Name, EventBusName: 'default' }),
    );
    if ((targets.Targets ?? []).some((target) => target.Arn === busArn)) {
      return [
        bucketEvents,
        {
          link: 'producerRule',
          status: 'ok',
          detail: `rule ${rule.Name} forwards s3://${bucket} events to ${busArn}`,
        },
      ];
    }
  }
  return [
    bucketEvents,
    {
      link: 'producerRule',
      status: 'fail',
      detail: `no enabled rule on AccountA's default bus forwards s3://${bucket}/${job.source.prefix} object events to ${busArn}`,
      fix: `Deploy source-account/template.yaml with ConsumerEventBusArn=${busArn} EventsPrefix=${job.source.prefix}`,
    },
  ];
}

async function deliveryCheck(
  deps: EventPathDependencies,
  job: Job,
  earlier: DoctorCheck[],
): Promise<DoctorCheck> {
  const broken = earlier.find((check) => check.status === 'fail');
  if (!deps.producer || !deps.queue || broken) {
    return {
      link: 'eventDelivery',
      status: 'skipped',
      detail: broken
        ? `not probed: ${broken.link} is broken`
        : !deps.producer
          ? "skipped: needs AccountA's credentials (--source-profile PROFILE): the probe writes an object in AccountA's bucket"
          : "skipped: needs the copy queue (--copy-queue-url URL, or the stack's CopyQueueUrl output) to watch for the probe",
    };
  }
  const key = `${job.source.prefix}${PROBE_NAME}-${Date.now()}`;
  const { s3 } = deps.producer;
  // An empty probe, its length stated: the SDK measures only a truthy body, and a PutObject without
  // Content-Length makes it print a misleading "Stream of unknown length" hint on console.warn.
  await s3.send(new PutObjectCommand({ Bucket: job.source.bucket, Key: key, Body: '', ContentLength: 0 }));
  try {
    const { ReceiveMessageCommand } = await import('@aws-sdk/client-sqs');
    const until = Date.now() + (deps.waitMs ?? PROBE_WAIT_MS);
    while (Date.now() < until) {
      const received = await deps.queue.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: deps.queue.url,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 0,
          WaitTimeSeconds: Math.min(LONG_POLL_SECONDS, Math.ceil((until - Date.now()) / 1000)),
        }),
      );
      if (
        (received.Messages ?? []).some((message) => message.Body?.includes(JSON.stringify(key).slice(1, -1)))
      ) {
        return {
          link: 'eventDelivery',
          status: 'ok',
          detail: `the event of probe s3://${job.source.bucket}/${key} reached the queue`,
        };
      }
    }
  } finally {
    await s3.send(new DeleteObjectCommand({ Bucket: job.source.bucket, Key: key }));
  }
  return {
    link: 'eventDelivery',
    status: 'fail',
    detail: `the event of probe s3://${job.source.bucket}/${key} did not reach the queue`,
    fix: "Check the rule on AccountB's S3-event bus: it must target the copy queue, and the queue's policy must let events.amazonaws.com send to it",
  };
}
