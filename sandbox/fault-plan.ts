/**
 * The fault plan: what a request is (service, operation, key), and which rule picks it, as often as the
 * rule says and in an order its seed replays.
 */
import type { IncomingMessage } from 'node:http';
import { SandboxError } from './errors.js';
import type { Fault, FaultRule, ProxiedService } from './fault-proxy.js';
import { readBody } from './fault-server.js';

/** What a rule matches on, read from the request (STS's form body is read whole: it is small). */
export interface RequestTarget {
  operation: string;
  /** The S3 object key, decoded; the path elsewhere. */
  key: string;
  /** The request body when it had to be read to classify the request. */
  body?: Buffer;
}

/** The request's operation and key, read from its headers, path and query (or STS's form body). */
export async function describeRequest(service: ProxiedService, req: IncomingMessage): Promise<RequestTarget> {
  const url = new URL(req.url ?? '/', 'http://proxy');
  const amzTarget = req.headers['x-amz-target'];
  if (typeof amzTarget === 'string') {
    return { operation: amzTarget.slice(amzTarget.lastIndexOf('.') + 1), key: url.pathname };
  }
  if (url.pathname === '/' && req.method === 'POST') {
    // Query protocol (STS, IAM): the operation is the form body's Action.
    const body = await readBody(req);
    const action = new URLSearchParams(body.toString('utf8')).get('Action') ?? 'unknown';
    return { operation: action, key: url.pathname, body };
  }
  if (service === 'dynamodb') return { operation: 'unknown', key: url.pathname };
  return describeS3Request(req.method ?? 'GET', url);
}

/** Path-style S3: `/bucket/key?query`. The SDK names most operations in `x-id`; the rest by shape. */
export function describeS3Request(method: string, url: URL): RequestTarget {
  const [, , ...rest] = url.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const query = url.searchParams;
  const named = query.get('x-id');
  if (named) return { operation: named, key };
  const onObject = key !== '';
  const operation = (() => {
    if (query.get('list-type') === '2') return 'ListObjectsV2';
    if (query.has('versions')) return 'ListObjectVersions';
    if (query.has('uploads')) return onObject ? 'CreateMultipartUpload' : 'ListMultipartUploads';
    if (query.has('uploadId')) {
      if (method === 'POST') return 'CompleteMultipartUpload';
      if (method === 'GET') return 'ListParts';
      if (method === 'DELETE') return 'AbortMultipartUpload';
      if (method === 'PUT') return 'UploadPart';
    }
    const suffix = onObject ? 'Object' : 'Bucket';
    if (method === 'HEAD') return `Head${suffix}`;
    if (method === 'GET') return onObject ? 'GetObject' : 'ListObjects';
    if (method === 'PUT') return onObject ? 'PutObject' : 'CreateBucket';
    if (method === 'DELETE') return `Delete${suffix}`;
    return `${method} ${suffix}`;
  })();
  return { operation, key };
}

/** A rule in force, with its own seeded generator and tallies. */
export interface ActiveRule {
  name: string;
  fault: Fault;
  picks(service: ProxiedService, target: RequestTarget): boolean;
}

/** A rule put in force: `picks` decides, request by request, whether it injects its fault. */
export function activate(rule: FaultRule, seed: number): ActiveRule {
  const services = rule.service === undefined ? undefined : [rule.service].flat();
  const operations = rule.operation === undefined ? undefined : [rule.operation].flat();
  const key = rule.key === undefined ? undefined : new RegExp(rule.key);
  const random = seededRandom(seed);
  let matched = 0;
  let injected = 0;
  return {
    name: rule.name ?? rule.fault.type,
    fault: rule.fault,
    picks(service, target) {
      if (services && !services.includes(service)) return false;
      if (operations && !operations.includes(target.operation)) return false;
      if (key && !key.test(target.key)) return false;
      matched += 1;
      if (matched <= (rule.skip ?? 0)) return false;
      if (rule.count !== undefined && injected >= rule.count) return false;
      // Drawn for every candidate, so the sequence of decisions depends only on the seed and the requests.
      if (random() >= (rule.rate ?? 1)) return false;
      injected += 1;
      return true;
    },
  };
}

/** Refuses a rule whose rate, key pattern or atFraction cannot work, before any request meets it. */
export function validateRule(rule: FaultRule): void {
  const rate = rule.rate ?? 1;
  if (!(rate >= 0 && rate <= 1))
    throw new SandboxError(`fault rule rate must be in [0, 1], got ${rule.rate}`);
  if (rule.key !== undefined) new RegExp(rule.key); // throws on a bad pattern now, not per request
  const fraction = 'atFraction' in rule.fault ? rule.fault.atFraction : undefined;
  if (fraction !== undefined && !(fraction >= 0 && fraction < 1)) {
    throw new SandboxError(`fault atFraction must be in [0, 1), got ${fraction}`);
  }
}

/** mulberry32: small, fast and good enough to pick which requests fail; the seed makes runs replay. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
