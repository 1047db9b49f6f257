/**
 * A fault-injecting HTTP proxy for the sandbox: it sits between the SDK and moto (S3, STS) and between the
 * SDK and DynamoDB Local, forwards every request unchanged, and injects the faults a real network and real
 * AWS produce, by rule. Each service gets its own loopback listener, so a client is pointed at the proxy
 * with the usual `AWS_ENDPOINT_URL_*` variables and one service can be made unreachable on its own.
 *
 * Requests are forwarded byte for byte with their Host header untouched: SigV4 signs the Host the client
 * addressed (the proxy), and moto checks signatures. Only hop-by-hop headers are dropped, each side keeps
 * its own keep-alive connections, and a `Connection: close` from moto closes only the upstream socket.
 *
 * - fault-proxy.ts (this file): the proxy's types and startFaultProxy, which counts requests and sends
 *   each to its fault;
 * - fault-plan.ts: what a request is, and which rule picks it;
 * - fault-server.ts: the listeners, and forwarding a request upstream;
 * - fault-body.ts: a forwarded response cut, corrupted or stalled on its way back;
 * - fault-replies.ts: the errors the proxy answers with itself, in each service's wire format;
 * - fault-control.ts: the rules and counts over HTTP.
 */
import { Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { forwardWithBodyFault } from './fault-body.js';
import { CONTROL_PATH, control } from './fault-control.js';
import { type ActiveRule, activate, describeRequest, validateRule } from './fault-plan.js';
import { sendBadGateway, sendError } from './fault-replies.js';
import { type Forwarding, forward, forwardAndRead, type Listener, listen } from './fault-server.js';

export { CONTROL_PATH };

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
  const forwarding: Forwarding = { targets, agent, requestIdleTimeoutMs, inject };

  const handle = async (service: ProxiedService, req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith(CONTROL_PATH)) return control(proxy, req, res);
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
    if (!rule) return forward(forwarding, service, req, res, target.body);
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
        return forward(forwarding, service, req, res, target.body);
      case 'internal-error':
        if (!fault.afterForwarding) return sendError(res, service, fault.type);
        await forwardAndRead(forwarding, service, req, target.body);
        return sendError(res, service, fault.type);
      default:
        return forwardWithBodyFault(forwarding, stalled, service, req, res, target.body, fault);
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

function emptyCounts(): FaultCounts {
  return { requests: {}, injected: {}, total: 0, inFlight: {} };
}
