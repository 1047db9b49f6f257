import { describe, expect, it } from 'vitest';
import { ChangeEventError, parseObjectChange } from '../../functions/core/events/object-change.js';

/** An S3 event as EventBridge delivers it (the shape of the S3 user guide's example). */
function s3Event(overrides: { detailType?: string; object?: Record<string, unknown>; source?: string } = {}) {
  return {
    version: '0',
    id: '17793124-05d4-b198-2fde-7ededc63b103',
    'detail-type': overrides.detailType ?? 'Object Created',
    source: overrides.source ?? 'aws.s3',
    account: '111111111111',
    time: '2026-12-03T06:00:00Z',
    region: 'eu-west-1',
    resources: ['arn:aws:s3:::producer-bucket'],
    detail: {
      version: '0',
      bucket: { name: 'producer-bucket' },
      object: {
        key: 'exports/a b+c.csv',
        size: 5,
        etag: 'b1946ac92492d2347c6235b4d2611184',
        sequencer: '0064D3901D00059242',
        ...overrides.object,
      },
      'request-id': 'N4N7GDK58NMKJ12R',
      requester: '111111111111',
      reason: 'PutObject',
    },
  };
}

describe('parseObjectChange: an S3 EventBridge event read as a hint that one key changed', () => {
  it('reads a created object: key as is, sequencer, ETag, size and the event time', () => {
    expect(parseObjectChange(s3Event())).toEqual({
      eventId: '17793124-05d4-b198-2fde-7ededc63b103',
      bucket: 'producer-bucket',
      key: 'exports/a b+c.csv',
      change: 'created',
      sequencer: '0064D3901D00059242',
      eventTime: new Date('2026-12-03T06:00:00Z'),
      etag: 'b1946ac92492d2347c6235b4d2611184',
      size: 5,
    });
  });

  it("reads moto's epoch-seconds time (an InputTransformer's <aws.events.event.json>) as the same instant", () => {
    const iso = parseObjectChange(s3Event());
    const epoch = parseObjectChange({ ...s3Event(), time: Date.parse('2026-12-03T06:00:00Z') / 1000 });
    expect(epoch.eventTime).toEqual(iso.eventTime);
  });

  it('refuses a time that is neither, naming the field', () => {
    expect(() => parseObjectChange({ ...s3Event(), time: 'yesterday' })).toThrow(
      /event\.time must be the time of the change, an ISO 8601 date-time/,
    );
  });

  it('reads a queue message body (JSON text) the same as the event object', () => {
    expect(parseObjectChange(JSON.stringify(s3Event()))).toEqual(parseObjectChange(s3Event()));
  });

  it('reads a deletion, which carries no ETag or size, and a completed restore as created', () => {
    const deleted = s3Event({ detailType: 'Object Deleted', object: { etag: undefined, size: undefined } });
    expect(parseObjectChange(deleted)).toMatchObject({ change: 'deleted', key: 'exports/a b+c.csv' });
    expect(parseObjectChange(deleted)).not.toHaveProperty('etag');
    expect(parseObjectChange(s3Event({ detailType: 'Object Restore Completed' })).change).toBe('created');
  });

  it('keeps the version id of a versioned bucket, and none for an unversioned one\'s "null"', () => {
    expect(parseObjectChange(s3Event({ object: { 'version-id': 'v7' } })).versionId).toBe('v7');
    expect(parseObjectChange(s3Event({ object: { 'version-id': 'null' } }))).not.toHaveProperty('versionId');
  });

  it("reads the ETag under moto's name for it (eTag) as well as S3's (etag)", () => {
    const moto = s3Event({ object: { etag: undefined, eTag: '6e809cbda0732ac4845916a59016f954' } });
    expect(parseObjectChange(moto).etag).toBe('6e809cbda0732ac4845916a59016f954');
  });

  it('refuses an event type the sync does not copy, naming the types a producer rule should forward', () => {
    expect(() => parseObjectChange(s3Event({ detailType: 'Object Tags Added' }))).toThrow(
      /event\.detail-type must be one of Object Created, Object Restore Completed, Object Deleted/,
    );
  });

  it('refuses an event from another source', () => {
    expect(() => parseObjectChange(s3Event({ source: 'aws.ec2' }))).toThrow(
      /event\.source must be "aws\.s3"/,
    );
  });

  it('refuses an event without a sequencer, or with one that is not hexadecimal, naming the field', () => {
    expect(() => parseObjectChange(s3Event({ object: { sequencer: undefined } }))).toThrow(
      /event\.detail\.object\.sequencer/,
    );
    expect(() => parseObjectChange(s3Event({ object: { sequencer: 'not-hex' } }))).toThrow(
      /event\.detail\.object\.sequencer must be hexadecimal digits/,
    );
  });

  it('refuses a body that is not JSON with a ChangeEventError that shows the start of it', () => {
    expect(() => parseObjectChange('{"Records": [')).toThrow(ChangeEventError);
    expect(() => parseObjectChange('{"Records": [')).toThrow(/a JSON object; got \{"Records": \[/);
  });
});
