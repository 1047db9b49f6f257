import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STACK_OUTPUTS } from '../../cli/read-stack.js';
import { parseEventMessage } from '../../functions/core/events/event-message.js';
import { parseJob } from '../../functions/core/job.js';
import {
  functionConfig,
  loadTemplate,
  type Resource,
  resolveValue,
  type Template,
} from '../../scripts/lib/sam-template.js';

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is untyped; the assertions below are the type check.
type Yaml = any;

const TEMPLATES = ['template.yaml', 'source-account/template.yaml'];
const template = loadTemplate('template.yaml');
const resources = template.Resources;

function resource(id: string): Resource {
  const found = resources[id];
  if (found === undefined) throw new Error(`template.yaml has no resource ${id}`);
  return found;
}

function props(id: string): Record<string, Yaml> {
  return resource(id).Properties ?? {};
}

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown };

/** A function's environment as deployed: the Globals' variables, then its own. */
function environment(id: string): Record<string, unknown> {
  return functionConfig(template, 'template.yaml', id).environment;
}

/**
 * Every IAM statement an inline policy of the function grants (SAM policy templates excluded), with
 * conditional ones (`Fn::If` [condition, statement, AWS::NoValue]) taken as granted.
 */
function functionStatements(): Statement[] {
  const policies = props('SyncFunction').Policies as Array<Record<string, Yaml>>;
  return policies
    .flatMap((policy) => policy.Statement ?? [])
    .map((statement: Yaml) => (statement['Fn::If'] ? statement['Fn::If'][1] : statement));
}

const NO_VALUE = Symbol('AWS::NoValue');

/**
 * The template as CloudFormation would deploy it with these parameter values (defaults for the rest):
 * Conditions evaluated, `Fn::If` replaced by its branch, `AWS::NoValue` dropped, and resources and outputs
 * whose Condition is false left out. Other intrinsics stay as they are.
 */
function deployed(source: Template, values: Record<string, string> = {}): Template {
  const parameter = (name: string): string | string[] => {
    const declared = source.Parameters?.[name];
    if (declared === undefined) throw new Error(`no parameter ${name}`);
    const value = values[name] ?? declared.Default;
    if (value === undefined) throw new Error(`parameter ${name} has no value and no default`);
    return declared.Type === 'CommaDelimitedList' ? String(value).split(',') : String(value);
  };
  const scalar = (value: Yaml): string | string[] => {
    if (typeof value === 'string') return value;
    if (value.Ref !== undefined) return parameter(value.Ref);
    if (value['Fn::Join']) {
      const [separator, list] = value['Fn::Join'];
      return [scalar(list)].flat().join(separator);
    }
    throw new Error(`cannot evaluate ${JSON.stringify(value)} in a condition`);
  };
  const condition = (expression: Yaml): boolean => {
    if (expression.Condition !== undefined) return condition(source.Conditions?.[expression.Condition]);
    if (expression['Fn::Equals']) {
      const [a, b] = expression['Fn::Equals'];
      return JSON.stringify(scalar(a)) === JSON.stringify(scalar(b));
    }
    if (expression['Fn::Not']) return !condition(expression['Fn::Not'][0]);
    if (expression['Fn::And']) return expression['Fn::And'].every(condition);
    if (expression['Fn::Or']) return expression['Fn::Or'].some(condition);
    throw new Error(`cannot evaluate condition ${JSON.stringify(expression)}`);
  };
  const resolve = (value: Yaml): Yaml => {
    if (Array.isArray(value)) return value.map(resolve).filter((item) => item !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    if (value.Ref === 'AWS::NoValue') return NO_VALUE;
    if (value['Fn::If']) {
      const [name, whenTrue, whenFalse] = value['Fn::If'];
      return resolve(condition({ Condition: name }) ? whenTrue : whenFalse);
    }
    return Object.fromEntries(
      Object.entries(value)
        .map(([key, item]) => [key, resolve(item)])
        .filter(([, item]) => item !== NO_VALUE),
    );
  };
  const kept = (section: Record<string, Yaml> = {}) =>
    resolve(Object.fromEntries(Object.entries(section).filter(([, r]) => !r.Condition || condition(r))));
  return { ...source, Resources: kept(source.Resources), Outputs: kept(source.Outputs) };
}

/** Every inline IAM statement of the function's policies, as deployed with these parameter values. */
function grantedStatements(values: Record<string, string> = {}): Array<Statement & Record<string, Yaml>> {
  const fn = deployed(template, values).Resources.SyncFunction?.Properties as Record<string, Yaml>;
  return fn.Policies.flatMap((policy: Yaml) => policy.Statement ?? []);
}

function grants(statements: Statement[], action: string): Statement[] {
  return statements.filter((s) => [s.Action].flat().includes(action));
}

/** The job the Sync schedule hands the function, for these deploy-time parameter values. */
function scheduledJob(values: Record<string, string>) {
  const withValues = deployed(template, values);
  for (const [name, value] of Object.entries(values)) {
    const declared = withValues.Parameters?.[name];
    if (declared) declared.Default = value;
  }
  const fn = withValues.Resources.SyncFunction?.Properties as Record<string, Yaml>;
  const [text, vars] = fn.Events.Sync.Properties.Input['Fn::Sub'] as [string, Record<string, unknown>];
  const input = resolveValue(
    { 'Fn::Sub': [text, { ...vars, Bucket: 'accountb-sync-destination' }] },
    withValues,
    {},
  );
  expect(input).toBeDefined();
  return parseJob(JSON.parse(input ?? ''));
}

const REQUIRED = {
  SourceRoleArn: 'arn:aws:iam::111111111111:role/S3GetListRole',
  SourceExternalId: 'example-external-id',
  SourceBucket: 'source-bucket',
};

const METRICS = {
  namespace: 'CrossAccountSync',
  dimension: { Name: 'service', Value: 'cross-account-sync' },
};

function alarmsOn(namespace: string): Array<Record<string, Yaml>> {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties?.Namespace === namespace)
    .map((r) => r.Properties ?? {});
}

describe('template.yaml and source-account/template.yaml', () => {
  it.each(TEMPLATES)('%s passes cfn-lint (with the SAM transform) without findings', (path) => {
    const run = spawnSync('cfn-lint', [path], { encoding: 'utf8' });
    if (run.error) {
      throw new Error(`cfn-lint could not run (${run.error.message}); install it with: pip install cfn-lint`);
    }
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('bundles the function as ESM for nodejs22.x on arm64, as sam build does with esbuild', () => {
    const fn = props('SyncFunction');
    const runtime = fn.Runtime ?? template.Globals?.Function?.Runtime;
    const architectures = fn.Architectures ?? template.Globals?.Function?.Architectures;
    expect(runtime).toBe('nodejs22.x');
    expect(architectures).toEqual(['arm64']);
    expect(fn).toMatchObject({ CodeUri: './', Handler: 'sync.handler', Timeout: 900 });
    expect(resource('SyncFunction').Metadata).toMatchObject({
      BuildMethod: 'esbuild',
      BuildProperties: {
        Format: 'esm',
        OutExtension: ['.js=.mjs'],
        EntryPoints: ['functions/sync.ts'],
        Minify: true,
        KeepNames: true,
      },
    });
    const build = resource('SyncFunction').Metadata?.BuildProperties as { Banner?: string[] } | undefined;
    expect(build?.Banner?.join('')).toMatch(/createRequire\(import\.meta\.url\)/);
    expect(environment('SyncFunction')).toMatchObject({
      STATE_TABLE_NAME: { Ref: 'StateTable' },
      POWERTOOLS_SERVICE_NAME: 'cross-account-sync',
    });
  });

  it("lets sam build find esbuild: the builder installs only the CodeUri package.json's dependencies", () => {
    const manifest = JSON.parse(readFileSync(join(props('SyncFunction').CodeUri, 'package.json'), 'utf8'));

    // aws-lambda-builders runs `npm install --omit=dev` in a copy of CodeUri, then looks in its node_modules/.bin.
    expect(manifest.dependencies).toHaveProperty('esbuild');
    expect(manifest.devDependencies ?? {}).not.toHaveProperty('esbuild');
  });

  it('schedules the job with EventBridge Scheduler, without retries, and the input is a valid job', () => {
    const event = props('SyncFunction').Events.Sync;
    expect(event.Type).toBe('ScheduleV2');
    expect(event.Properties.RetryPolicy.MaximumRetryAttempts).toBe(0);
    expect(event.Properties.ScheduleExpression).toEqual({ Ref: 'ScheduleExpression' });

    // Deploy-time values for the parameters without a default, as an operator would pass them.
    const withValues = structuredClone(template);
    const values: Record<string, string> = {
      SourceRoleArn: 'arn:aws:iam::111111111111:role/S3GetListRole',
      SourceExternalId: 'gautamtest-external-id',
      SourceBucket: 'gautamtest-assume-role',
      DestinationBucketName: 'accountb-sync-destination',
    };
    for (const [name, value] of Object.entries(values)) {
      const parameter = withValues.Parameters?.[name];
      if (parameter) parameter.Default = value;
    }
    // Conditional fields (SourceRegion) resolved as CloudFormation would with these values.
    const deployedEvent = ((deployed(withValues).Resources.SyncFunction as Resource).Properties as Yaml)
      .Events.Sync;
    const [text, vars] = deployedEvent.Properties.Input['Fn::Sub'] as [string, Record<string, unknown>];
    const input = resolveValue(
      { 'Fn::Sub': [text, { ...vars, Bucket: 'accountb-sync-destination' }] },
      withValues,
      {},
    );
    expect(input).toBeDefined();
    const job = parseJob(JSON.parse(input ?? ''));
    expect(job).toMatchObject({
      jobId: 'default',
      source: {
        roleArn: values.SourceRoleArn,
        externalId: values.SourceExternalId,
        bucket: values.SourceBucket,
      },
      destination: { bucket: 'accountb-sync-destination', prefix: '' },
    });
  });

  it('keeps state in an on-demand table with point-in-time recovery that survives stack deletion', () => {
    const table = resource('StateTable');
    expect(table.Type).toBe('AWS::DynamoDB::Table');
    expect(table.DeletionPolicy).toBe('Retain');
    expect(props('StateTable')).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      // Only fan-out passes' bookkeeping sets purgeAt (state/pass-item.ts, every item of a pass's tally, named
      // in state/pass-tally.ts's layout; and the giant objects' uploads of a pass, state/part-uploads.ts), and
      // so do the event deletions' windows (state/event-deletion-allowance.ts); the lease's expiresAt is not it.
      TimeToLiveSpecification: { AttributeName: 'purgeAt', Enabled: true },
    });
    const setters = readdirSync('functions', { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.ts') && readFileSync(join('functions', file), 'utf8').includes('purgeAt'),
    );
    expect(setters.sort()).toEqual([
      join('core', 'state', 'event-deletion-allowance.ts'),
      join('core', 'state', 'part-uploads.ts'),
      join('core', 'state', 'pass-item.ts'),
      join('core', 'state', 'pass-tally.ts'),
    ]);
  });

  it('creates a private destination bucket that aborts abandoned multipart uploads', () => {
    const bucket = props('DestinationBucket');
    expect(resource('DestinationBucket').Condition).toBe('CreateDestinationBucket');
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.OwnershipControls.Rules).toEqual([{ ObjectOwnership: 'BucketOwnerEnforced' }]);
    // SSE-S3 keeps single-part ETags equal to the MD5 the sync compares (unless DestinationKmsKeyArn is set).
    const encryption = ((deployed(template).Resources.DestinationBucket as Resource).Properties as Yaml)
      .BucketEncryption;
    expect(encryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({
      SSEAlgorithm: 'AES256',
    });
    expect(bucket.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      }),
    );
  });

  it('lets the function assume only the SourceRoleArn, SourceRoleArns and SourceRoleArnPattern roles, and grants no wildcard actions', () => {
    const statements = functionStatements();
    const assume = statements.filter((s) => [s.Action].flat().includes('sts:AssumeRole'));
    expect(assume.map((s) => s.Resource)).toEqual([
      { Ref: 'SourceRoleArn' },
      { Ref: 'SourceRoleArns' },
      { Ref: 'SourceRoleArnPattern' },
    ]);
    const extraRoles = (props('SyncFunction').Policies[0].Statement as Yaml[]).find((s) => s['Fn::If']);
    expect(extraRoles['Fn::If'][0]).toBe('HasExtraSourceRoles');
    expect(extraRoles['Fn::If'][2]).toEqual({ Ref: 'AWS::NoValue' });
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions.filter((action) => action.includes('*'))).toEqual([]);
    expect(new Set(actions)).toEqual(
      new Set([
        'sts:AssumeRole',
        's3:ListBucket',
        's3:ListBucketMultipartUploads',
        's3:GetObject',
        's3:PutObject',
        's3:DeleteObject',
        's3:PutObjectTagging',
        's3:GetObjectTagging',
        's3:AbortMultipartUpload',
        's3:ListMultipartUploadParts',
        'events:PutEvents',
        'kms:GenerateDataKey',
        'kms:Decrypt',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
        'dynamodb:Query',
        'sqs:SendMessage',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ]),
    );
    const resourcesGranted = JSON.stringify(statements.map((s) => s.Resource));
    expect(resourcesGranted).not.toMatch(/"\*"/);
  });

  it('has the source account role trust AccountB only with the ExternalId and read one bucket', () => {
    const source = loadTemplate('source-account/template.yaml');
    const role = source.Resources.S3GetListRole?.Properties as Record<string, Yaml>;
    const [trust] = role.AssumeRolePolicyDocument.Statement;
    expect(trust).toMatchObject({
      Action: 'sts:AssumeRole',
      Condition: { StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } } },
    });
    expect(role.MaxSessionDuration).toBe(3600);
    const actions = role.Policies.flatMap((p: Yaml) => p.PolicyDocument.Statement).map((s: Yaml) => s.Action);
    expect(actions.sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
    expect(source.Parameters?.ExternalId).toMatchObject({ NoEcho: true, MinLength: 2 });
  });

  it('forwards the bucket’s object events to AccountB’s bus only when ConsumerEventBusArn is given, the read role unchanged', () => {
    const source = loadTemplate('source-account/template.yaml');
    const busArn = 'arn:aws:events:eu-west-1:222222222222:event-bus/s3-events';
    const values = { ConsumerAccountId: '222222222222', ExternalId: 'x-id', BucketName: 'source-bucket' };
    const off = deployed(source, values);
    const on = deployed(source, { ...values, ConsumerEventBusArn: busArn, EventsPrefix: 'exports/' });
    const all = deployed(source, { ...values, ConsumerEventBusArn: busArn });
    const rule = on.Resources.ForwardObjectEventsRule?.Properties as Record<string, Yaml>;
    const role = on.Resources.ForwardObjectEventsRole?.Properties as Record<string, Yaml>;

    expect(Object.keys(off.Resources)).not.toContain('ForwardObjectEventsRule');
    expect(Object.keys(off.Outputs ?? {})).not.toContain('EnableBucketEventsCommand');
    expect(rule).toMatchObject({ EventBusName: 'default', State: 'ENABLED' });
    expect(rule.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created', 'Object Deleted', 'Object Restore Completed'],
      detail: {
        bucket: { name: [{ Ref: 'BucketName' }] },
        object: { key: [{ prefix: { Ref: 'EventsPrefix' } }] },
      },
    });
    expect((all.Resources.ForwardObjectEventsRule as Yaml).Properties.EventPattern.detail).toEqual({
      bucket: { name: [{ Ref: 'BucketName' }] },
    });
    expect(rule.Targets).toEqual([
      {
        Id: 'ConsumerEventBus',
        Arn: { Ref: 'ConsumerEventBusArn' },
        RoleArn: { 'Fn::GetAtt': ['ForwardObjectEventsRole', 'Arn'] },
      },
    ]);
    expect(role.AssumeRolePolicyDocument.Statement[0].Principal).toEqual({ Service: 'events.amazonaws.com' });
    expect(role.Policies.flatMap((p: Yaml) => p.PolicyDocument.Statement)).toEqual([
      expect.objectContaining({ Action: 'events:PutEvents', Resource: { Ref: 'ConsumerEventBusArn' } }),
    ]);
    expect(JSON.stringify(on.Resources.S3GetListRole)).toBe(JSON.stringify(off.Resources.S3GetListRole));
    const command = JSON.stringify(on.Outputs?.EnableBucketEventsCommand);
    // PutBucketNotificationConfiguration replaces the whole configuration: the command must read it first.
    expect(command).toMatch(
      /get-bucket-notification-configuration.*EventBridgeConfiguration.*put-bucket-notification-configuration/,
    );
  });

  it('publishes metrics under CrossAccountSync and run events on the EventBusName bus only, traced by X-Ray', () => {
    const fn = props('SyncFunction');

    const publish = functionStatements().filter((s) => [s.Action].flat().includes('events:PutEvents'));

    expect(fn.Tracing).toBe('Active');
    expect(environment('SyncFunction')).toMatchObject({
      POWERTOOLS_SERVICE_NAME: METRICS.dimension.Value,
      POWERTOOLS_METRICS_NAMESPACE: METRICS.namespace,
      EVENT_BUS_NAME: { Ref: 'EventBusName' },
    });
    expect(template.Parameters?.EventBusName?.Default).toBe('default');
    expect(publish).toEqual([
      expect.objectContaining({
        Resource: {
          'Fn::Sub': `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/\${EventBusName}`,
        },
      }),
    ]);
  });

  it('alarms on failed objects, replication lag over the threshold, function errors and throttles', () => {
    const sync = alarmsOn(METRICS.namespace).filter((alarm) => alarm.Dimensions.length === 1);
    const lambda = alarmsOn('AWS/Lambda');

    expect(sync.map((alarm) => alarm.MetricName).sort()).toEqual([
      'eventLagMs',
      'eventsDeletionsCapped',
      'missedByEvents',
      'objectsFailed',
      'replicationLag',
    ]);
    for (const alarm of sync) expect(alarm.Dimensions).toEqual([METRICS.dimension]);
    expect(sync.find((alarm) => alarm.MetricName === 'objectsFailed')).toMatchObject({
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(sync.find((alarm) => alarm.MetricName === 'replicationLag')).toMatchObject({
      Statistic: 'Maximum',
      Threshold: { Ref: 'ReplicationLagThresholdSeconds' },
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(lambda.map((alarm) => alarm.MetricName).sort()).toEqual(['Errors', 'Throttles']);
    for (const alarm of lambda) {
      expect(alarm.Dimensions).toEqual([{ Name: 'FunctionName', Value: { Ref: 'SyncFunction' } }]);
    }
  });

  it('alarms for all jobs (dimension service) and, with more than one job, for the JobId job alone', () => {
    const perJob = alarmsOn(METRICS.namespace).filter((alarm) => alarm.Dimensions.length === 2);
    const allJobs = alarmsOn(METRICS.namespace).filter((alarm) => alarm.Dimensions.length === 1);

    expect(perJob.map((alarm) => alarm.MetricName).sort()).toEqual(['objectsFailed', 'replicationLag']);
    for (const alarm of perJob) {
      expect(alarm.Dimensions).toEqual([METRICS.dimension, { Name: 'jobId', Value: { Ref: 'JobId' } }]);
      const twin = allJobs.find((other) => other.MetricName === alarm.MetricName);
      expect(alarm).toMatchObject({
        Statistic: twin?.Statistic,
        Threshold: twin?.Threshold,
        Period: twin?.Period,
      });
    }
    expect(resource('JobReplicationLagAlarm').Condition).toBe('HasExtraJob');
    expect(resource('JobObjectsFailedAlarm').Condition).toBe('HasExtraJob');
    expect(Object.keys(deployed(template).Resources ?? {})).not.toContain('JobReplicationLagAlarm');
  });

  it('alarms on the p99 event lag over EventLagThresholdMs and on any missedByEvents, and graphs both', () => {
    const sync = alarmsOn(METRICS.namespace);
    const [body] = props('SyncDashboard').DashboardBody['Fn::Sub'] as [string, Record<string, unknown>];
    const dashboard = JSON.parse(body.replace(/\$\{[^}]+\}/g, '0'));
    const entries = dashboard.widgets.flatMap((widget: Yaml) => widget.properties.metrics);
    const stats = entries
      .filter((entry: Yaml[]) => entry[0] === METRICS.namespace && entry[1] === 'eventLagMs')
      .map((entry: Yaml[]) => entry[4]?.stat);

    expect(sync.find((alarm) => alarm.MetricName === 'eventLagMs')).toMatchObject({
      ExtendedStatistic: 'p99',
      Threshold: { Ref: 'EventLagThresholdMs' },
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(sync.find((alarm) => alarm.MetricName === 'missedByEvents')).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(template.Parameters?.EventLagThresholdMs).toMatchObject({ Type: 'Number', Default: 60000 });
    expect(stats.sort()).toEqual(['p50', 'p99']);
    expect(JSON.stringify(entries)).toContain('MetricName=\\"missedByEvents\\"');
    expect(props('SyncDashboard').DashboardBody['Fn::Sub'][1]).toMatchObject({
      EventLagThreshold: { Ref: 'EventLagThresholdMs' },
    });
  });

  it('alarms on any event deletion the cap refused, and graphs every event outcome', () => {
    const [body] = props('SyncDashboard').DashboardBody['Fn::Sub'] as [string, Record<string, unknown>];
    const dashboard = JSON.parse(body.replace(/\$\{[^}]+\}/g, '0'));
    const graphed = dashboard.widgets
      .flatMap((widget: Yaml) => widget.properties.metrics)
      .filter((entry: Yaml[]) => typeof entry[1] === 'string')
      .map((entry: Yaml[]) => entry[1]);

    expect(
      alarmsOn(METRICS.namespace).find((alarm) => alarm.MetricName === 'eventsDeletionsCapped'),
    ).toMatchObject({
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(graphed).toEqual(
      expect.arrayContaining([
        'eventsCopied',
        'eventsDeleted',
        'eventsUpToDate',
        'eventsStale',
        'eventsSkipped',
        'eventsDropped',
        'eventsDeletionsCapped',
      ]),
    );
  });

  it('notifies a created topic, or the AlarmTopicArn one, from every alarm', () => {
    const alarms = [...alarmsOn(METRICS.namespace), ...alarmsOn('AWS/Lambda')];

    expect(resource('AlarmTopic')).toMatchObject({ Type: 'AWS::SNS::Topic', Condition: 'CreateAlarmTopic' });
    expect(template.Conditions?.CreateAlarmTopic).toEqual({ 'Fn::Equals': [{ Ref: 'AlarmTopicArn' }, ''] });
    for (const alarm of alarms) {
      expect(alarm.AlarmActions).toEqual([
        { 'Fn::If': ['CreateAlarmTopic', { Ref: 'AlarmTopic' }, { Ref: 'AlarmTopicArn' }] },
      ]);
    }
  });

  it('has a dashboard graphing every sync metric by its exact name and the function health', () => {
    const [body] = props('SyncDashboard').DashboardBody['Fn::Sub'] as [string, unknown];

    const dashboard = JSON.parse(body.replace(/\$\{[^}]+\}/g, '0'));
    const graphed = dashboard.widgets.flatMap((widget: Yaml) =>
      widget.properties.metrics.map((metric: Yaml[]) => metric.filter((part) => typeof part === 'string')),
    );
    const names = graphed.map((metric: string[]) => (metric[0] === '...' ? undefined : metric[1]));

    expect(names).toEqual(
      expect.arrayContaining([
        'objectsCopied',
        'objectsFailed',
        'bytesCopied',
        'runDuration',
        'replicationLag',
        'Errors',
        'Throttles',
      ]),
    );
    expect(graphed).toContainEqual([METRICS.namespace, 'objectsCopied', 'service', 'cross-account-sync']);
  });

  it('graphs each sync metric per job (a SEARCH over jobId) and for all jobs, backlog and archived included', () => {
    const [body] = props('SyncDashboard').DashboardBody['Fn::Sub'] as [string, unknown];
    const dashboard = JSON.parse(body.replace(/\$\{[^}]+\}/g, '0'));
    const entries = dashboard.widgets.flatMap((widget: Yaml) => widget.properties.metrics);
    const searches = entries.flatMap((entry: Yaml[]) =>
      entry.flatMap((part) => (typeof part === 'object' && part.expression ? [part.expression] : [])),
    );
    const allJobs = entries
      .filter((entry: Yaml[]) => entry[0] === METRICS.namespace)
      .map((entry: Yaml[]) => entry[1]);

    for (const metric of [
      'objectsCopied',
      'objectsFailed',
      'objectsArchived',
      'replicationLag',
      'backlogObjects',
      'bytesCopied',
      'runDuration',
    ]) {
      expect(searches).toContainEqual(
        expect.stringContaining(`{CrossAccountSync,jobId,service} MetricName="${metric}"`),
      );
    }
    expect(allJobs).toEqual(
      expect.arrayContaining([
        'objectsCopied',
        'objectsFailed',
        'objectsArchived',
        'replicationLag',
        'backlogBytes',
        'bytesCopied',
      ]),
    );
  });

  it('runs a second job from the same function with its own schedule and input, only when given', () => {
    const schedule = resource('ExtraJobSchedule');
    const role = props('JobSchedulerRole');

    expect(schedule).toMatchObject({ Type: 'AWS::Scheduler::Schedule', Condition: 'HasExtraJob' });
    expect(schedule.Properties?.Target).toMatchObject({
      Arn: { 'Fn::GetAtt': ['SyncFunction', 'Arn'] },
      RoleArn: { 'Fn::GetAtt': ['JobSchedulerRole', 'Arn'] },
      Input: { Ref: 'ExtraJobInput' },
      RetryPolicy: { MaximumRetryAttempts: 0 },
    });
    expect(template.Parameters?.ExtraJobInput).toMatchObject({ Default: '', NoEcho: true });
    const invoke = role.Policies[0].PolicyDocument.Statement.find(
      (s: Yaml) => s.Action === 'lambda:InvokeFunction',
    );
    expect(invoke.Resource).toEqual({ 'Fn::GetAtt': ['SyncFunction', 'Arn'] });
    expect(role.AssumeRolePolicyDocument.Statement[0].Principal).toEqual({
      Service: 'scheduler.amazonaws.com',
    });
  });
  it('schedules stored jobs in its own group with a role that may only invoke the function, and assumes producer roles by path', () => {
    const role = props('JobSchedulerRole');
    const outputs = deployed(template).Outputs ?? {};
    const byPattern = (values: Record<string, string>) =>
      ((deployed(template, values).Resources.SyncFunction?.Properties?.Policies ?? []) as Yaml[])
        .flatMap((policy) => policy.Statement ?? [])
        .find((statement: Yaml) => statement.Sid === 'AssumeSourceRolesByPattern');

    expect(resource('JobScheduleGroup').Type).toBe('AWS::Scheduler::ScheduleGroup');
    // Present without ExtraJobInput: `jobs add` needs it in every deployment.
    expect(deployed(template).Resources).toHaveProperty('JobSchedulerRole');
    const actions = role.Policies[0].PolicyDocument.Statement.flatMap((s: Yaml) => [s.Action].flat());
    expect(actions.sort()).toEqual(['lambda:InvokeFunction', 'sqs:SendMessage']);
    expect(outputs[STACK_OUTPUTS.jobScheduleGroup]?.Value).toEqual({ Ref: 'JobScheduleGroup' });
    expect(outputs[STACK_OUTPUTS.jobSchedulerRoleArn]?.Value).toEqual({
      'Fn::GetAtt': ['JobSchedulerRole', 'Arn'],
    });
    expect(outputs[STACK_OUTPUTS.functionArn]?.Value).toEqual({ 'Fn::GetAtt': ['SyncFunction', 'Arn'] });
    expect(template.Parameters?.SourceRoleArnPattern?.Default).toBe(
      'arn:aws:iam::*:role/cross-account-sync/*',
    );
    expect(byPattern({})).toMatchObject({
      Action: 'sts:AssumeRole',
      Resource: { Ref: 'SourceRoleArnPattern' },
    });
    expect(byPattern({ SourceRoleArnPattern: '' })).toBeUndefined();
    const source = loadTemplate('source-account/template.yaml');
    expect(source.Resources.S3GetListRole?.Properties?.Path).toEqual({ Ref: 'RolePath' });
    expect(source.Parameters?.RolePath?.Default).toBe('/');
  });

  it('grants s3:DeleteObject on the destination only when AllowMirrorDeletes is true', () => {
    expect(template.Parameters?.AllowMirrorDeletes).toMatchObject({
      Default: 'false',
      AllowedValues: ['true', 'false'],
    });

    // Without mirroring, the one deletion granted is of the fan-out manifest parts, under the manifest prefix.
    const objectDeletes = (values: Record<string, string>) =>
      grants(grantedStatements(values), 's3:DeleteObject').filter((s) => s.Sid !== 'RemoveManifestParts');
    const [parts, ...more] = grants(grantedStatements(), 's3:DeleteObject');
    expect(more).toEqual([]);
    expect(parts?.Sid).toBe('RemoveManifestParts');
    expect(JSON.stringify(parts?.Resource)).toMatch(
      /\$\{Bucket\}\/\.cross-account-sync\/runs\/\*\/parts\/\*"/,
    );
    expect(objectDeletes({})).toEqual([]);
    const deletes = objectDeletes({ AllowMirrorDeletes: 'true' });
    expect(deletes).toHaveLength(1);
    expect([deletes[0]?.Action].flat()).toEqual(['s3:DeleteObject']);
    expect(JSON.stringify(deletes[0]?.Resource)).toMatch(/\$\{Bucket\}\/\*"/);
  });

  it('declares the fan-out workers on their queues, with dead-letter queues, alarms and the sync role', () => {
    for (const [id, entry, queue] of [
      ['PlanShardFunction', 'plan-shard-worker', 'PlanShardQueue'],
      ['CopyWorkerFunction', 'copy-worker', 'CopyQueue'],
      ['PartWorkerFunction', 'part-worker', 'PartQueue'],
    ] as const) {
      const fn = props(id);
      expect(fn).toMatchObject({ CodeUri: './', Handler: `${entry}.handler`, Tracing: 'Active' });
      expect(fn.Role).toEqual({ 'Fn::GetAtt': ['SyncFunctionRole', 'Arn'] });
      expect(resource(id).Metadata?.BuildProperties).toMatchObject({
        EntryPoints: [`functions/${entry}.ts`],
      });
      expect(readFileSync(`functions/${entry}.ts`, 'utf8')).toMatch(/export const handler = lambdaWorker\(/);
      const [event] = Object.values(fn.Events as Record<string, Yaml>);
      expect(event).toMatchObject({
        Type: 'SQS',
        Properties: {
          Queue: { 'Fn::GetAtt': [queue, 'Arn'] },
          BatchSize: 1,
          FunctionResponseTypes: ['ReportBatchItemFailures'],
        },
      });
      expect(event.Properties.ScalingConfig.MaximumConcurrency.Ref).toMatch(/Concurrency$/);
      // Lambda advises a visibility timeout of six times the function's timeout for SQS sources.
      const queueProps = props(queue);
      expect(queueProps.VisibilityTimeout).toBeGreaterThanOrEqual(6 * fn.Timeout);
      const deadLetters = `${queue.replace(/Queue$/, '')}DeadLetterQueue`;
      expect(queueProps.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [deadLetters, 'Arn'] },
        maxReceiveCount: { Ref: 'TaskMaxReceiveCount' },
      });
      const alarm = alarmsOn('AWS/SQS').find(
        (a) =>
          JSON.stringify(a.Dimensions) ===
          JSON.stringify([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [deadLetters, 'QueueName'] } }]),
      );
      expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      expect(template.Outputs?.[`${deadLetters}Url`]?.Value).toEqual({ Ref: deadLetters });
    }
    // Every function reads the queues' URLs and the receive limit the worker settles failed tasks at.
    expect(environment('SyncFunction')).toMatchObject({
      PLAN_SHARD_QUEUE_URL: { Ref: 'PlanShardQueue' },
      COPY_QUEUE_URL: { Ref: 'CopyQueue' },
      PART_QUEUE_URL: { Ref: 'PartQueue' },
      TASK_MAX_RECEIVE_COUNT: { Ref: 'TaskMaxReceiveCount' },
    });
    const sqs = functionStatements().filter((s) => [s.Action].flat().some((a) => a.startsWith('sqs:')));
    expect(sqs.map((s) => s.Resource)).toEqual([
      [
        { 'Fn::GetAtt': ['PlanShardQueue', 'Arn'] },
        { 'Fn::GetAtt': ['CopyQueue', 'Arn'] },
        { 'Fn::GetAtt': ['PartQueue', 'Arn'] },
      ],
    ]);
  });

  it('graphs the part queue of giant objects and its dead-letter queue, and outputs both', () => {
    const [body] = props('SyncDashboard').DashboardBody['Fn::Sub'] as [string, unknown];
    const queues = [...body.matchAll(/\$\{(\w+)\.QueueName\}/g)].map((match) => match[1]);

    expect(queues).toEqual(expect.arrayContaining(['PartQueue', 'PartDeadLetterQueue']));
    expect(template.Outputs?.PartQueueUrl?.Value).toEqual({ Ref: 'PartQueue' });
    expect(props('PartWorkerFunction').Events.Tasks.Properties.ScalingConfig.MaximumConcurrency).toEqual({
      Ref: 'PartWorkerConcurrency',
    });
  });

  it('grants the state table exactly the DynamoDB actions functions/ calls, on that table only', () => {
    const COMMAND_ACTIONS: Record<string, string> = {
      Get: 'dynamodb:GetItem',
      Put: 'dynamodb:PutItem',
      Update: 'dynamodb:UpdateItem',
      Delete: 'dynamodb:DeleteItem',
      Query: 'dynamodb:Query',
      Scan: 'dynamodb:Scan',
      BatchGet: 'dynamodb:BatchGetItem',
      BatchWrite: 'dynamodb:BatchWriteItem',
    };
    const called = new Set<string>();
    for (const file of readdirSync('functions', { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.ts')) continue;
      const code = readFileSync(join('functions', file), 'utf8');
      if (!code.includes('@aws-sdk/lib-dynamodb')) continue;
      for (const [, name] of code.matchAll(/new (\w+)Command\(/g)) {
        const action = COMMAND_ACTIONS[name ?? ''];
        if (action) called.add(action);
      }
    }
    expect(called.size).toBeGreaterThan(0);
    // The one Scan (StateStore.sampleJobIds, listing known job ids for an unknown --job-id) serves only
    // the CLI's diagnose room, run with the operator's identity: the function never calls it, so its
    // role does not get Scan. Checked, so a Scan the function starts using fails this test.
    const scanCallers = readdirSync('functions', { recursive: true, encoding: 'utf8' }).filter(
      (file) =>
        file.endsWith('.ts') &&
        readFileSync(join('functions', file), 'utf8').includes('sampleJobIds(') &&
        !file.startsWith('core/diagnose/') &&
        // Where it is defined (run-records.ts) and passed on (the StateStore facade).
        file !== join('core', 'state', 'state-store.ts') &&
        file !== join('core', 'state', 'run-records.ts'),
    );
    expect(scanCallers).toEqual([]);
    called.delete('dynamodb:Scan');

    // SAM's DynamoDBCrudPolicy would add Scan, BatchGetItem, BatchWriteItem, DescribeTable, ConditionCheckItem.
    const policies = props('SyncFunction').Policies as Array<Record<string, Yaml>>;
    expect(policies.filter((policy) => !policy.Statement)).toEqual([]);
    const dynamodb = grantedStatements().filter((s) =>
      [s.Action].flat().some((a) => a.startsWith('dynamodb:')),
    );
    expect(new Set(dynamodb.flatMap((s) => [s.Action].flat()))).toEqual(called);
    for (const statement of dynamodb) {
      expect(statement.Resource).toEqual({ 'Fn::GetAtt': ['StateTable', 'Arn'] });
    }
  });

  it('passes SourceRegion into the scheduled job when set, and leaves the region to the SDK when not', () => {
    expect(template.Parameters?.SourceRegion).toMatchObject({ Default: '' });

    expect(scheduledJob(REQUIRED).source.region).toBeUndefined();
    expect(scheduledJob({ ...REQUIRED, SourceRegion: 'eu-central-1' }).source).toMatchObject({
      region: 'eu-central-1',
      bucket: 'source-bucket',
    });
  });

  it('copies tags and grants s3:PutObjectTagging on the destination only when CopyTags is true', () => {
    expect(template.Parameters?.CopyTags).toMatchObject({ Default: 'false' });
    const tagging = (values: Record<string, string>) =>
      grantedStatements(values).filter((s) => [s.Action].flat().includes('s3:PutObjectTagging'));

    expect(scheduledJob(REQUIRED).options.copyTags).toBe(false);
    expect(tagging(REQUIRED)).toEqual([]);
    expect(scheduledJob({ ...REQUIRED, CopyTags: 'true' }).options.copyTags).toBe(true);
    expect(tagging({ ...REQUIRED, CopyTags: 'true' })).toHaveLength(1);
  });

  it('passes DestinationRegion into the scheduled job when set, and leaves it out when not', () => {
    expect(template.Parameters?.DestinationRegion).toMatchObject({ Default: '' });

    expect(scheduledJob(REQUIRED).destination.region).toBeUndefined();
    expect(scheduledJob({ ...REQUIRED, DestinationRegion: 'eu-west-2' }).destination).toMatchObject({
      region: 'eu-west-2',
    });
  });

  it('encrypts a created bucket with DestinationKmsKeyArn and lets the function use that key, only when set', () => {
    const key = 'arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const encryption = (values: Record<string, string>) =>
      ((deployed(template, values).Resources.DestinationBucket as Resource).Properties as Yaml)
        .BucketEncryption.ServerSideEncryptionConfiguration;
    const kmsStatements = (values: Record<string, string>) =>
      grantedStatements(values).filter((s) => [s.Action].flat().some((a) => a.startsWith('kms:')));

    expect(template.Parameters?.DestinationKmsKeyArn).toMatchObject({ Default: '' });
    expect(encryption({})).toEqual([{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }]);
    expect(kmsStatements({})).toEqual([]);

    expect(encryption({ DestinationKmsKeyArn: key })).toEqual([
      {
        ServerSideEncryptionByDefault: {
          SSEAlgorithm: 'aws:kms',
          KMSMasterKeyID: { Ref: 'DestinationKmsKeyArn' },
        },
        BucketKeyEnabled: true,
      },
    ]);
    const [kms, ...more] = kmsStatements({ DestinationKmsKeyArn: key });
    expect(more).toEqual([]);
    expect(new Set([kms?.Action].flat())).toEqual(new Set(['kms:GenerateDataKey', 'kms:Decrypt']));
    expect(kms?.Resource).toEqual({ Ref: 'DestinationKmsKeyArn' });
    expect(JSON.stringify(kms?.Condition)).toMatch(/kms:ViaService/);
  });

  it('outputs what the CLI and an operator need to find the deployment', () => {
    const outputs = template.Outputs ?? {};

    expect(outputs).toMatchObject({
      SyncFunctionName: { Value: { Ref: 'SyncFunction' } },
      SyncFunctionRoleArn: { Value: { 'Fn::GetAtt': ['SyncFunctionRole', 'Arn'] } },
      StateTableName: { Value: { Ref: 'StateTable' } },
      SyncLogGroupName: { Value: { Ref: 'SyncLogGroup' } },
      // SAM names the schedule of the function's Sync event SyncFunctionSync; its Ref is the schedule name.
      SyncScheduleName: { Value: { Ref: 'SyncFunctionSync' } },
      DashboardName: { Value: { Ref: 'SyncDashboard' } },
      DestinationBucketName: {
        Value: {
          'Fn::If': [
            'CreateDestinationBucket',
            { Ref: 'DestinationBucket' },
            { Ref: 'DestinationBucketName' },
          ],
        },
      },
    });
    expect(deployed(template).Outputs).not.toHaveProperty('ExtraJobScheduleName');
    expect(deployed(template, { ExtraJobInput: '{}' }).Outputs?.ExtraJobScheduleName).toEqual(
      expect.objectContaining({ Value: { Ref: 'ExtraJobSchedule' } }),
    );
  });

  it('outputs every name `status --stack` and `doctor --stack` read, each schedule’s input being a job', () => {
    const outputs = deployed(template, { ExtraJobInput: '{}' }).Outputs ?? {};
    const names = [
      STACK_OUTPUTS.tableName,
      STACK_OUTPUTS.functionName,
      STACK_OUTPUTS.functionRoleArn,
      ...STACK_OUTPUTS.schedules,
    ];

    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(names));
    expect(outputs[STACK_OUTPUTS.schedules[1]]?.Value).toEqual({ Ref: 'ExtraJobSchedule' });
    expect(props('ExtraJobSchedule').Target.Input).toEqual({ Ref: 'ExtraJobInput' });
  });

  it('lets AccountA trust only the consumer function roles named in ConsumerPrincipalArns', () => {
    const source = loadTemplate('source-account/template.yaml');
    const trust = (values: Record<string, string>) => {
      const role = deployed(source, { ConsumerAccountId: '222222222222', ...values }).Resources.S3GetListRole;
      return ((role as Resource).Properties as Yaml).AssumeRolePolicyDocument.Statement[0];
    };
    const roles = [
      'arn:aws:iam::222222222222:role/sync-SyncFunctionRole-ABC',
      'arn:aws:iam::222222222222:role/other-SyncFunctionRole-*',
    ];

    expect(source.Parameters?.ConsumerPrincipalArns).toMatchObject({
      Type: 'CommaDelimitedList',
      Default: '',
    });
    expect(trust({}).Condition).toEqual({ StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } } });
    expect(trust({ ConsumerPrincipalArns: roles.join(',') }).Condition).toEqual({
      StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } },
      ArnLike: { 'aws:PrincipalArn': { Ref: 'ConsumerPrincipalArns' } },
    });
  });

  it('grants AccountA role kms:Decrypt through S3 and s3:GetObjectTagging only when asked', () => {
    const source = loadTemplate('source-account/template.yaml');
    const actions = (values: Record<string, string>) =>
      Object.values(deployed(source, { ConsumerAccountId: '222222222222', ...values }).Resources)
        .flatMap((r) =>
          r.Type === 'AWS::IAM::Role'
            ? (r.Properties as Yaml).Policies.map((p: Yaml) => p.PolicyDocument)
            : r.Type === 'AWS::IAM::RolePolicy'
              ? [(r.Properties as Yaml).PolicyDocument]
              : [],
        )
        .flatMap((document: Yaml) => document.Statement);
    const key = 'arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab';

    expect(source.Parameters?.SourceKmsKeyArn).toMatchObject({ Default: '' });
    expect(source.Parameters?.AllowGetObjectTagging).toMatchObject({ Default: 'false' });
    expect(
      actions({})
        .flatMap((s: Yaml) => [s.Action].flat())
        .sort(),
    ).toEqual(['s3:GetObject', 's3:ListBucket']);

    const decrypt = actions({ SourceKmsKeyArn: key }).filter((s: Yaml) => s.Action === 'kms:Decrypt');
    expect(decrypt).toEqual([
      expect.objectContaining({
        Resource: { Ref: 'SourceKmsKeyArn' },
        Condition: { StringLike: { 'kms:ViaService': 's3.*.amazonaws.com' } },
      }),
    ]);
    const tagging = actions({ AllowGetObjectTagging: 'true' }).filter(
      (s: Yaml) => s.Action === 's3:GetObjectTagging',
    );
    expect(tagging).toEqual([
      expect.objectContaining({ Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::\${BucketName}/*` } }),
    ]);
  });

  it('copies server-side only with CopyMethod=server-side, granting the role s3:GetObject on SourceBucket then', () => {
    // Every value given: scheduledJob leaves the values it was given as the template's defaults.
    const values = (CopyMethod: string, CopyTags: string) => ({ ...REQUIRED, CopyMethod, CopyTags });
    const reads = (CopyMethod: string, CopyTags: string) =>
      grantedStatements(values(CopyMethod, CopyTags))
        .filter((s) => String(s.Sid).endsWith('ForServerSideCopy'))
        .map(({ Action, Resource }) => ({ Action, Resource }));
    const onSource = { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::\${SourceBucket}/*` };

    expect(template.Parameters?.CopyMethod).toMatchObject({
      Default: 'stream',
      AllowedValues: ['stream', 'server-side'],
    });
    expect(reads('stream', 'true')).toEqual([]);
    expect(reads('server-side', 'false')).toEqual([{ Action: 's3:GetObject', Resource: onSource }]);
    expect(reads('server-side', 'true')).toEqual([
      { Action: 's3:GetObject', Resource: onSource },
      { Action: 's3:GetObjectTagging', Resource: onSource },
    ]);
    expect(scheduledJob(values('stream', 'false')).options).toMatchObject({
      copyMethod: 'stream',
      copyTags: false,
    });
    expect(scheduledJob(values('server-side', 'false')).options).toMatchObject({
      copyMethod: 'server-side',
      copyTags: false,
    });
    expect(scheduledJob(values('server-side', 'true')).options).toMatchObject({
      copyMethod: 'server-side',
      copyTags: true,
    });
    expect(scheduledJob(values('stream', 'true')).options).toMatchObject({
      copyMethod: 'stream',
      copyTags: true,
    });
    scheduledJob(values('stream', 'false'));
  });

  it("lets AccountA grant the server-side copy role its bucket's objects under a prefix, only when named", () => {
    const source = loadTemplate('source-account/template.yaml');
    const statements = (values: Record<string, string>): Yaml[] =>
      Object.values(deployed(source, { ConsumerAccountId: '222222222222', ...values }).Resources)
        .filter((r) => r.Type === 'AWS::S3::BucketPolicy')
        .flatMap((r) => (r.Properties as Yaml).PolicyDocument.Statement);
    const principal = 'arn:aws:iam::222222222222:role/sync-SyncFunctionRole-abc';
    const read = (Action: string) =>
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { AWS: { Ref: 'ServerSideCopyPrincipalArn' } },
        Action,
        Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::\${BucketName}/\${ServerSideCopyPrefix}*` },
      });

    expect(source.Parameters?.ServerSideCopyPrincipalArn).toMatchObject({ Default: '' });
    expect(statements({})).toEqual([]);
    expect(statements({ ServerSideCopyPrincipalArn: principal })).toEqual([read('s3:GetObject')]);
    expect(statements({ ServerSideCopyPrincipalArn: principal, AllowGetObjectTagging: 'true' })).toEqual([
      read('s3:GetObject'),
      read('s3:GetObjectTagging'),
    ]);
  });

  describe('S3Events: the consumer side of event-driven sync (docs/event-driven.md)', () => {
    const EVENT_RESOURCES = ['S3EventBus', 'S3EventBusPolicy', 'S3EventsRule', 'CopyQueueEventsPolicy'];
    const withEvents = (values: Record<string, string> = {}) => {
      const all = { ...REQUIRED, S3Events: 'true', ...values };
      const template = deployed(loadTemplate('template.yaml'), all);
      for (const [name, value] of Object.entries(all)) {
        const declared = template.Parameters?.[name];
        if (declared) declared.Default = value;
      }
      return template;
    };

    it('is off by default: no bus, rule or queue policy, and the scheduled job does not follow events', () => {
      const off = deployed(template, REQUIRED);
      expect(template.Parameters?.S3Events).toMatchObject({
        Default: 'false',
        AllowedValues: ['true', 'false'],
      });
      for (const id of EVENT_RESOURCES) expect(off.Resources[id], id).toBeUndefined();
      expect(off.Outputs?.S3EventBusArn).toBeUndefined();
      expect(scheduledJob(REQUIRED).options.events).toBe(false);
      expect(scheduledJob({ ...REQUIRED, S3Events: 'true' }).options.events).toBe(true);
    });

    it('admits only AccountA on the bus, and only its forwarding rule when S3EventsSourceRuleArn names it', () => {
      const statement = (values: Record<string, string>) =>
        ((withEvents(values).Resources.S3EventBusPolicy as Resource).Properties as Yaml).Statement;
      const rule = 'arn:aws:events:eu-west-1:111111111111:rule/forward-to-accountb';

      expect(statement({})).toEqual({
        Effect: 'Allow',
        Principal: {
          AWS: {
            'Fn::Sub': [
              `arn:\${AWS::Partition}:iam::\${SourceAccount}:root`,
              { SourceAccount: { 'Fn::Select': [4, { 'Fn::Split': [':', { Ref: 'SourceRoleArn' }] }] } },
            ],
          },
        },
        Action: 'events:PutEvents',
        Resource: { 'Fn::GetAtt': ['S3EventBus', 'Arn'] },
      });
      expect(statement({ S3EventsSourceRuleArn: rule }).Condition).toEqual({
        ArnEquals: { 'aws:SourceArn': { Ref: 'S3EventsSourceRuleArn' } },
      });
      expect(withEvents().Outputs?.S3EventBusArn?.Value).toEqual({ 'Fn::GetAtt': ['S3EventBus', 'Arn'] });
    });

    it("sends the job's object changes under its prefix to the copy queue, which lets only that rule send", () => {
      const rule = (values: Record<string, string>) =>
        withEvents(values).Resources.S3EventsRule?.Properties as Yaml;

      expect(rule({ SourcePrefix: 'exports/' }).EventPattern).toEqual({
        source: ['aws.s3'],
        'detail-type': ['Object Created', 'Object Deleted', 'Object Restore Completed'],
        detail: {
          bucket: { name: [{ Ref: 'SourceBucket' }] },
          object: { key: [{ prefix: { Ref: 'SourcePrefix' } }] },
        },
      });
      expect(rule({}).EventPattern.detail).toEqual({ bucket: { name: [{ Ref: 'SourceBucket' }] } });
      expect(rule({}).Targets).toMatchObject([{ Arn: { 'Fn::GetAtt': ['CopyQueue', 'Arn'] } }]);
      expect(props('CopyQueueEventsPolicy').PolicyDocument.Statement).toEqual([
        expect.objectContaining({
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: { 'Fn::GetAtt': ['CopyQueue', 'Arn'] },
          Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': ['S3EventsRule', 'Arn'] } } },
        }),
      ]);
    });

    it("wraps each event with the schedule's own job, which the copy worker reads", () => {
      const values = { SourcePrefix: 'exports/', SourceRegion: 'eu-west-1', CopyTags: 'true' };
      const deployedTemplate = withEvents(values);
      const resolve = (sub: Yaml) => {
        const [text, vars] = sub['Fn::Sub'];
        const bucket = 'accountb-sync-destination';
        return String(resolveValue({ 'Fn::Sub': [text, { ...vars, Bucket: bucket }] }, deployedTemplate, {}));
      };
      const [target] = ((deployedTemplate.Resources.S3EventsRule as Resource).Properties as Yaml).Targets;
      const scheduled = ((deployedTemplate.Resources.SyncFunction as Resource).Properties as Yaml).Events.Sync
        .Properties;
      const event = {
        id: 'e-1',
        source: 'aws.s3',
        'detail-type': 'Object Created',
        time: '2026-12-03T06:00:00Z',
        detail: { bucket: { name: 'source-bucket' }, object: { key: 'exports/a.csv', sequencer: '01' } },
      };

      const message = parseEventMessage(
        resolve(target.InputTransformer.InputTemplate).replace(
          '<aws.events.event.json>',
          JSON.stringify(event),
        ),
      );

      const job = parseJob(JSON.parse(resolve(scheduled.Input)));
      expect(message.route).toEqual({ by: 'job', job });
      expect(job).toMatchObject({
        source: { bucket: 'source-bucket', prefix: 'exports/', region: 'eu-west-1' },
        options: { events: true, copyTags: true },
      });
      expect(message.change).toMatchObject({ key: 'exports/a.csv', bucket: 'source-bucket' });
    });
  });

  it('documents every parameter of both templates in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    for (const path of TEMPLATES) {
      for (const name of Object.keys(loadTemplate(path).Parameters ?? {})) {
        expect(readme, `${path} parameter ${name}`).toContain(`| \`${name}\``);
      }
    }
  });
});
