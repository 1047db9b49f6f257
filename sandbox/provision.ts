import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateEventBusCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  type IAMClient,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { awsErrorCode } from '../functions/core/errors.js';
import {
  type SandboxCredentials,
  sandboxDynamo,
  sandboxEvents,
  sandboxIam,
  sandboxS3,
  sandboxSqs,
  sandboxSts,
} from './clients.js';
import { SandboxError } from './errors.js';
import { type AwsKeys, SANDBOX, type SandboxEndpoints, type SandboxInfo } from './sandbox.js';

// How the sandbox bootstraps two accounts in one moto, and what moto 5.2.1 does with them:
// - Before enforcement any key acts in moto's default account 123456789012, and AssumeRole into
//   arn:aws:iam::<account>:role/<anything> returns keys that moto files under <account>, acting there with no
//   policy checks. The role need not exist. That is how each account's resources get created.
// - moto keeps one S3 backend per account (A's buckets live in A's backend), but bucket *names* are global,
//   as in AWS: a registry maps each name to its owning account. A request from another account for that
//   name resolves to the owner's bucket (MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS, on by default). So the sync
//   reads gautamtest-assume-role with A-role keys and writes accountb-sync-destination with B's keys, both
//   by name.
// - After enforcement moto checks SigV4 signatures, unknown keys and the caller's *identity* policies;
//   moto_server.py adds what it lacks across accounts: the trust-policy check, and the bucket policy a
//   request from another account needs (so the syncer reads only SERVER_SIDE_COPY_PREFIX of A's bucket,
//   though its own policy allows all of it). Least-privilege policies below keep the sandbox honest.

const BOOTSTRAP_KEYS: AwsKeys = { accessKeyId: 'AKIASANDBOXBOOTSTRAP', secretAccessKey: 'sandbox-bootstrap' };
const BOOTSTRAP_ROLE = 'sandbox-bootstrap'; // does not exist; before enforcement moto does not care

const SOURCE_OBJECTS = {
  'test.txt': 'hello from AccountA\n',
  'test2.txt': 'a second object from AccountA\n',
};

/**
 * The prefix of AccountA's bucket whose objects AccountB's syncer may read itself, for server-side copy:
 * the statement source-account/template.yaml adds with ServerSideCopyPrincipalArn / ServerSideCopyPrefix.
 * Objects elsewhere in the bucket are refused to the syncer (moto_server.py enforces bucket policies).
 */
export const SERVER_SIDE_COPY_PREFIX = 'server-side-copy/';

function policy(...statements: object[]): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}

const ALLOW_EVERYTHING = policy({ Effect: 'Allow', Action: '*', Resource: '*' });

/** Keys that act as `accountId`'s administrator. Only valid before enforcement is switched on. */
/**
 * The queue policy AWS needs for an EventBridge rule to deliver to a queue (that rule only); moto delivers
 * without it, so the sandbox writes it to keep its setup what a deployment has.
 */
export async function letRuleSendTo(
  sqs: SQSClient,
  queue: { queueUrl: string; queueArn: string },
  ruleArn: string,
): Promise<void> {
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queue.queueUrl,
      Attributes: {
        Policy: policy({
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: queue.queueArn,
          Condition: { ArnEquals: { 'aws:SourceArn': ruleArn } },
        }),
      },
    }),
  );
}

async function bootstrapAdmin(endpoints: SandboxEndpoints, accountId: string): Promise<SandboxCredentials> {
  const { Credentials: keys } = await sandboxSts(endpoints, BOOTSTRAP_KEYS).send(
    new AssumeRoleCommand({
      RoleArn: `arn:aws:iam::${accountId}:role/${BOOTSTRAP_ROLE}`,
      RoleSessionName: 'sandbox-bootstrap',
    }),
  );
  if (!keys?.AccessKeyId || !keys.SecretAccessKey)
    throw new SandboxError('AssumeRole returned no credentials');
  const admin = {
    accessKeyId: keys.AccessKeyId,
    secretAccessKey: keys.SecretAccessKey,
    sessionToken: keys.SessionToken,
  };
  const { Account } = await sandboxSts(endpoints, admin).send(new GetCallerIdentityCommand({}));
  if (Account !== accountId) {
    throw new SandboxError(`bootstrap keys for account ${accountId} act as account ${Account}; moto changed`);
  }
  return admin;
}

async function createUser(iam: IAMClient, userName: string, userPolicy: string): Promise<AwsKeys> {
  await iam.send(new CreateUserCommand({ UserName: userName }));
  await iam.send(
    new PutUserPolicyCommand({ UserName: userName, PolicyName: userName, PolicyDocument: userPolicy }),
  );
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
  if (!AccessKey?.AccessKeyId || !AccessKey.SecretAccessKey) {
    throw new SandboxError(`CreateAccessKey for ${userName} returned no key`);
  }
  return { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
}

async function provisionAccountA(endpoints: SandboxEndpoints): Promise<SandboxInfo['accountA']> {
  const { id, bucket, roleName, externalId, adminUser } = SANDBOX.accountA;
  const admin = await bootstrapAdmin(endpoints, id);
  const s3 = sandboxS3(endpoints, admin);
  const iam = sandboxIam(endpoints, admin);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await Promise.all(
    Object.entries(SOURCE_OBJECTS).map(([Key, Body]) =>
      s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ContentType: 'text/plain' })),
    ),
  );
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: roleName,
      AssumeRolePolicyDocument: policy({
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${SANDBOX.accountB.id}:root` },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'sts:ExternalId': externalId } },
      }),
    }),
  );
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: roleName,
      PolicyName: 'read-source-bucket',
      PolicyDocument: policy(
        { Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${bucket}` },
        { Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*` },
      ),
    }),
  );
  await s3.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: policy({
        Sid: 'ServerSideCopyRead',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${SANDBOX.accountB.id}:user/${SANDBOX.accountB.syncerUser}` },
        Action: ['s3:GetObject', 's3:GetObjectTagging'],
        Resource: `arn:aws:s3:::${bucket}/${SERVER_SIDE_COPY_PREFIX}*`,
      }),
    }),
  );
  if (!Role?.Arn) throw new SandboxError(`CreateRole ${roleName} returned no ARN`);
  return {
    id,
    bucket,
    roleArn: Role.Arn,
    externalId,
    admin: await createUser(iam, adminUser, ALLOW_EVERYTHING),
  };
}

/**
 * AccountB's run-event bus, with a rule sending the sync's events to a queue that tests read: what the
 * template's EventBusName parameter points at, and what a downstream consumer would subscribe.
 */
async function provisionRunEvents(
  endpoints: SandboxEndpoints,
  admin: SandboxCredentials,
): Promise<{ eventBusArn: string; eventsQueueUrl: string }> {
  const { eventBusName, eventsQueueName, eventsRuleName } = SANDBOX.accountB;
  const events = sandboxEvents(endpoints, admin);
  const sqs = sandboxSqs(endpoints, admin);
  const [{ EventBusArn: eventBusArn }, { QueueUrl: eventsQueueUrl }] = await Promise.all([
    events.send(new CreateEventBusCommand({ Name: eventBusName })),
    sqs.send(new CreateQueueCommand({ QueueName: eventsQueueName })),
  ]);
  if (!eventBusArn || !eventsQueueUrl) throw new SandboxError('CreateEventBus or CreateQueue returned no id');
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: eventsQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const queueArn = Attributes?.QueueArn;
  if (!queueArn) throw new SandboxError(`queue ${eventsQueueName} has no ARN`);
  const { RuleArn: ruleArn } = await events.send(
    new PutRuleCommand({
      Name: eventsRuleName,
      EventBusName: eventBusName,
      EventPattern: JSON.stringify({ source: ['cross-account-sync'] }),
    }),
  );
  if (!ruleArn) throw new SandboxError(`PutRule ${eventsRuleName} returned no ARN`);
  await letRuleSendTo(sqs, { queueUrl: eventsQueueUrl, queueArn }, ruleArn);
  await events.send(
    new PutTargetsCommand({
      Rule: eventsRuleName,
      EventBusName: eventBusName,
      Targets: [{ Id: eventsQueueName, Arn: queueArn }],
    }),
  );
  return { eventBusArn, eventsQueueUrl };
}

async function provisionAccountB(endpoints: SandboxEndpoints): Promise<SandboxInfo['accountB']> {
  const { id, destinationBucket, tableName, syncerUser, adminUser, eventBusName } = SANDBOX.accountB;
  const admin = await bootstrapAdmin(endpoints, id);
  const iam = sandboxIam(endpoints, admin);
  const [{ eventBusArn, eventsQueueUrl }] = await Promise.all([
    provisionRunEvents(endpoints, admin),
    sandboxS3(endpoints, admin).send(new CreateBucketCommand({ Bucket: destinationBucket })),
  ]);
  const syncerPolicy = policy(
    {
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Resource: [
        `arn:aws:iam::${SANDBOX.accountA.id}:role/${SANDBOX.accountA.roleName}`,
        // Roles tests create in AccountA with missing permissions or odd trust, for `doctor`.
        `arn:aws:iam::${SANDBOX.accountA.id}:role/${SANDBOX.accountA.testRolePrefix}*`,
      ],
    },
    // Its own buckets only; tests create more accountb-* buckets.
    { Effect: 'Allow', Action: 's3:*', Resource: ['arn:aws:s3:::accountb-*', 'arn:aws:s3:::accountb-*/*'] },
    // Server-side copy reads AccountA's objects with the syncer's own keys (template.yaml grants the same
    // with CopyMethod=server-side); AccountA's bucket policy decides which (SERVER_SIDE_COPY_PREFIX).
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:GetObjectTagging'],
      Resource: `arn:aws:s3:::${SANDBOX.accountA.bucket}/*`,
    },
    // The fan-out queues (sandbox/fan-out.ts names them sync-*): send tasks, and work them as the
    // workers' event source mappings do.
    {
      Effect: 'Allow',
      Action: [
        'sqs:SendMessage',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        // moto checks DeleteMessageBatch under its own name; AWS checks it as sqs:DeleteMessage.
        'sqs:DeleteMessageBatch',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ],
      Resource: `arn:aws:sqs:*:${id}:sync-*`,
    },
    // The run-completed event, on the job's bus only (as template.yaml grants).
    { Effect: 'Allow', Action: 'events:PutEvents', Resource: eventBusArn },
    // What `status --stack` and `doctor --stack` use as the person running the CLI: the stack's outputs,
    // its schedules' input, and the function (which moto cannot run without Docker).
    {
      Effect: 'Allow',
      Action: ['cloudformation:DescribeStacks', 'scheduler:GetSchedule', 'lambda:InvokeFunction'],
      Resource: '*',
    },
    // What `jobs` uses as the person running the CLI: the stored jobs' schedules, their group, and the
    // scheduler role handed to them.
    {
      Effect: 'Allow',
      Action: [
        'scheduler:CreateSchedule',
        'scheduler:UpdateSchedule',
        'scheduler:DeleteSchedule',
        'scheduler:GetScheduleGroup',
        'scheduler:CreateScheduleGroup',
        'iam:PassRole',
      ],
      Resource: '*',
    },
  );
  const [syncer, consumerAdmin] = await Promise.all([
    createUser(iam, syncerUser, syncerPolicy),
    createUser(iam, adminUser, ALLOW_EVERYTHING),
  ]);
  return {
    id,
    destinationBucket,
    tableName,
    eventBusName,
    eventBusArn,
    eventsQueueUrl,
    syncer,
    admin: consumerAdmin,
  };
}

/** Creates a state table with the template's key schema (the sandbox's own, or another for one test). */
export async function createStateTable(
  endpoints: SandboxEndpoints,
  tableName: string = SANDBOX.accountB.tableName,
): Promise<void> {
  await sandboxDynamo(endpoints).send(
    new CreateTableCommand({
      TableName: tableName,
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
}

/** From here on moto checks signatures, keys and policies. The body is how many requests stay exempt. */
async function enforceAuth(endpoints: SandboxEndpoints): Promise<void> {
  const response = await fetch(`${endpoints.motoEndpoint}/moto-api/reset-auth`, {
    method: 'POST',
    body: '0',
  });
  if (!response.ok) {
    throw new SandboxError(`moto refused to enforce auth: ${response.status} ${await response.text()}`);
  }
}

async function expectAccessDenied(what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (awsErrorCode(error).name === 'AccessDenied') return;
    throw new SandboxError(`sandbox self-check: ${what} should fail with AccessDenied`, { cause: error });
  }
  throw new SandboxError(
    `sandbox self-check: ${what} succeeded; the sandbox would let through what AWS refuses`,
  );
}

/** Fail startup loudly unless the sandbox refuses and allows what AWS would. */
async function selfCheck(info: SandboxInfo): Promise<void> {
  const { accountA, accountB } = info;
  const sts = sandboxSts(info, accountB.syncer);
  await expectAccessDenied("syncer listing AccountA's bucket with its own keys", () =>
    sandboxS3(info, accountB.syncer).send(new ListObjectsV2Command({ Bucket: accountA.bucket })),
  );
  await expectAccessDenied('AssumeRole with a wrong ExternalId', () =>
    sts.send(
      new AssumeRoleCommand({
        RoleArn: accountA.roleArn,
        RoleSessionName: 'self-check',
        ExternalId: 'wrong',
      }),
    ),
  );
  const { Credentials: keys } = await sts.send(
    new AssumeRoleCommand({
      RoleArn: accountA.roleArn,
      RoleSessionName: 'self-check',
      ExternalId: accountA.externalId,
    }),
  );
  const role = sandboxS3(info, {
    accessKeyId: keys?.AccessKeyId ?? '',
    secretAccessKey: keys?.SecretAccessKey ?? '',
    sessionToken: keys?.SessionToken,
  });
  const { KeyCount } = await role.send(new ListObjectsV2Command({ Bucket: accountA.bucket }));
  if (KeyCount !== Object.keys(SOURCE_OBJECTS).length) {
    throw new SandboxError(`sandbox self-check: the source bucket lists ${KeyCount} objects`);
  }
  const { Body } = await role.send(new GetObjectCommand({ Bucket: accountA.bucket, Key: 'test.txt' }));
  if ((await Body?.transformToString()) !== SOURCE_OBJECTS['test.txt']) {
    throw new SandboxError('sandbox self-check: test.txt does not read back as written');
  }
  await expectAccessDenied("syncer reading AccountA's object its bucket policy does not grant", () =>
    sandboxS3(info, accountB.syncer).send(new GetObjectCommand({ Bucket: accountA.bucket, Key: 'test.txt' })),
  );
  await expectAccessDenied(`${SANDBOX.accountA.roleName} writing to its own bucket`, () =>
    role.send(new PutObjectCommand({ Bucket: accountA.bucket, Key: 'self-check.txt', Body: 'no' })),
  );
}

/** Create both accounts' resources and the state table, switch on enforcement, and self-check. */
export async function provisionSandbox(endpoints: SandboxEndpoints): Promise<SandboxInfo> {
  const [accountA, accountB] = await Promise.all([
    provisionAccountA(endpoints),
    provisionAccountB(endpoints),
    createStateTable(endpoints),
  ]);
  await enforceAuth(endpoints);
  const info: SandboxInfo = { ...endpoints, accountA, accountB };
  await selfCheck(info);
  return info;
}
