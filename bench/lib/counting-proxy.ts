import { once } from 'node:events';
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';

/** S3 requests by type, as the benchmark reports them. */
export interface RequestCounts {
  /** ListObjects(V2): GET on a bucket, without a sub-resource other than list-type. */
  LIST: number;
  /** GetObject, ranged or whole. */
  GET: number;
  /** PutObject and UploadPart. */
  PUT: number;
  /** CreateMultipartUpload, CompleteMultipartUpload, DeleteObjects and other POSTs. */
  POST: number;
  /** HeadObject and HeadBucket. */
  HEAD: number;
  DELETE: number;
  /** Anything else: bucket sub-resources such as ?location. */
  OTHER: number;
  /** Bytes of request and response bodies that passed through. */
  bytesIn: number;
  bytesOut: number;
}

export const REQUEST_TYPES = ['LIST', 'GET', 'PUT', 'POST', 'HEAD', 'DELETE', 'OTHER'] as const;

const emptyCounts = (): RequestCounts => ({
  LIST: 0,
  GET: 0,
  PUT: 0,
  POST: 0,
  HEAD: 0,
  DELETE: 0,
  OTHER: 0,
  bytesIn: 0,
  bytesOut: 0,
});

/** Sorts one S3 request (path-style) into the benchmark's request types. */
export function classifyRequest(method: string, url: string): (typeof REQUEST_TYPES)[number] {
  const [path = '/', query = ''] = url.split('?', 2);
  // Path-style: /bucket is the bucket, /bucket/key... an object.
  const onBucket = path.replace(/^\/+/, '').replace(/\/$/, '').split('/').length === 1;
  const params = new URLSearchParams(query);
  switch (method) {
    case 'GET':
      if (!onBucket) return 'GET';
      // A bare GET on a bucket is ListObjects (v1); sub-resources like ?location or ?versioning are not.
      return [...params.keys()].every((name) => LIST_PARAMETERS.has(name)) ? 'LIST' : 'OTHER';
    case 'PUT':
      return onBucket ? 'OTHER' : 'PUT';
    case 'POST':
    case 'HEAD':
    case 'DELETE':
      return method;
    default:
      return 'OTHER';
  }
}

const LIST_PARAMETERS = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'max-keys',
  'marker',
  'continuation-token',
  'start-after',
  'encoding-type',
  'fetch-owner',
]);

/**
 * Drops the hop-by-hop headers (RFC 9110 §7.6.1) from a flat rawHeaders list, as a proxy must. moto's
 * werkzeug server answers every request with "Connection: close"; passed on, it would make each tool open
 * a new connection per request, which real S3, keeping connections alive, never asks for.
 */
export function endToEndHeaders(rawHeaders: string[]): string[] {
  const kept: string[] = [];
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const name = rawHeaders[index] ?? '';
    if (!HOP_BY_HOP.has(name.toLowerCase())) kept.push(name, rawHeaders[index + 1] ?? '');
  }
  return kept;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection']);

/** A running counting proxy. */
export interface CountingProxy {
  /** http://127.0.0.1:<port>: point S3 clients here instead of at moto. */
  endpoint: string;
  /** Counts since the last reset. */
  counts(): RequestCounts;
  reset(): void;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of S3 (moto) that counts requests by type and passes everything through
 * unchanged: headers as sent (SigV4 signs Host, so it is not rewritten), bodies streamed both ways
 * (aws-chunked uploads included, nothing buffered), keep-alive towards the tools.
 */
export async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let counts = emptyCounts();

  const forward = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const method = incoming.method ?? 'GET';
    counts[classifyRequest(method, incoming.url ?? '/')] += 1;
    const upstreamRequest = request({
      host: target.hostname,
      port: target.port,
      method,
      path: incoming.url,
      // The flat rawHeaders list keeps case, order and repeats; SigV4 signed some of them.
      headers: incoming.rawHeaders,
      agent,
      // rawHeaders keep the client's Host header; setHost would add a second one.
      setHost: false,
    });
    incoming.on('data', (chunk: Buffer) => {
      counts.bytesIn += chunk.length;
    });
    upstreamRequest.on('response', (upstreamResponse) => {
      outgoing.writeHead(upstreamResponse.statusCode ?? 502, endToEndHeaders(upstreamResponse.rawHeaders));
      upstreamResponse.on('data', (chunk: Buffer) => {
        counts.bytesOut += chunk.length;
      });
      pipeline(upstreamResponse, outgoing, () => {});
    });
    upstreamRequest.on('error', (error) => {
      if (!outgoing.headersSent) {
        outgoing.writeHead(502, { 'content-type': 'text/plain' });
        outgoing.end(`counting proxy: upstream failed: ${error.message}`);
      } else {
        outgoing.destroy(error);
      }
    });
    pipeline(incoming, upstreamRequest, () => {});
  };

  // No 'checkContinue' listener: Node answers "Expect: 100-continue" itself and the body then streams on.
  const server = createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: 0 }, forward);
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    reset: () => {
      counts = emptyCounts();
    },
    close: async () => {
      server.closeAllConnections();
      server.close();
      agent.destroy();
    },
  };
}
