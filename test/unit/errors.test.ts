import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import { AssumeRoleError, networkFailure } from '../../functions/core/errors.js';

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
