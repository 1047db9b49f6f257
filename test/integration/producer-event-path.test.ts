/**
 * The producer's forwarding rule as source-account/template.yaml declares it, and the doctor's look at the
 * event path, over moto (auth enforced): AccountA's bucket sends its events to A's default bus, the rule
 * forwards them to AccountB's bus by ARN, a rule there sends them to a queue. moto does not enforce bus
 * policies, so the doctor reads the policy document itself (docs/event-driven.md).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CreateEventBusCommand,
  PutPermissionCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemovePermissionCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { parse } from 'yaml';
import { diagnoseJob } from '../../functions/core/diagnose/diagnose-job.js';
import { diagnoseEventPath, type EventPathDependencies } from '../../functions/core/diagnose/event-path.js';
import { parseJob } from '../../functions/core/job.js';
import {
  type SandboxCredentials,
  sandboxDynamo,
  sandboxEvents,
  sandboxS3,
  sandboxSqs,
  sandboxSts,
} from '../../sandbox/clients.js';
import { useSandbox } from './helpers.js';

const { sandbox } = useSandbox();
const { accountA, accountB } = sandbox;
const run = randomBytes(3).toString('hex');
const bucket = `evpath-${run}`;
const busName = `s3-events-${run}`;
const prefix = 'exports/';

const producerS3 = sandboxS3(sandbox, accountA.admin);
const producerEvents = sandboxEvents(sandbox, accountA.admin);
const consumerEvents = sandboxEvents(sandbox, accountB.admin);
const consumerSqs = sandboxSqs(sandbox, accountB.admin);
let busArn = '';
let queueUrl = '';

const job = parseJob({
  jobId: `evpath-${run}`,
  source: { roleArn: accountA.roleArn, externalId: accountA.externalId, bucket, prefix },
  destination: { bucket: accountB.destinationBucket, prefix: `evpath-${run}/` },
  options: { events: true },
});

/** The template's rule pattern with its parameters filled in, as CloudFormation would deploy it. */
function templatePattern(): string {
  const source = parse(readFileSync('source-account/template.yaml', 'utf8'), {
    customTags: ['!Ref', '!If', '!Sub', '!GetAtt', '!Not', '!Equals', '!Join'].map((tag) => ({
      tag,
      resolve: (value: unknown) => ({ [tag]: value }),
      collection: undefined,
    })) as never,
  });
  const pattern = source.Resources.ForwardObjectEventsRule.Properties.EventPattern;
  return JSON.stringify({
    source: pattern.source,
    'detail-type': pattern['detail-type'],
    detail: { bucket: { name: [bucket] }, object: { key: [{ prefix }] } },
  });
}

async function forwardRule(name: string, target: string): Promise<void> {
  await producerEvents.send(
    new PutRuleCommand({ Name: name, EventBusName: 'default', EventPattern: templatePattern() }),
  );
  await producerEvents.send(
    new PutTargetsCommand({
      Rule: name,
      EventBusName: 'default',
      Targets: [
        { Id: 'ConsumerEventBus', Arn: target, RoleArn: `arn:aws:iam::${accountA.id}:role/forward-${run}` },
      ],
    }),
  );
}

const deps = (extra: Partial<EventPathDependencies> = {}): EventPathDependencies => ({
  consumerEvents,
  busName,
  producer: { events: producerEvents, s3: producerS3 },
  queue: { sqs: consumerSqs, url: queueUrl },
  waitMs: 20_000,
  ...extra,
});

const statusOf = (checks: { link: string; status: string }[]) =>
  Object.fromEntries(checks.map((check) => [check.link, check.status]));

describe('the event path, source-account rule to AccountB queue (moto)', () => {
  beforeAll(async () => {
    await producerS3.send(new CreateBucketCommand({ Bucket: bucket }));
    const bus = await consumerEvents.send(new CreateEventBusCommand({ Name: busName }));
    busArn = bus.EventBusArn ?? '';
    const queue = await consumerSqs.send(new CreateQueueCommand({ QueueName: `s3-events-${run}` }));
    queueUrl = queue.QueueUrl ?? '';
    const { Attributes } = await consumerSqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    );
    await consumerEvents.send(
      new PutRuleCommand({ Name: 'to-queue', EventBusName: busName, EventPattern: '{"source":["aws.s3"]}' }),
    );
    await consumerEvents.send(
      new PutTargetsCommand({
        Rule: 'to-queue',
        EventBusName: busName,
        Targets: [{ Id: 'q', Arn: Attributes?.QueueArn }],
      }),
    );
  });

  it('names the broken links of a path not set up yet, with the fix for each', async () => {
    const checks = await diagnoseEventPath(deps(), job);

    expect(statusOf(checks)).toEqual({
      bucketEvents: 'fail',
      producerRule: 'fail',
      busPolicy: 'fail',
      eventDelivery: 'skipped',
    });
    expect(checks.find((c) => c.link === 'bucketEvents')?.fix).toMatch(/EnableBucketEventsCommand/);
    expect(checks.find((c) => c.link === 'producerRule')?.fix).toBe(
      `Deploy source-account/template.yaml with ConsumerEventBusArn=${busArn} EventsPrefix=${prefix}`,
    );
    expect(checks.find((c) => c.link === 'busPolicy')?.fix).toContain(
      `aws events put-permission --event-bus-name ${busName} --action events:PutEvents --principal ${accountA.id}`,
    );
  });

  it('forwards the events of the job’s prefix only, and passes every check once the path is set up', async () => {
    // The EnableBucketEventsCommand output's read-modify-write: the bucket's other notifications stay.
    const current = await producerS3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
    const { $metadata: _m, ...configuration } = current;
    await producerS3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: { ...configuration, EventBridgeConfiguration: {} },
      }),
    );
    await forwardRule(`forward-${run}`, busArn);
    await consumerEvents.send(
      new PutPermissionCommand({
        EventBusName: busName,
        Action: 'events:PutEvents',
        Principal: accountA.id,
        StatementId: `AccountA-${accountA.id}`,
      }),
    );
    await producerS3.send(new PutObjectCommand({ Bucket: bucket, Key: 'elsewhere/not-the-job', Body: 'x' }));
    // The SDK's "Stream of unknown length" hint, printed for a PutObject (here the probe) sent without
    // Content-Length.
    const warn = vi.spyOn(console, 'warn');
    onTestFinished(() => warn.mockRestore());

    const checks = await diagnoseEventPath(deps(), job);

    expect(statusOf(checks)).toEqual({
      bucketEvents: 'ok',
      producerRule: 'ok',
      busPolicy: 'ok',
      eventDelivery: 'ok',
    });
    expect(warn).not.toHaveBeenCalled();
    const bodies: string[] = [];
    for (let read = 0; read < 3; read += 1) {
      const received = await consumerSqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
      );
      bodies.push(...(received.Messages ?? []).map((m) => m.Body ?? ''));
    }
    expect(bodies.some((body) => body.includes('.cross-account-sync-doctor-probe'))).toBe(true);
    expect(bodies.some((body) => body.includes('not-the-job'))).toBe(false);
  });

  it('is part of the doctor’s report for a job that follows events, and only for one', async () => {
    const doctor = {
      sts: sandboxSts(sandbox, accountB.syncer),
      destinationS3: sandboxS3(sandbox, accountB.syncer),
      sourceS3: (credentials: SandboxCredentials) => sandboxS3(sandbox, credentials),
      dynamodb: sandboxDynamo(sandbox),
      tableName: accountB.tableName,
      eventPath: deps(),
    };

    const report = await diagnoseJob(doctor, job);
    const without = await diagnoseJob(doctor, { ...job, options: { ...job.options, events: false } });

    expect(statusOf(report.checks)).toMatchObject({
      bucketEvents: 'ok',
      producerRule: 'ok',
      busPolicy: 'ok',
      eventDelivery: 'ok',
    });
    expect(without.checks.map((check) => check.link)).not.toContain('producerRule');
  });

  it('names the bus policy when it no longer admits AccountA, and skips the probe', async () => {
    await consumerEvents.send(
      new RemovePermissionCommand({ EventBusName: busName, StatementId: `AccountA-${accountA.id}` }),
    );

    const checks = await diagnoseEventPath(deps(), job);

    expect(statusOf(checks)).toMatchObject({
      producerRule: 'ok',
      busPolicy: 'fail',
      eventDelivery: 'skipped',
    });
    expect(checks.find((c) => c.link === 'eventDelivery')?.detail).toBe('not probed: busPolicy is broken');
  });

  it("skips AccountA's links without AccountA's credentials, naming who can check them", async () => {
    const checks = await diagnoseEventPath(deps({ producer: undefined }), job);

    expect(statusOf(checks)).toMatchObject({ bucketEvents: 'skipped', producerRule: 'skipped' });
    expect(checks.find((c) => c.link === 'producerRule')?.fix).toMatch(/AccountA's admin runs the doctor/);
  });
});
