import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import {
  AssumeRoleError,
  awsErrorCode,
  describeError,
  IntegrityError,
  isRefusedCredentials,
  isSlowDown,
  JobValidationError,
  LeaseLostError,
  networkFailure,
  ObjectCopyError,
  SourceVanishedError,
  StateStoreError,
  SyncError,
} from '../../functions/core/errors.js';

const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
    code: 'ECONNREFUSED',
    address: '127.0.0.1',
    port: 1,
  });

describe('networkFailure', () => {
  it('names the address a refused or unresolved connection went to, through wrapping errors', () => {
    expect(networkFailure(refused())).toBe('ECONNREFUSED 127.0.0.1:1');
    expect(networkFailure(new AssumeRoleError('x', { cause: refused() }))).toBe('ECONNREFUSED 127.0.0.1:1');
    expect(
      networkFailure(
        Object.assign(new Error('getaddrinfo'), { code: 'ENOTFOUND', hostname: 'sts.example.com' }),
      ),
    ).toBe('ENOTFOUND sts.example.com');
    expect(networkFailure(Object.assign(new Error('socket'), { name: 'TimeoutError' }))).toBe('timed out');
  });

  it('is undefined for an answer from AWS, which has a status', () => {
    const denied = Object.assign(new Error('Access Denied'), {
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    expect(networkFailure(denied)).toBeUndefined();
    expect(
      networkFailure(
        Object.assign(new Error('slow'), { name: 'TimeoutError', $metadata: { httpStatusCode: 408 } }),
      ),
    ).toBeUndefined();
  });

  it('makes a network failure exit 5 (unexpected), not 3 (access), even wrapped as an access error', () => {
    expect(exitCodeFor(new AssumeRoleError('AssumeRole failed', { cause: refused() }))).toBe(EXIT.unexpected);
  });
});

/** `error` wrapped `depth` times, each wrapper keeping the one inside as its cause. */
function wrapped(error: unknown, depth: number): unknown {
  let current = error;
  for (let i = 0; i < depth; i += 1) current = new SyncError(`level ${i}`, { cause: current });
  return current;
}

const awsError = (name: string, message = name, status?: number) =>
  Object.assign(new Error(message), {
    name,
    ...(status !== undefined && { $metadata: { httpStatusCode: status } }),
  });

describe('networkFailure, further', () => {
  it.each([
    'ECONNREFUSED',
    'ENOTFOUND',
    'EAI_AGAIN',
    'ECONNRESET',
    'ETIMEDOUT',
    'EHOSTUNREACH',
    'ENETUNREACH',
  ])('recognizes %s', (code) => {
    expect(networkFailure(Object.assign(new Error('x'), { code }))).toBe(code);
  });

  it('names the address without a port when it has none, and ignores other codes', () => {
    expect(networkFailure(Object.assign(new Error('x'), { code: 'ECONNRESET', address: '10.0.0.1' }))).toBe(
      'ECONNRESET 10.0.0.1',
    );
    expect(
      networkFailure(Object.assign(new Error('x'), { code: 'EPIPE', address: '10.0.0.1' })),
    ).toBeUndefined();
    expect(networkFailure(Object.assign(new Error('x'), { code: 42 }))).toBeUndefined();
  });

  it('looks four causes deep and no deeper, and only through Errors', () => {
    expect(networkFailure(wrapped(refused(), 4))).toBe('ECONNREFUSED 127.0.0.1:1');
    expect(networkFailure(wrapped(refused(), 5))).toBeUndefined();
    expect(networkFailure({ cause: refused() })).toBeUndefined();
  });

  it('is undefined for anything that is not an object', () => {
    expect(networkFailure(undefined)).toBeUndefined();
    expect(networkFailure(null)).toBeUndefined();
    expect(networkFailure('ECONNREFUSED')).toBeUndefined();
  });

  it('is undefined for an error named otherwise, without a code', () => {
    expect(networkFailure(awsError('AbortError'))).toBeUndefined();
  });
});

describe('awsErrorCode', () => {
  it("reads the SDK error's name and HTTP status", () => {
    expect(awsErrorCode(awsError('NoSuchKey', 'gone', 404))).toStrictEqual({
      name: 'NoSuchKey',
      status: 404,
    });
  });

  it('prefers the Code of an XML error to its name, and leaves out what is missing', () => {
    expect(awsErrorCode(Object.assign(new Error('x'), { Code: 'SlowDown' }))).toStrictEqual({
      name: 'SlowDown',
      status: undefined,
    });
    expect(awsErrorCode({ name: 7, Code: 7 })).toStrictEqual({ name: undefined, status: undefined });
  });

  it('is empty for a value that is not an object', () => {
    expect(awsErrorCode(null)).toStrictEqual({});
    expect(awsErrorCode('AccessDenied')).toStrictEqual({});
    expect(awsErrorCode(undefined)).toStrictEqual({});
  });
});

describe('isRefusedCredentials', () => {
  it.each(['ExpiredToken', 'InvalidToken', 'ExpiredTokenException', 'TokenRefreshRequired'])(
    'recognizes %s, by name or by Code',
    (name) => {
      expect(isRefusedCredentials(awsError(name))).toBe(true);
      expect(isRefusedCredentials(Object.assign(new Error('x'), { Code: name }))).toBe(true);
    },
  );

  it('is false for other refusals and for values without a name', () => {
    expect(isRefusedCredentials(awsError('AccessDenied', 'Access Denied', 403))).toBe(false);
    expect(isRefusedCredentials({})).toBe(false);
    expect(isRefusedCredentials(undefined)).toBe(false);
    expect(isRefusedCredentials(null)).toBe(false);
  });

  it('looks four causes deep and no deeper, and only through Errors', () => {
    expect(isRefusedCredentials(wrapped(awsError('ExpiredToken'), 4))).toBe(true);
    expect(isRefusedCredentials(wrapped(awsError('ExpiredToken'), 5))).toBe(false);
    expect(isRefusedCredentials({ cause: awsError('ExpiredToken') })).toBe(false);
  });
});

describe('describeError', () => {
  it("puts the SDK error's name before a message that does not start with it", () => {
    expect(describeError(awsError('AccessDenied', 'Access Denied'))).toBe('AccessDenied: Access Denied');
    expect(describeError(awsError('Oops', 'it went Oops'))).toBe('Oops: it went Oops');
    expect(
      describeError(Object.assign(new Error('Please reduce your request rate.'), { Code: 'SlowDown' })),
    ).toBe('SlowDown: Please reduce your request rate.');
  });

  it('keeps the message alone for a plain Error, a message already naming the error, or a name that is not a string', () => {
    expect(describeError(new Error('plain'))).toBe('plain');
    expect(describeError(awsError('TimeoutError', 'TimeoutError: socket hang up'))).toBe(
      'TimeoutError: socket hang up',
    );
    expect(describeError(awsError('', 'nameless'))).toBe('nameless');
    expect(describeError(Object.assign(new Error('numbered'), { name: 42 }))).toBe('numbered');
  });

  it('names our own errors by their class', () => {
    expect(describeError(new LeaseLostError('lease taken over'))).toBe('LeaseLostError: lease taken over');
  });

  it('turns anything else into a string', () => {
    expect(describeError('just text')).toBe('just text');
    expect(describeError(42)).toBe('42');
  });
});

describe('SyncError and its kinds', () => {
  it('is named after its class and keeps its cause', () => {
    const cause = new Error('sdk');
    const error = new IntegrityError('bytes differ', { cause });
    expect(error.name).toBe('IntegrityError');
    expect(error.message).toBe('bytes differ');
    expect(error.cause).toBe(cause);
    expect(error).toBeInstanceOf(ObjectCopyError);
    expect(new SyncError('x').name).toBe('SyncError');
  });

  it('makes a failed copy retryable unless told otherwise', () => {
    expect(new ObjectCopyError('x').retryable).toBe(true);
    expect(new SourceVanishedError('x').retryable).toBe(true);
    expect(new ObjectCopyError('x', { retryable: false }).retryable).toBe(false);
  });

  it('lists its message as the only problem of a validation error given none', () => {
    expect(new JobValidationError('bad job').problems).toEqual(['bad job']);
    expect(new JobValidationError('bad', { problems: ['a', 'b'] }).problems).toEqual(['a', 'b']);
  });

  it('names the table and operation of a state store failure', () => {
    const error = new StateStoreError('GetItem failed', { table: 'sync-state', operation: 'GetItem' });
    expect(error).toMatchObject({ table: 'sync-state', operation: 'GetItem', name: 'StateStoreError' });
  });
});

describe('isSlowDown', () => {
  const slowDown = Object.assign(new Error('Please reduce your request rate.'), {
    name: 'SlowDown',
    $metadata: { httpStatusCode: 503 },
  });
  it.each([
    ['S3 SlowDown', slowDown, true],
    ['any 503', Object.assign(new Error('unavailable'), { $metadata: { httpStatusCode: 503 } }), true],
    ['SlowDown as the cause of a copy error', new Error('upload failed', { cause: slowDown }), true],
    ['two causes deep', new Error('a', { cause: new Error('b', { cause: slowDown }) }), true],
    ['a 500', Object.assign(new Error('internal'), { $metadata: { httpStatusCode: 500 } }), false],
    ['AccessDenied', Object.assign(new Error('denied'), { name: 'AccessDenied' }), false],
    ['not an error', 'SlowDown', false],
    ['undefined', undefined, false],
  ])('%s: %s', (_what, error, expected) => {
    expect(isSlowDown(error)).toBe(expected);
  });
});
