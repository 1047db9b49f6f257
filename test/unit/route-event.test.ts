/**
 * Routing an event to its job(s), the job store answered by a mocked DynamoDB: the job the rule names,
 * a stored job's id, or a bare event matched against the stored jobs; and why an event is for no job.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { EventMessage } from '../../functions/core/events/event-message.js';
import type { ObjectChange } from '../../functions/core/events/object-change.js';
import { routeEvent } from '../../functions/core/events/route-event.js';
import { type JobInput, parseJob } from '../../functions/core/job.js';
import { JobStore } from '../../functions/core/state/job-store.js';

const dynamo = mockClient(DynamoDBDocumentClient);
const store = () => new JobStore(new DynamoDBClient({ region: 'eu-west-1' }), 'state');

const jobInput = (jobId: string, prefix: string, events = true): JobInput => ({
  jobId,
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'producer', prefix },
  destination: { bucket: 'consumer' },
  options: { events },
});
const item = (input: JobInput, status = 'active') => ({
  pk: 'jobs',
  sk: input.jobId,
  job: input,
  status,
  createdAt: 'x',
  updatedAt: 'x',
});
const change = (key: string, bucket = 'producer'): ObjectChange => ({
  eventId: 'e-1',
  bucket,
  key,
  change: 'created',
  sequencer: '01',
  eventTime: new Date(0),
});
const message = (route: EventMessage['route'], key = 'in/a.csv', bucket?: string): EventMessage => ({
  change: change(key, bucket),
  route,
});

beforeEach(() => dynamo.reset());

describe('routeEvent', () => {
  it('takes the job the rule carries when it follows events of the key, reading no store', async () => {
    const job = parseJob(jobInput('inline', 'in/'));
    expect(await routeEvent(store(), message({ by: 'job', job }))).toEqual({ jobs: [job] });
    expect(dynamo.calls()).toHaveLength(0);
  });

  it.each([
    [
      'does not follow events',
      jobInput('inline', 'in/', false),
      'in/a.csv',
      'producer',
      /options\.events is off/,
    ],
    [
      'reads another bucket',
      jobInput('inline', 'in/'),
      'in/a.csv',
      'other',
      /reads bucket producer, not other/,
    ],
    ['reads another prefix', jobInput('inline', 'out/'), 'in/a.csv', 'producer', /reads only under "out\/"/],
  ])('drops an event for a rule’s job that %s, saying so', async (_name, input, key, bucket, reason) => {
    const routing = await routeEvent(store(), message({ by: 'job', job: parseJob(input) }, key, bucket));
    expect(routing).toEqual({ jobs: [], dropped: expect.stringMatching(reason) });
  });

  it('reads a stored job by id; drops one that is gone or paused', async () => {
    dynamo
      .on(GetCommand, { Key: { pk: 'jobs', sk: 'stored' } })
      .resolves({ Item: item(jobInput('stored', 'in/')) })
      .on(GetCommand, { Key: { pk: 'jobs', sk: 'paused' } })
      .resolves({ Item: item(jobInput('paused', 'in/'), 'paused') })
      .on(GetCommand, { Key: { pk: 'jobs', sk: 'gone' } })
      .resolves({});

    expect(await routeEvent(store(), message({ by: 'jobId', jobId: 'stored' }))).toEqual({
      jobs: [parseJob(jobInput('stored', 'in/'))],
    });
    expect(await routeEvent(store(), message({ by: 'jobId', jobId: 'paused' }))).toEqual({
      jobs: [],
      dropped: expect.stringMatching(/job "paused" is paused/),
    });
    expect(await routeEvent(store(), message({ by: 'jobId', jobId: 'gone' }))).toEqual({
      jobs: [],
      dropped: expect.stringMatching(/no job "gone" in the job store .*remove its rule/),
    });
  });

  it('matches a bare event against every active stored job that follows events of its bucket and prefix', async () => {
    dynamo
      .on(QueryCommand)
      .resolvesOnce({
        Items: [item(jobInput('all', '')), item(jobInput('in', 'in/')), item(jobInput('off', 'in/', false))],
        LastEvaluatedKey: { pk: 'jobs', sk: 'off' },
      })
      .resolvesOnce({ Items: [item(jobInput('out', 'out/')), item(jobInput('resting', 'in/'), 'paused')] });

    const routing = await routeEvent(store(), message({ by: 'match' }));

    expect(routing.jobs.map((job) => job.jobId)).toEqual(['all', 'in']);
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(2);
  });

  it('drops a bare event no stored job follows, naming the key', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [item(jobInput('off', 'in/', false))] });

    expect(await routeEvent(store(), message({ by: 'match' }))).toEqual({
      jobs: [],
      dropped: 'no active stored job with options.events follows s3://producer/in/a.csv',
    });
  });
});
