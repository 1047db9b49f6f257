/**
 * The sandbox's fault proxy, over real HTTP in front of moto (auth enforced) and DynamoDB Local: it forwards
 * signed requests untouched, and each fault does what it says.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { sandboxS3 } from '../../sandbox/clients.js';
import { describeS3Request } from '../../sandbox/fault-plan.js';
import { CONTROL_PATH, type FaultProxy, type FaultRule, startFaultProxy } from '../../sandbox/fault-proxy.js';

const sandbox = inject('sandbox');
const bucket = sandbox.accountA.bucket;
const prefix = `fault-proxy-${randomBytes(3).toString('hex')}/`;
const BODY = randomBytes(256 * 1024);
let proxy: FaultProxy;

/** One attempt per request, so the test sees the fault itself rather than the SDK's retry of it. */
function s3ThroughProxy(credentials = sandbox.accountA.admin, requestTimeout?: number): S3Client {
  return new S3Client({
    region: sandbox.region,
    endpoint: proxy.endpoints.s3,
    forcePathStyle: true,
    credentials: { ...credentials },
    maxAttempts: 1,
    // Else the SDK itself refuses a body that fails the stored CRC32: this test checks the bytes sent.
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(requestTimeout && {
      requestHandler: new NodeHttpHandler({ requestTimeout, throwOnRequestTimeout: true }),
    }),
  });
}

const direct = sandboxS3(sandbox, sandbox.accountA.admin);

async function getThroughProxy(key: string, s3 = s3ThroughProxy()): Promise<Buffer> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${key}` }));
  return Buffer.from(await (object.Body?.transformToByteArray() ?? new Uint8Array()));
}

beforeAll(async () => {
  proxy = await startFaultProxy(sandbox);
  for (const key of ['a', 'b']) {
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${key}`, Body: BODY }));
  }
});
afterAll(() => proxy?.stop());
beforeEach(() => proxy.reset());

const only = (rule: Omit<FaultRule, 'key'>, key = 'a'): FaultRule => ({ key: `^${prefix}${key}$`, ...rule });

describe('fault proxy', () => {
  it('forwards SigV4-signed requests with their Host header, over kept-alive connections', async () => {
    const s3 = s3ThroughProxy();
    for (let i = 0; i < 3; i += 1) expect((await getThroughProxy('a', s3)).equals(BODY)).toBe(true);
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}put`, Body: 'x', ContentType: 'a/b' }),
    );
    const head = await direct.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}put` }));
    expect(head.ContentType).toBe('a/b');
    expect(proxy.counts().requests).toMatchObject({ 's3:GetObject': 3, 's3:PutObject': 1 });
    expect(proxy.counts().total).toBe(0);
  });

  it('answers 503 SlowDown as S3 XML, only for the matching operation and key, at most `count` times', async () => {
    proxy.setRules([only({ operation: 'GetObject', count: 1, fault: { type: 'slow-down' } })]);
    await expect(getThroughProxy('b')).resolves.toHaveLength(BODY.length);
    await expect(getThroughProxy('a')).rejects.toMatchObject({
      name: 'SlowDown',
      $metadata: { httpStatusCode: 503 },
    });
    await expect(getThroughProxy('a')).resolves.toHaveLength(BODY.length);
    expect(proxy.counts().injected).toEqual({ 'slow-down': 1 });
  });

  it('answers 500 InternalError after the write landed', async () => {
    proxy.setRules([
      only({ operation: 'PutObject', fault: { type: 'internal-error', afterForwarding: true } }, 'landed'),
    ]);
    const put = s3ThroughProxy().send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}landed`, Body: 'yes' }),
    );
    await expect(put).rejects.toMatchObject({ name: 'InternalError', $metadata: { httpStatusCode: 500 } });
    const head = await direct.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}landed` }));
    expect(head.ContentLength).toBe(3);
  });

  it('answers 500 InternalError without forwarding by default', async () => {
    proxy.setRules([only({ operation: 'PutObject', fault: { type: 'internal-error' } }, 'never')]);
    const put = s3ThroughProxy().send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}never`, Body: 'no' }),
    );
    await expect(put).rejects.toMatchObject({ name: 'InternalError' });
    await expect(
      direct.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}never` })),
    ).rejects.toMatchObject({
      name: 'NotFound',
    });
  });

  it('resets the connection mid-body', async () => {
    proxy.setRules([only({ operation: 'GetObject', fault: { type: 'reset', atFraction: 0.5 } })]);
    await expect(getThroughProxy('a')).rejects.toThrow();
    expect(proxy.counts().injected).toEqual({ reset: 1 });
  });

  it('cuts the body short under the full Content-Length, then closes the socket', async () => {
    proxy.setRules([
      only({ operation: 'GetObject', fault: { type: 'truncate', contentLength: 'declared' } }),
    ]);
    await expect(getThroughProxy('a')).rejects.toThrow();
  });

  it('cuts the body short under a rewritten, matching Content-Length: a clean, short response', async () => {
    proxy.setRules([
      only({
        operation: 'GetObject',
        fault: { type: 'truncate', atFraction: 0.25, contentLength: 'matching' },
      }),
    ]);
    const body = await getThroughProxy('a');
    expect(body.equals(BODY.subarray(0, BODY.length / 4))).toBe(true);
  });

  it('corrupts one key: same length, different bytes, other keys intact', async () => {
    proxy.setRules([only({ operation: 'GetObject', fault: { type: 'corrupt' } })]);
    const corrupted = await getThroughProxy('a');
    expect(corrupted).toHaveLength(BODY.length);
    expect(corrupted.equals(BODY)).toBe(false);
    expect((await getThroughProxy('b')).equals(BODY)).toBe(true);
  });

  it('adds latency and still forwards', async () => {
    proxy.setRules([only({ operation: 'GetObject', fault: { type: 'latency', ms: 50 } })]);
    expect((await getThroughProxy('a')).equals(BODY)).toBe(true);
    expect(proxy.counts().injected).toEqual({ latency: 1 });
  });

  it('stalls mid-body: headers and half the body, then nothing until reset() frees the connection', async () => {
    proxy.setRules([only({ operation: 'GetObject', fault: { type: 'stall' } })]);
    const object = await s3ThroughProxy().send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}a` }));
    const body = object.Body as NodeJS.ReadableStream;
    let received = 0;
    let ended = false;
    body.on('end', () => {
      ended = true;
    });
    const closed = new Promise((resolve) => body.on('error', resolve).on('close', resolve));
    await new Promise<void>((resolve) =>
      body.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= BODY.length / 2) resolve();
      }),
    );
    // A stalled response would have ended by now had the proxy sent the rest; it must still be open.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect({ received, ended }).toEqual({ received: BODY.length / 2, ended: false });
    await proxy.reset();
    await closed;
    expect(ended).toBe(false);
    expect((await getThroughProxy('a')).equals(BODY)).toBe(true);
  });

  it('hangs: accepts a request and never answers, until the client gives up; other keys pass', async () => {
    proxy.setRules([only({ operation: 'GetObject', fault: { type: 'hang' } })]);
    await expect(getThroughProxy('a', s3ThroughProxy(sandbox.accountA.admin, 500))).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect((await getThroughProxy('b')).equals(BODY)).toBe(true);
    expect(proxy.counts()).toMatchObject({ injected: { hang: 1 }, requests: { 's3:GetObject': 2 } });
  });

  it('throttles DynamoDB with ProvisionedThroughputExceededException, then lets requests through', async () => {
    const dynamo = new DynamoDBClient({
      region: sandbox.region,
      endpoint: proxy.endpoints.dynamodb,
      credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
    proxy.setRules([
      { service: 'dynamodb', operation: 'DescribeTable', count: 1, fault: { type: 'throttle' } },
    ]);
    const describeTable = () =>
      dynamo.send(new DescribeTableCommand({ TableName: sandbox.accountB.tableName }));
    await expect(describeTable()).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    await expect(describeTable()).resolves.toMatchObject({
      Table: { TableName: sandbox.accountB.tableName },
    });
  });

  it('drops DynamoDB connections after N requests: unreachable mid-run', async () => {
    const dynamo = new DynamoDBClient({
      region: sandbox.region,
      endpoint: proxy.endpoints.dynamodb,
      credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
    proxy.setRules([{ service: 'dynamodb', skip: 2, fault: { type: 'drop' } }]);
    const describeTable = () =>
      dynamo.send(new DescribeTableCommand({ TableName: sandbox.accountB.tableName }));
    await describeTable();
    await describeTable();
    await expect(describeTable()).rejects.toThrow(/ECONNRESET|socket hang up/);
  });

  it('expires a session token for good once ExpiredToken is injected; a new session works', async () => {
    const sts = new STSClient({
      region: sandbox.region,
      endpoint: proxy.endpoints.sts,
      credentials: { ...sandbox.accountB.syncer },
    });
    const assume = async () => {
      const { Credentials } = await sts.send(
        new AssumeRoleCommand({
          RoleArn: sandbox.accountA.roleArn,
          ExternalId: sandbox.accountA.externalId,
          RoleSessionName: 'fault-proxy-test',
        }),
      );
      return {
        accessKeyId: Credentials?.AccessKeyId ?? '',
        secretAccessKey: Credentials?.SecretAccessKey ?? '',
        sessionToken: Credentials?.SessionToken ?? '',
      };
    };
    const first = s3ThroughProxy(await assume());
    expect((await getThroughProxy('a', first)).equals(BODY)).toBe(true);
    proxy.setRules([{ service: 's3', operation: 'GetObject', count: 1, fault: { type: 'expired-token' } }]);
    await expect(getThroughProxy('a', first)).rejects.toMatchObject({ name: 'ExpiredToken' });
    await expect(getThroughProxy('b', first)).rejects.toMatchObject({ name: 'ExpiredToken' });
    expect((await getThroughProxy('a', s3ThroughProxy(await assume()))).equals(BODY)).toBe(true);
    expect(proxy.counts().injected).toEqual({ 'expired-token': 2 });
  });

  it('makes STS unreachable (connection refused) and reachable again on the same endpoint', async () => {
    const sts = new STSClient({
      region: sandbox.region,
      endpoint: proxy.endpoints.sts,
      credentials: { ...sandbox.accountB.syncer },
      maxAttempts: 1,
    });
    await proxy.setReachable('sts', false);
    await expect(sts.send(new GetCallerIdentityCommand({}))).rejects.toThrow(/ECONNREFUSED/);
    await proxy.setReachable('sts', true);
    await expect(sts.send(new GetCallerIdentityCommand({}))).resolves.toMatchObject({
      Account: sandbox.accountB.id,
    });
  });

  it('replays the same faults for the same seed and requests', async () => {
    const pattern = async (seed: number) => {
      proxy.setRules([only({ operation: 'HeadObject', rate: 0.5, fault: { type: 'slow-down' } })], { seed });
      const outcomes: boolean[] = [];
      const s3 = s3ThroughProxy();
      for (let i = 0; i < 16; i += 1) {
        const head = s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}a` }));
        outcomes.push(await head.then(() => true).catch(() => false));
      }
      return outcomes;
    };
    const first = await pattern(7);
    expect(await pattern(7)).toEqual(first);
    expect(first).toContain(true);
    expect(first).toContain(false);
  });

  it('takes rules and reports counts over its control API', async () => {
    const control = `${proxy.endpoints.s3}${CONTROL_PATH}`;
    const rules = [only({ operation: 'GetObject', fault: { type: 'slow-down' } })];
    expect((await fetch(control, { method: 'PUT', body: JSON.stringify({ seed: 3, rules }) })).status).toBe(
      200,
    );
    await expect(getThroughProxy('a')).rejects.toMatchObject({ name: 'SlowDown' });
    expect(await (await fetch(control)).json()).toMatchObject({ injected: { 'slow-down': 1 }, total: 1 });
    await fetch(control, { method: 'DELETE' });
    await expect(getThroughProxy('a')).resolves.toHaveLength(BODY.length);
  });

  it('answers 400 RequestTimeout, as S3 does, when an upload body stops short of its Content-Length', async () => {
    const strict = await startFaultProxy(sandbox, { s3RequestIdleTimeoutMs: 200 });
    try {
      const { hostname, port } = new URL(strict.endpoints.s3);
      const answer = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
        const put = request({
          hostname,
          port,
          method: 'PUT',
          path: `/${bucket}/${prefix}short`,
          headers: { 'content-length': 100 },
        });
        put.on('response', async (response) => {
          let body = '';
          for await (const chunk of response) body += chunk;
          resolve({ status: response.statusCode, body });
        });
        put.on('error', reject);
        put.write('only ten b');
      });
      expect(answer.status).toBe(400);
      expect(answer.body).toContain('<Code>RequestTimeout</Code>');
      expect(strict.counts().injected).toEqual({ 'request-timeout': 1 });
    } finally {
      await strict.stop();
    }
  });

  it('names S3 operations the way rules refer to them', () => {
    const name = (method: string, path: string) =>
      describeS3Request(method, new URL(path, 'http://proxy')).operation;
    expect(name('GET', '/b/k?x-id=GetObject')).toBe('GetObject');
    expect(name('GET', '/b?list-type=2&prefix=p')).toBe('ListObjectsV2');
    expect(name('POST', '/b/k?uploads')).toBe('CreateMultipartUpload');
    expect(name('GET', '/b?uploads')).toBe('ListMultipartUploads');
    expect(name('POST', '/b/k?uploadId=1')).toBe('CompleteMultipartUpload');
    expect(name('DELETE', '/b/k?uploadId=1')).toBe('AbortMultipartUpload');
    expect(describeS3Request('GET', new URL('/b/a%2Fb%20c?x-id=GetObject', 'http://p')).key).toBe('a/b c');
  });
});
