/**
 * The event path on the sandbox (docs/event-driven.md), as the two templates deploy it: AccountA's bucket
 * sends its events to A's default bus, a rule there forwards the job's ones to AccountB's S3-event bus by
 * ARN, and a rule on that bus sends them to the copy queue, wrapped with the job
 * (`{"job": …, "event": <aws.events.event.json>}`). moto 5.2.1 delivers along it but does not enforce the
 * bus policy, so `busAdmits` reads the policy the way EventBridge would for the one case a test needs.
 */
import {
  CreateEventBusCommand,
  DeleteEventBusCommand,
  DeleteRuleCommand,
  DescribeEventBusCommand,
  PutPermissionCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { PutBucketNotificationConfigurationCommand } from '@aws-sdk/client-s3';
import type { JobInput } from '../functions/core/job.js';
import { sandboxEvents, sandboxS3, sandboxSqs } from './clients.js';
import { SandboxError } from './errors.js';
import { letRuleSendTo } from './provision.js';
import type { SandboxInfo } from './sandbox.js';

/** The detail types the rules forward: what changes the bytes a job copies (object-change.ts). */
export const S3_CHANGE_DETAIL_TYPES = ['Object Created', 'Object Deleted', 'Object Restore Completed'];

/** A job's event path, and how to take it down. */
export interface EventPath {
  /** AccountB's S3-event bus. */
  busArn: string;
  /** The rule on A's default bus that forwards the job's events to B's bus. */
  sourceRuleArn: string;
  /** The rule on B's bus that sends them to the copy queue. */
  queueRuleArn: string;
  /** Removes both rules and B's bus (A's bucket keeps sending events: other jobs may use them). */
  remove(): Promise<void>;
}

/** The event pattern of a job's S3 changes: its bucket, and keys under its prefix. */
export function s3ChangePattern(bucket: string, prefix: string): string {
  const object = prefix === '' ? {} : { object: { key: [{ prefix }] } };
  return JSON.stringify({
    source: ['aws.s3'],
    'detail-type': S3_CHANGE_DETAIL_TYPES,
    detail: { bucket: { name: [bucket] }, ...object },
  });
}

/**
 * Provisions `job`'s event path to the copy queue at `copyQueueArn` (B's admin owns it). `name` keeps the
 * rules and the bus of tests sharing the sandbox apart.
 */
export async function provisionEventPath(
  sandbox: SandboxInfo,
  job: JobInput,
  {
    name,
    copyQueueUrl,
    copyQueueArn,
    fromAccountA = true,
  }: {
    name: string;
    copyQueueUrl: string;
    copyQueueArn: string;
    /** false leaves A's forwarding rule out: only events a test puts on B's bus reach the queue. */
    fromAccountA?: boolean;
  },
): Promise<EventPath> {
  const a = sandbox.accountA;
  const b = sandbox.accountB;
  const eventsA = sandboxEvents(sandbox, a.admin);
  const eventsB = sandboxEvents(sandbox, b.admin);
  const busName = `s3-events-${name}`;
  const pattern = s3ChangePattern(job.source.bucket, job.source.prefix ?? '');

  await sandboxS3(sandbox, a.admin).send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: job.source.bucket,
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    }),
  );
  const { EventBusArn: busArn } = await eventsB.send(new CreateEventBusCommand({ Name: busName }));
  // moto sends S3 events to every rule of A's buses, enabled or not, so a path without A's rule has none.
  const { RuleArn: sourceRuleArn } = fromAccountA
    ? await eventsA.send(new PutRuleCommand({ Name: `forward-${name}`, EventPattern: pattern }))
    : { RuleArn: `arn:aws:events:${sandbox.region}:${a.id}:rule/forward-${name}` };
  if (!busArn || !sourceRuleArn) throw new SandboxError('CreateEventBus or PutRule returned no ARN');
  // What template.yaml's S3EventBusPolicy says: A's account, and only A's forwarding rule.
  await eventsB.send(
    new PutPermissionCommand({ EventBusName: busName, Policy: busPolicy(busArn, a.id, sourceRuleArn) }),
  );
  if (fromAccountA) {
    await eventsA.send(
      new PutTargetsCommand({
        Rule: `forward-${name}`,
        Targets: [{ Id: 'accountb-s3-events', Arn: busArn }],
      }),
    );
  }
  const { RuleArn: queueRuleArn } = await eventsB.send(
    new PutRuleCommand({ Name: `copy-${name}`, EventBusName: busName, EventPattern: pattern }),
  );
  if (!queueRuleArn) throw new SandboxError(`PutRule copy-${name} returned no ARN`);
  await letRuleSendTo(
    sandboxSqs(sandbox, b.admin),
    { queueUrl: copyQueueUrl, queueArn: copyQueueArn },
    queueRuleArn,
  );
  await eventsB.send(
    new PutTargetsCommand({
      Rule: `copy-${name}`,
      EventBusName: busName,
      Targets: [
        {
          Id: 'copy-queue',
          Arn: copyQueueArn,
          InputTransformer: {
            InputPathsMap: {},
            InputTemplate: `{"job": ${JSON.stringify(job)}, "event": <aws.events.event.json>}`,
          },
        },
      ],
    }),
  );
  return {
    busArn,
    sourceRuleArn,
    queueRuleArn,
    async remove() {
      if (fromAccountA) {
        await eventsA.send(
          new RemoveTargetsCommand({ Rule: `forward-${name}`, Ids: ['accountb-s3-events'] }),
        );
        await eventsA.send(new DeleteRuleCommand({ Name: `forward-${name}` }));
      }
      await eventsB.send(
        new RemoveTargetsCommand({ Rule: `copy-${name}`, EventBusName: busName, Ids: ['copy-queue'] }),
      );
      await eventsB.send(new DeleteRuleCommand({ Name: `copy-${name}`, EventBusName: busName }));
      await eventsB.send(new DeleteEventBusCommand({ Name: busName }));
    },
  };
}

/** B's S3-event bus policy: PutEvents from AccountA, only through its forwarding rule. */
export function busPolicy(busArn: string, sourceAccount: string, sourceRuleArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'AccountAS3EventsRule',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${sourceAccount}:root` },
        Action: 'events:PutEvents',
        Resource: busArn,
        Condition: { ArnEquals: { 'aws:SourceArn': sourceRuleArn } },
      },
    ],
  });
}

/**
 * Whether B's bus policy, as stored, lets a rule of `account` (ARN `ruleArn`) put events on it: an Allow
 * statement for events:PutEvents whose principal is that account and whose `aws:SourceArn` condition, if
 * any, names the rule. Only the shapes `busPolicy` writes are read; moto does not evaluate them.
 */
export async function busAdmits(
  sandbox: SandboxInfo,
  busName: string,
  { account, ruleArn }: { account: string; ruleArn: string },
): Promise<boolean> {
  const { Policy } = await sandboxEvents(sandbox, sandbox.accountB.admin).send(
    new DescribeEventBusCommand({ Name: busName }),
  );
  const statements = (JSON.parse(Policy ?? '{"Statement":[]}') as { Statement: PolicyStatement[] }).Statement;
  return statements.some((statement) => {
    const actions = [statement.Action].flat();
    const principals = [statement.Principal?.AWS ?? []].flat();
    const sources = [statement.Condition?.ArnEquals?.['aws:SourceArn'] ?? ruleArn].flat();
    return (
      statement.Effect === 'Allow' &&
      actions.includes('events:PutEvents') &&
      principals.some((principal) => principal === account || principal === `arn:aws:iam::${account}:root`) &&
      sources.includes(ruleArn)
    );
  });
}

interface PolicyStatement {
  Effect?: string;
  Action?: string | string[];
  Principal?: { AWS?: string | string[] };
  Condition?: { ArnEquals?: Record<string, string | string[]> };
}
