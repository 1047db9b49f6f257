import { describe, expect, it } from 'vitest';
import { isEventMessage, parseEventMessage } from '../../functions/core/events/event-message.js';
import { ChangeEventError } from '../../functions/core/events/object-change.js';

const event = {
  id: 'e-1',
  source: 'aws.s3',
  'detail-type': 'Object Created',
  time: '2026-12-03T06:00:00Z',
  detail: {
    bucket: { name: 'producer-bucket' },
    object: { key: 'in/a.csv', sequencer: '0064D3901D00059242' },
  },
};
const job = {
  jobId: 'ev-job',
  source: {
    roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole',
    bucket: 'producer-bucket',
    prefix: 'in/',
  },
  destination: { bucket: 'consumer-bucket' },
  options: { events: true },
};

describe('isEventMessage: events and copy tasks share the copy queue', () => {
  it.each([
    ['a wrapped event', { jobId: 'x', event }, true],
    ['a bare S3 event', event, true],
    ['a copy task (it has kind)', { kind: 'copy', jobId: 'x', fence: 1, taskId: 't', objects: [] }, false],
    ['text that is not JSON', 'not json', false],
    ['a JSON array', [event], false],
  ])('%s: %s', (_name, body, expected) => {
    expect(isEventMessage(typeof body === 'string' ? body : JSON.stringify(body))).toBe(expected);
  });
});

describe('parseEventMessage', () => {
  it('reads the job the rule carries, validated', () => {
    const message = parseEventMessage(JSON.stringify({ job, event }));
    expect(message.route).toMatchObject({ by: 'job', job: { jobId: 'ev-job', options: { events: true } } });
    expect(message.change).toMatchObject({ key: 'in/a.csv', bucket: 'producer-bucket', change: 'created' });
  });

  it('reads a stored job’s id, and a bare event as one to match against the stored jobs', () => {
    expect(parseEventMessage(JSON.stringify({ jobId: 'stored', event })).route).toEqual({
      by: 'jobId',
      jobId: 'stored',
    });
    expect(parseEventMessage(JSON.stringify(event)).route).toEqual({ by: 'match' });
  });

  it.each([
    [
      'both job and jobId',
      { job, jobId: 'x', event },
      /exactly one of "job" .* or "jobId".*InputTransformer/,
    ],
    ['neither', { event }, /exactly one of "job"/],
    [
      'a field the wrapper does not have',
      { jobId: 'x', event, extra: 1 },
      /InputTransformer writes it: message Unrecognized key: "extra"/,
    ],
    [
      'an invalid job',
      { job: { ...job, jobId: 'a b' }, event },
      /rule's job is not valid .*job\.jobId must be/,
    ],
    [
      'an event that is no S3 change',
      { jobId: 'x', event: { ...event, source: 'aws.ec2' } },
      /event\.source/,
    ],
    ['text that is not JSON', 'oops', /is a JSON object; got oops/],
  ])('refuses %s, naming the problem', (_name, body, message) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    expect(() => parseEventMessage(text)).toThrow(ChangeEventError);
    expect(() => parseEventMessage(text)).toThrow(message);
  });
});
