import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJob } from '../../functions/core/job.js';
import { loadTemplate, type Resource, resolveValue } from '../../scripts/lib/sam-template.js';

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
    expect(fn.Environment.Variables).toMatchObject({
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
    const [text] = event.Properties.Input['Fn::Sub'] as [string, unknown];
    const input = resolveValue(
      { 'Fn::Sub': [text, { Bucket: 'accountb-sync-destination' }] },
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
    });
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
    // SSE-S3 keeps single-part ETags equal to the MD5 the sync compares.
    expect(
      bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault,
    ).toEqual({
      SSEAlgorithm: 'AES256',
    });
    expect(bucket.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      }),
    );
  });

  it('lets the function assume only the SourceRoleArn and SourceRoleArns roles, and grants no wildcard actions', () => {
    const statements = functionStatements();
    const assume = statements.filter((s) => [s.Action].flat().includes('sts:AssumeRole'));
    expect(assume.map((s) => s.Resource)).toEqual([{ Ref: 'SourceRoleArn' }, { Ref: 'SourceRoleArns' }]);
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
        's3:AbortMultipartUpload',
        'events:PutEvents',
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

  it('publishes metrics under CrossAccountSync and run events on the EventBusName bus only, traced by X-Ray', () => {
    const fn = props('SyncFunction');

    const publish = functionStatements().filter((s) => [s.Action].flat().includes('events:PutEvents'));

    expect(fn.Tracing).toBe('Active');
    expect(fn.Environment.Variables).toMatchObject({
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
    const sync = alarmsOn(METRICS.namespace);
    const lambda = alarmsOn('AWS/Lambda');

    expect(sync.map((alarm) => alarm.MetricName).sort()).toEqual(['objectsFailed', 'replicationLag']);
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
});
