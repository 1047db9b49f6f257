/**
 * A fault-injecting HTTP proxy for the sandbox: it sits between the SDK and moto (S3, STS) and between the
 * SDK and DynamoDB Local, forwards every request unchanged, and injects the faults a real network and real
 * AWS produce, by rule. Each service gets its own loopback listener, so a client is pointed at the proxy
 * with the usual `AWS_ENDPOINT_URL_*` variables and one service can be made unreachable on its own.
 *
 * Requests are forwarded byte for byte with their Host header untouched: SigV4 signs the Host the client
 * addressed (the proxy), and moto checks signatures. Only hop-by-hop headers are dropped, each side keeps
 * its own keep-alive connections, and a `Connection: close` from moto closes only the upstream socket.
 */
import { once } from 'node:events';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { SandboxError } from './errors.js';

/** The services the proxy stands in front of; each has its own listener. */
export type ProxiedService = 's3' | 'sts' | 'dynamodb';

/** What happens to a request a rule picks. */
export type Fault =
  /** 503 SlowDown (S3's XML error), not forwarded. */
  | { type: 'slow-down' }
  /** 500 InternalError; with `afterForwarding` the request reached the server (a write landed) first. */
  | { type: 'internal-error'; afterForwarding?: boolean }
  /** 400 ProvisionedThroughputExceededException (DynamoDB's JSON), not forwarded. */
  | { type: 'throttle' }
  /**
   * 403 ExpiredToken, not forwarded; the request's session token stays expired for every later request
   * (a revoked session), until new credentials are assumed.
   */
  | { type: 'expired-token' }
  /** Wait this long, then forward. */
  | { type: 'latency'; ms: number }
  /** Forward; send the headers and `atFraction` of the body, then reset the connection (RST). */
  | { type: 'reset'; atFraction?: number }
  /**
   * Forward; send only `atFraction` of the body. `declared`: the original Content-Length, then the socket
   * is closed; `matching`: Content-Length rewritten to the bytes sent, and the response ends cleanly.
   */
  | { type: 'truncate'; atFraction?: number; contentLength: 'declared' | 'matching' }
  /** Forward; flip bytes of the body, same length and headers. */
  | { type: 'corrupt' }
  /** Forward; send the headers and `atFraction` of the body, then nothing, until the client gives up. */
  | { type: 'stall'; atFraction?: number }
  /** Reset the connection without forwarding or answering: a service dying under its clients. */
  | { type: 'drop' }
  /** Accept the request and never answer, until the client gives up: a server that stopped responding. */
  | { type: 'hang' };

/** Which requests get a fault, and how often. Plain JSON, so the control API takes the same shape. */
export interface FaultRule {
  /** Label in {@link FaultCounts}; defaults to the fault's type. */
  name?: string;
  service?: ProxiedService | ProxiedService[];
  /**
   * Operation names as the SDK calls them: S3 `GetObject`, `PutObject`, `UploadPart`,
   * `CompleteMultipartUpload`, `ListObjectsV2`, ...; STS `AssumeRole`; DynamoDB the X-Amz-Target's
   * operation (`PutItem`, `Query`, ...).
   */
  operation?: string | string[];
  /** A regular expression (source) matched against the S3 object key, or the request path elsewhere. */
  key?: string;
  /** Chance that a matching request gets the fault, from the rule's seeded generator. Default 1. */
  rate?: number;
  /** Inject at most this many times. */
  count?: number;
  /** Let this many matching requests through first. */
  skip?: number;
  fault: Fault;
}

/** What the proxy saw and did since the rules were last set. */
export interface FaultCounts {
  /** Forwarded or faulted requests, by `service:operation`. */
  requests: Record<string, number>;
  /**
   * Injected faults, by rule name. Requests refused for an already expired token count as `expired-token`,
   * S3 request bodies that stalled past the idle timeout as `request-timeout`.
   */
  injected: Record<string, number>;
  /** All injected faults. */
  total: number;
  /** Requests not yet answered in full, by `service:operation`: where a hung client is waiting. */
  inFlight: Record<string, number>;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** Proxied endpoints, one per service: point `AWS_ENDPOINT_URL_S3` / `_STS` / `_DYNAMODB` here. */
  endpoints: Record<ProxiedService, string>;
  /** Where each service's requests go. */
  upstreams: Record<ProxiedService, string>;
  /**
   * Replaces the rules (the first rule that picks a request wins) and resets the counts. `seed` seeds each
   * rule's generator, so the same requests in the same order get the same faults.
   */
  setRules(rules: FaultRule[], options?: { seed?: number }): void;
  /** Counts since the last {@link FaultProxy.setRules} or {@link FaultProxy.reset}. */
  counts(): FaultCounts;
  /**
   * Refuses (`false`) or accepts again (`true`) connections to one service: its listener closes and its
   * open connections are reset, so clients see ECONNREFUSED / ECONNRESET.
   */
  setReachable(service: ProxiedService, reachable: boolean): Promise<void>;
  /** No rules, every service reachable, no expired tokens, stalled connections reset, counts zeroed. */
  reset(): Promise<void>;
  /** Closes the listeners and every connection. Safe to call twice. */
  stop(): Promise<void>;
}

const SERVICES: ProxiedService[] = ['s3', 'sts', 'dynamodb'];
/** Rules over HTTP, for `npm run sandbox -- --fault-proxy` users: PUT a JSON array, GET the counts. */
export const CONTROL_PATH = '/__fault-proxy';
// RFC 9110 §7.6.1; `expect` too: the proxy answers 100-continue itself and streams the body on.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

/** S3 answers 400 RequestTimeout when a request body stops arriving for about this long; moto waits forever. */
export const S3_REQUEST_IDLE_TIMEOUT_MS = 20_000;

/**
 * Starts the proxy on free loopback ports in front of moto (`s3`, `sts`) and DynamoDB Local.
 *
 * @param options.s3RequestIdleTimeoutMs how long an S3 request body may stall before the proxy answers
 *   400 RequestTimeout and closes the connection, as S3 does. Without it a client that declares more
 *   bytes than it sends would wait on moto forever, a hang production never sees.
 */
export async function startFaultProxy(
  upstreams: { motoEndpoint: string; dynamodbEndpoint: string },
  options: { s3RequestIdleTimeoutMs?: number } = {},
): Promise<FaultProxy> {
  const requestIdleTimeoutMs = options.s3RequestIdleTimeoutMs ?? S3_REQUEST_IDLE_TIMEOUT_MS;
  const targets: Record<ProxiedService, URL> = {
    s3: new URL(upstreams.motoEndpoint),
    sts: new URL(upstreams.motoEndpoint),
    dynamodb: new URL(upstreams.dynamodbEndpoint),
  };
  // Upstream connections are reused, as the SDK's own are; a few more than the SDK's 50 sockets per host.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let rules: ActiveRule[] = [];
  let counts = emptyCounts();
  const expiredTokens = new Set<string>();
  const stalled = new Set<Socket>();
  const listeners = {} as Record<ProxiedService, Listener>;

  const trackInFlight = (label: string, res: ServerResponse) => {
    const tally = counts; // the counts this request was counted in, even if the rules change meanwhile
    tally.inFlight[label] = (tally.inFlight[label] ?? 0) + 1;
    res.once('close', () => {
      const left = (tally.inFlight[label] ?? 1) - 1;
      if (left > 0) tally.inFlight[label] = left;
      else delete tally.inFlight[label];
    });
  };

  const inject = (name: string) => {
    counts.injected[name] = (counts.injected[name] ?? 0) + 1;
    counts.total += 1;
  };

  const handle = async (service: ProxiedService, req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith(CONTROL_PATH)) return control(req, res);
    const target = await describeRequest(service, req);
    const label = `${service}:${target.operation}`;
    counts.requests[label] = (counts.requests[label] ?? 0) + 1;
    trackInFlight(label, res);
    const token = req.headers['x-amz-security-token'];
    if (typeof token === 'string' && expiredTokens.has(token)) {
      inject('expired-token');
      return sendError(res, service, 'expired-token');
    }
    const rule = rules.find((each) => each.picks(service, target));
    if (!rule) return forward(service, req, res, target.body);
    inject(rule.name);
    const { fault } = rule;
    switch (fault.type) {
      case 'slow-down':
      case 'throttle':
        return sendError(res, service, fault.type);
      case 'expired-token':
        if (typeof token === 'string') expiredTokens.add(token);
        return sendError(res, service, fault.type);
      case 'drop':
        req.socket.resetAndDestroy();
        return;
      case 'hang':
        stalled.add(req.socket);
        req.socket.once('close', () => stalled.delete(req.socket));
        return;
      case 'latency':
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        return forward(service, req, res, target.body);
      case 'internal-error':
        if (!fault.afterForwarding) return sendError(res, service, fault.type);
        await forwardAndRead(service, req, target.body);
        return sendError(res, service, fault.type);
      default:
        return forwardWithBodyFault(service, req, res, target.body, fault);
    }
  };

  const upstreamRequest = (service: ProxiedService, req: IncomingMessage, body?: Buffer) => {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    const target = targets[service];
    const upstream = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers, // Host included, as signed
      agent,
    });
    if (body) upstream.end(body);
    else req.pipe(upstream);
    req.on('error', (error) => upstream.destroy(error));
    return upstream;
  };

  const forward = (service: ProxiedService, req: IncomingMessage, res: ServerResponse, body?: Buffer) =>
    new Promise<void>((resolve) => {
      const upstream = upstreamRequest(service, req, body);
      if (service === 's3' && !body && !req.complete) {
        const idle = setTimeout(() => {
          // S3 has answered already (its response is on its way back): the body is no longer awaited.
          if (res.headersSent) return;
          inject('request-timeout');
          upstream.removeAllListeners('response');
          upstream.on('error', () => {});
          upstream.destroy();
          res.once('finish', () => req.socket.destroy()); // S3 closes the connection too
          sendError(res, service, 'request-timeout');
          resolve();
        }, requestIdleTimeoutMs);
        req.on('data', () => idle.refresh());
        req.once('end', () => clearTimeout(idle));
        req.once('close', () => clearTimeout(idle));
      }
      upstream.on('response', (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.pipe(res);
        answer.on('end', resolve);
        answer.on('error', () => {
          res.destroy();
          resolve();
        });
      });
      upstream.on('error', (error) => {
        if (res.headersSent) res.destroy();
        else sendBadGateway(res, error);
        resolve();
      });
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
    });

  const forwardAndRead = (service: ProxiedService, req: IncomingMessage, body?: Buffer) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const upstream = upstreamRequest(service, req, body);
      upstream.on('response', (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () =>
          resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) }),
        );
        answer.on('error', reject);
      });
      upstream.on('error', reject);
    });

  const forwardWithBodyFault = async (
    service: ProxiedService,
    req: IncomingMessage,
    res: ServerResponse,
    requestBody: Buffer | undefined,
    fault: Extract<Fault, { type: 'reset' | 'truncate' | 'corrupt' | 'stall' }>,
  ) => {
    let answer: Awaited<ReturnType<typeof forwardAndRead>>;
    try {
      answer = await forwardAndRead(service, req, requestBody);
    } catch (error) {
      return sendBadGateway(res, error as Error);
    }
    const headers = endToEnd(answer.headers);
    const body = answer.body;
    const cut = Math.floor(body.length * ((fault.type !== 'corrupt' && fault.atFraction) || 0.5));
    const socket = req.socket;
    switch (fault.type) {
      case 'corrupt': {
        res.writeHead(answer.status, headers);
        res.end(corrupt(body));
        return;
      }
      case 'truncate':
        if (fault.contentLength === 'matching') {
          res.writeHead(answer.status, { ...headers, 'content-length': String(cut) });
          res.end(body.subarray(0, cut));
          return;
        }
        res.writeHead(answer.status, headers);
        res.write(body.subarray(0, cut), () => socket.end());
        return;
      case 'reset':
        // Nothing to cut in an empty body: reset before the status line, or the client sees a success.
        if (body.length === 0) return socket.resetAndDestroy();
        res.writeHead(answer.status, headers);
        res.write(body.subarray(0, cut), () => socket.resetAndDestroy());
        return;
      case 'stall':
        stalled.add(socket);
        socket.once('close', () => stalled.delete(socket));
        res.writeHead(answer.status, headers);
        res.write(body.subarray(0, cut));
        return;
    }
  };

  const control = async (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    try {
      if (req.method === 'GET') return reply(200, proxy.counts());
      if (req.method === 'DELETE') {
        await proxy.reset();
        return reply(200, proxy.counts());
      }
      if (req.method === 'PUT') {
        const spec = JSON.parse((await readBody(req)).toString('utf8')) as
          | FaultRule[]
          | { rules: FaultRule[]; seed?: number };
        const [list, seed] = Array.isArray(spec) ? [spec, undefined] : [spec.rules, spec.seed];
        proxy.setRules(list, { seed });
        return reply(200, { rules: list.length });
      }
      return reply(405, { error: `use GET (counts), PUT (rules) or DELETE (reset) on ${CONTROL_PATH}` });
    } catch (error) {
      return reply(400, { error: (error as Error).message });
    }
  };

  for (const service of SERVICES) {
    listeners[service] = await listen((req, res) => {
      handle(service, req, res).catch((error: Error) => {
        if (!res.headersSent) sendBadGateway(res, error);
        else res.destroy();
      });
    });
  }

  let stopped: Promise<void> | undefined;
  const proxy: FaultProxy = {
    endpoints: Object.fromEntries(SERVICES.map((s) => [s, listeners[s].endpoint])) as Record<
      ProxiedService,
      string
    >,
    upstreams: Object.fromEntries(SERVICES.map((s) => [s, targets[s].origin])) as Record<
      ProxiedService,
      string
    >,
    setRules(next, options = {}) {
      for (const rule of next) validateRule(rule);
      const seed = options.seed ?? 1;
      rules = next.map((rule, index) => activate(rule, seed * 7919 + index));
      counts = emptyCounts();
    },
    counts: () => structuredClone(counts),
    async setReachable(service, reachable) {
      await (reachable ? listeners[service].open() : listeners[service].close());
    },
    async reset() {
      rules = [];
      counts = emptyCounts();
      expiredTokens.clear();
      for (const socket of stalled) socket.resetAndDestroy();
      stalled.clear();
      await Promise.all(SERVICES.map((service) => listeners[service].open()));
    },
    stop() {
      stopped ??= Promise.all(SERVICES.map((service) => listeners[service].close())).then(() =>
        agent.destroy(),
      );
      return stopped;
    },
  };
  return proxy;
}

/** What a rule matches on, read from the request (STS's form body is read whole: it is small). */
interface RequestTarget {
  operation: string;
  /** The S3 object key, decoded; the path elsewhere. */
  key: string;
  /** The request body when it had to be read to classify the request. */
  body?: Buffer;
}

async function describeRequest(service: ProxiedService, req: IncomingMessage): Promise<RequestTarget> {
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

interface ActiveRule {
  name: string;
  fault: Fault;
  picks(service: ProxiedService, target: RequestTarget): boolean;
}

function activate(rule: FaultRule, seed: number): ActiveRule {
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

function validateRule(rule: FaultRule): void {
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

/** Flips one byte in every 64 KiB (and the last one), so any part or range of the object differs. */
function corrupt(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  for (let at = 0; at < copy.length; at += 64 * 1024) copy[at] = (copy[at] ?? 0) ^ 0xff;
  if (copy.length > 0) copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 0xff;
  return copy;
}

type ErrorKind = 'slow-down' | 'throttle' | 'expired-token' | 'internal-error' | 'request-timeout';

const S3_ERRORS: Record<ErrorKind, [number, string, string]> = {
  'slow-down': [503, 'SlowDown', 'Please reduce your request rate.'],
  'internal-error': [500, 'InternalError', 'We encountered an internal error. Please try again.'],
  'expired-token': [403, 'ExpiredToken', 'The provided token has expired.'],
  throttle: [503, 'SlowDown', 'Please reduce your request rate.'],
  'request-timeout': [
    400,
    'RequestTimeout',
    'Your socket connection to the server was not read from or written to within the timeout period.',
  ],
};

const DYNAMODB_ERRORS: Record<ErrorKind, [number, string, string]> = {
  throttle: [
    400,
    'ProvisionedThroughputExceededException',
    'The level of configured provisioned throughput for the table was exceeded.',
  ],
  'slow-down': [400, 'ThrottlingException', 'Rate of requests exceeds the allowed throughput.'],
  'internal-error': [500, 'InternalServerError', 'Internal server error'],
  'expired-token': [400, 'ExpiredTokenException', 'The security token included in the request is expired'],
  'request-timeout': [400, 'RequestTimeout', 'Request timed out'],
};

/** An error in the service's own wire format, so the SDK parses it as it would AWS's. */
function sendError(res: ServerResponse, service: ProxiedService, kind: ErrorKind): void {
  res.req.resume(); // an unread request body would otherwise hold the connection
  if (service === 'dynamodb') {
    const [status, code, message] = DYNAMODB_ERRORS[kind];
    const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${code}`, message });
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': body.length });
    res.end(body);
    return;
  }
  const [status, code, message] = S3_ERRORS[kind];
  const body =
    service === 'sts'
      ? `<ErrorResponse><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${code}</Code>` +
        `<Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
        `<RequestId>fault-proxy</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendBadGateway(res: ServerResponse, error: Error): void {
  const body = `fault proxy: upstream failed: ${error.message}`;
  res.writeHead(502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}

function emptyCounts(): FaultCounts {
  return { requests: {}, injected: {}, total: 0, inFlight: {} };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** One service's listener; closing it refuses new connections and resets open ones. Reopens on its port. */
interface Listener {
  endpoint: string;
  open(): Promise<void>;
  close(): Promise<void>;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listener> {
  const sockets = new Set<Socket>();
  let port = 0;
  let server: Server | undefined;
  const open = async () => {
    if (server) return;
    const next = createServer(handler);
    // The SDK keeps connections for 5 s idle or more; a longer server timeout avoids racing its reuse.
    next.keepAliveTimeout = 65_000;
    next.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    next.listen(port, '127.0.0.1');
    await once(next, 'listening');
    const address = next.address();
    if (address === null || typeof address === 'string') throw new SandboxError('fault proxy: no port');
    port = address.port;
    server = next;
  };
  const close = async () => {
    const current = server;
    if (!current) return;
    server = undefined;
    const closed = once(current, 'close');
    current.close();
    for (const socket of sockets) socket.resetAndDestroy();
    sockets.clear();
    await closed;
  };
  await open();
  return { endpoint: `http://127.0.0.1:${port}`, open, close };
}
