import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { CreateRoleCommand } from '@aws-sdk/client-iam';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, type Credentials } from '@aws-sdk/client-sts';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { sandboxEvents, sandboxIam, sandboxS3, sandboxSts } from '../../sandbox/clients.js';
import { receiveRunEvent } from '../../sandbox/run-events.js';

const sandbox = inject('sandbox');
const { accountA, accountB } = sandbox;
const syncerSts = sandboxSts(sandbox, accountB.syncer);
const accessDenied = { name: 'AccessDenied', $metadata: expect.objectContaining({ httpStatusCode: 403 }) };

function assumeSourceRole(externalId: string | undefined, roleArn = accountA.roleArn): Promise<Credentials> {
  return syncerSts
    .send(
      new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'sandbox-test', ExternalId: externalId }),
    )
    .then(({ Credentials }) => Credentials ?? expect.fail('AssumeRole returned no credentials'));
}

function s3As(credentials: Credentials) {
  return sandboxS3(sandbox, {
    accessKeyId: credentials.AccessKeyId ?? '',
    secretAccessKey: credentials.SecretAccessKey ?? '',
    sessionToken: credentials.SessionToken,
  });
}

describe('local two-account sandbox', () => {
  it("refuses AccountB's syncer listing AccountA's bucket with its own keys", async () => {
    const syncerS3 = sandboxS3(sandbox, accountB.syncer);

    await expect(syncerS3.send(new ListObjectsV2Command({ Bucket: accountA.bucket }))).rejects.toMatchObject(
      accessDenied,
    );
  });

  it('lets the syncer list and read the source bucket through the role assumed with the right ExternalId', async () => {
    const source = s3As(await assumeSourceRole(accountA.externalId));

    // Other test files fill the shared bucket with prefixed keys that sort before "test": list from there.
    const listing = await source.send(
      new ListObjectsV2Command({ Bucket: accountA.bucket, Prefix: 'test', Delimiter: '/' }),
    );
    const object = await source.send(new GetObjectCommand({ Bucket: accountA.bucket, Key: 'test.txt' }));

    expect(listing.Contents?.map(({ Key }) => Key)).toEqual(
      expect.arrayContaining(['test.txt', 'test2.txt']),
    );
    expect(await object.Body?.transformToString()).toBe('hello from AccountA\n');
  });

  it('refuses writes to the source bucket through the read-only role', async () => {
    const source = s3As(await assumeSourceRole(accountA.externalId));

    await expect(
      source.send(new PutObjectCommand({ Bucket: accountA.bucket, Key: 'not-allowed.txt', Body: 'x' })),
    ).rejects.toMatchObject(accessDenied);
  });

  it('refuses AssumeRole with a wrong ExternalId, naming the caller and the role', async () => {
    await expect(assumeSourceRole('not-the-external-id')).rejects.toMatchObject({
      ...accessDenied,
      message: `User: arn:aws:iam::${accountB.id}:user/syncer is not authorized to perform: sts:AssumeRole on resource: ${accountA.roleArn}`,
    });
  });

  it('refuses AssumeRole without an ExternalId when the trust policy requires one', async () => {
    await expect(assumeSourceRole(undefined)).rejects.toMatchObject(accessDenied);
  });

  it('refuses AssumeRole into a role of AccountA that does not trust AccountB', async () => {
    const { Role } = await sandboxIam(sandbox, accountA.admin).send(
      new CreateRoleCommand({
        RoleName: 'TrustsOnlyItsOwnAccount',
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: `arn:aws:iam::${accountA.id}:root` },
              Action: 'sts:AssumeRole',
            },
          ],
        }),
      }),
    );

    await expect(assumeSourceRole(accountA.externalId, Role?.Arn)).rejects.toMatchObject(accessDenied);
  });

  it('refuses AssumeRole into a role that does not exist', async () => {
    await expect(
      assumeSourceRole(accountA.externalId, `arn:aws:iam::${accountA.id}:role/NoSuchRole`),
    ).rejects.toMatchObject(accessDenied);
  });

  it('lets the syncer write its destination bucket and create more accountb-* buckets', async () => {
    const syncerS3 = sandboxS3(sandbox, accountB.syncer);
    const extraBucket = 'accountb-sandbox-test-extra';

    await syncerS3.send(
      new PutObjectCommand({ Bucket: accountB.destinationBucket, Key: 'probe.txt', Body: 'ok' }),
    );
    await syncerS3.send(new CreateBucketCommand({ Bucket: extraBucket }));
    const object = await syncerS3.send(
      new GetObjectCommand({ Bucket: accountB.destinationBucket, Key: 'probe.txt' }),
    );

    expect(await object.Body?.transformToString()).toBe('ok');
  });

  it('accepts signed requests whose keys, prefixes and delimiters hold / and non-ASCII characters', async () => {
    const syncerS3 = sandboxS3(sandbox, accountB.syncer);
    const key = 'incoming/ü 😀+~.txt';

    await syncerS3.send(new PutObjectCommand({ Bucket: accountB.destinationBucket, Key: key, Body: 'ü' }));
    const listing = await syncerS3.send(
      new ListObjectsV2Command({ Bucket: accountB.destinationBucket, Prefix: 'incoming/ü', Delimiter: '/' }),
    );

    expect(listing.Contents?.map(({ Key }) => Key)).toEqual([key]);
  });

  it('serves byte ranges as S3 does, also from an object spilled to disk (moto_server.py reads only the range)', async () => {
    const syncerS3 = sandboxS3(sandbox, accountB.syncer);
    const key = 'ranges/over-the-in-memory-buffer.bin';
    // Over moto's 5 MiB in-memory buffer, so the object lives in a temporary file.
    const body = randomBytes(6 * 1024 * 1024 + 7);
    await syncerS3.send(new PutObjectCommand({ Bucket: accountB.destinationBucket, Key: key, Body: body }));
    const get = async (range: string) => {
      const response = await syncerS3.send(
        new GetObjectCommand({ Bucket: accountB.destinationBucket, Key: key, Range: range }),
      );
      return {
        range: response.ContentRange,
        bytes: Buffer.from((await response.Body?.transformToByteArray()) ?? []),
      };
    };
    const size = body.length;

    expect(await get('bytes=0-99')).toEqual({ range: `bytes 0-99/${size}`, bytes: body.subarray(0, 100) });
    expect(await get('bytes=5242000-5243999')).toEqual({
      range: `bytes 5242000-5243999/${size}`,
      bytes: body.subarray(5242000, 5244000),
    });
    expect(await get(`bytes=${size - 10}-`)).toEqual({
      range: `bytes ${size - 10}-${size - 1}/${size}`,
      bytes: body.subarray(size - 10),
    });
    expect(await get('bytes=-5')).toEqual({
      range: `bytes ${size - 5}-${size - 1}/${size}`,
      bytes: body.subarray(size - 5),
    });
    expect(await get(`bytes=${size - 3}-${size + 100}`)).toMatchObject({ bytes: body.subarray(size - 3) });
    // Several ranges in one request are answered with the whole object, as moto always has.
    expect((await get('bytes=0-1,5-6')).bytes.equals(body)).toBe(true);
    await expect(get(`bytes=${size}-`)).rejects.toMatchObject({ name: 'InvalidRange' });
  });

  it('lets exactly one of many racing If-None-Match PUTs of one key write it, as S3 does (412 for the rest)', async () => {
    const syncerS3 = sandboxS3(sandbox, accountB.syncer);
    const racers = 16;
    // Bodies of 1 MiB: moto stores a body between its check for the key and its insert, so two requests
    // that both checked before either inserted would both write it, were the two not one step.
    const bodies = Array.from({ length: racers }, () => randomBytes(1024 * 1024));
    for (const round of [1, 2, 3, 4]) {
      const key = `conditional-race/${Date.now()}-${round}.bin`;
      const answers = await Promise.allSettled(
        bodies.map((Body) =>
          syncerS3.send(
            new PutObjectCommand({ Bucket: accountB.destinationBucket, Key: key, Body, IfNoneMatch: '*' }),
          ),
        ),
      );
      const won = answers.flatMap((answer, index) => (answer.status === 'fulfilled' ? [index] : []));
      const refused = answers.flatMap((answer) =>
        answer.status === 'rejected' ? [(answer.reason as { name?: string }).name] : [],
      );

      expect(won, `round ${round}`).toHaveLength(1);
      expect(refused).toEqual(Array(racers - 1).fill('PreconditionFailed'));
      const stored = await syncerS3.send(
        new GetObjectCommand({ Bucket: accountB.destinationBucket, Key: key }),
      );
      const bytes = Buffer.from((await stored.Body?.transformToByteArray()) ?? []);
      expect(bytes.equals(bodies[won[0] ?? -1] ?? Buffer.alloc(0))).toBe(true);
    }
  });

  it('lets exactly one of many racing If-None-Match completions of one key write it, as S3 does (412 for the rest)', async () => {
    const syncerS3 = sandboxS3(sandbox, accountB.syncer);
    const Bucket = accountB.destinationBucket;
    const racers = 8;
    for (const round of [1, 2]) {
      const Key = `conditional-race/${Date.now()}-${round}.mpu`;
      // One upload per racer, as two deliveries of one copy task each open their own.
      const uploads = await Promise.all(
        Array.from({ length: racers }, async () => {
          const { UploadId } = await syncerS3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
          const Body = randomBytes(1024 * 1024);
          const { ETag } = await syncerS3.send(
            new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body }),
          );
          return { UploadId, ETag, Body };
        }),
      );
      const answers = await Promise.allSettled(
        uploads.map(({ UploadId, ETag }) =>
          syncerS3.send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key,
              UploadId,
              IfNoneMatch: '*',
              MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] },
            }),
          ),
        ),
      );
      const won = answers.flatMap((answer, index) => (answer.status === 'fulfilled' ? [index] : []));
      const refused = answers.flatMap((answer) =>
        answer.status === 'rejected' ? [(answer.reason as { name?: string }).name] : [],
      );

      expect(won, `round ${round}`).toHaveLength(1);
      expect(refused).toEqual(Array(racers - 1).fill('PreconditionFailed'));
      const stored = await syncerS3.send(new GetObjectCommand({ Bucket, Key }));
      const bytes = Buffer.from((await stored.Body?.transformToByteArray()) ?? []);
      expect(bytes.equals(uploads[won[0] ?? -1]?.Body ?? Buffer.alloc(0))).toBe(true);
    }
  });

  it('refuses a request signed with the wrong secret key', async () => {
    const forged = sandboxS3(sandbox, { ...accountB.syncer, secretAccessKey: 'not-the-secret' });

    await expect(
      forged.send(new ListObjectsV2Command({ Bucket: accountB.destinationBucket, Prefix: 'incoming/' })),
    ).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
  });

  it("says a refusal came from the caller's own policy, naming the resource, as AWS does", async () => {
    const roleArn = `arn:aws:iam::${accountA.id}:role/NotInTheSyncersPolicy`;

    await expect(assumeSourceRole(accountA.externalId, roleArn)).rejects.toMatchObject({
      ...accessDenied,
      message: `User: arn:aws:iam::${accountB.id}:user/syncer is not authorized to perform: sts:AssumeRole on resource: ${roleArn} because no identity-based policy allows the sts:AssumeRole action`,
    });
  });
});

describe('local sandbox run events', () => {
  const runEvent = (EventBusName: string, runId: string) =>
    new PutEventsCommand({
      Entries: [
        {
          EventBusName,
          Source: 'cross-account-sync',
          DetailType: 'Sync Run Completed',
          Detail: JSON.stringify({ runId }),
        },
      ],
    });

  it("delivers the syncer's events on the run-event bus to the events queue", async () => {
    const runId = `sandbox-test-${Date.now()}`;
    const put = await sandboxEvents(sandbox, accountB.syncer).send(runEvent(accountB.eventBusName, runId));
    // The queue is shared with every earlier test's runs: drain it until this event turns up.
    const event = await receiveRunEvent(sandbox, runId);

    expect(put.FailedEntryCount ?? 0).toBe(0);
    expect([event]).toContainEqual(
      expect.objectContaining({
        source: 'cross-account-sync',
        'detail-type': 'Sync Run Completed',
        detail: { runId },
      }),
    );
  });

  it('refuses the syncer PutEvents on any other bus, as its policy names only the run-event bus', async () => {
    await expect(
      sandboxEvents(sandbox, accountB.syncer).send(runEvent('default', 'not-allowed')),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
      $metadata: expect.objectContaining({ httpStatusCode: 403 }),
    });
  });
});

/** One request on `agent`: its status, its body, its headers, and whether it went out on a reused socket. */
function exchange(
  agent: Agent,
  url: string,
  body?: { bytes: Buffer; chunked: boolean },
): Promise<{ status?: number; text: string; connection?: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const headers = body?.chunked
      ? { 'transfer-encoding': 'chunked' }
      : { 'content-length': body?.bytes.length ?? 0 };
    const req = httpRequest(url, { agent, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          text: Buffer.concat(chunks).toString(),
          connection: res.headers.connection,
          reused: req.reusedSocket,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body?.bytes);
  });
}

describe('local sandbox connections', () => {
  // moto answered every request with Connection: close, so each paid a new TCP connect, which was the
  // largest CPU entry of every tool in the benchmark; S3 keeps connections alive.
  it('keeps a connection alive across requests, also after a request body the server did not read', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    onTestFinished(() => agent.destroy());
    // /_sandbox/s3-requests answers without reading a body: what is left unread must not become the next request.
    const url = `${sandbox.motoEndpoint}/_sandbox/s3-requests`;

    const first = await exchange(agent, url, { bytes: randomBytes(1 << 20), chunked: false });
    const second = await exchange(agent, url, { bytes: randomBytes(300_000), chunked: true });
    const third = await exchange(agent, url);

    expect(first).toMatchObject({ status: 200, reused: false });
    expect(first.connection).not.toBe('close');
    expect(second).toMatchObject({ status: 200, reused: true });
    expect(third).toMatchObject({ status: 200, reused: true });
    expect(JSON.parse(third.text)).toHaveProperty('GET');
  });
});
