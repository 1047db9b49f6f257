/**
 * The fault proxy's server side: one loopback listener per service, and the forwarding of a request
 * upstream byte for byte (Host untouched, hop-by-hop headers dropped), streamed back or read whole.
 */
import { once } from 'node:events';
import {
  type Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { SandboxError } from './errors.js';
import type { ProxiedService } from './fault-proxy.js';
import { sendBadGateway, sendError } from './fault-replies.js';

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

/** Where the proxy's requests go, and what forwarding them needs from the running proxy. */
export interface Forwarding {
  targets: Record<ProxiedService, URL>;
  /** Upstream connections are reused, as the SDK's own are. */
  agent: Agent;
  /** How long an S3 request body may stall before the proxy answers 400 RequestTimeout. */
  requestIdleTimeoutMs: number;
  /** Counts a fault the proxy injected, by name. */
  inject(name: string): void;
}

function upstreamRequest(
  forwarding: Forwarding,
  service: ProxiedService,
  req: IncomingMessage,
  body?: Buffer,
) {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  }
  const target = forwarding.targets[service];
  const upstream = httpRequest({
    host: target.hostname,
    port: target.port,
    method: req.method,
    path: req.url,
    headers, // Host included, as signed
    agent: forwarding.agent,
  });
  if (body) upstream.end(body);
  else req.pipe(upstream);
  req.on('error', (error) => upstream.destroy(error));
  return upstream;
}

/** Forwards a request unchanged and streams the answer back; an S3 body that stalls gets RequestTimeout. */
export function forward(
  forwarding: Forwarding,
  service: ProxiedService,
  req: IncomingMessage,
  res: ServerResponse,
  body?: Buffer,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const upstream = upstreamRequest(forwarding, service, req, body);
    if (service === 's3' && !body && !req.complete) {
      const idle = setTimeout(() => {
        // S3 has answered already (its response is on its way back): the body is no longer awaited.
        if (res.headersSent) return;
        forwarding.inject('request-timeout');
        upstream.removeAllListeners('response');
        upstream.on('error', () => {});
        upstream.destroy();
        res.once('finish', () => req.socket.destroy()); // S3 closes the connection too
        sendError(res, service, 'request-timeout');
        resolve();
      }, forwarding.requestIdleTimeoutMs);
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
}

/** Forwards a request unchanged and reads the whole answer, for a fault to act on. */
export function forwardAndRead(
  forwarding: Forwarding,
  service: ProxiedService,
  req: IncomingMessage,
  body?: Buffer,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const upstream = upstreamRequest(forwarding, service, req, body);
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
}

/** The response headers an answer carries on: all but the hop-by-hop ones. */
export function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}

/** A request body, read whole. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** One service's listener; closing it refuses new connections and resets open ones. Reopens on its port. */
export interface Listener {
  endpoint: string;
  open(): Promise<void>;
  close(): Promise<void>;
}

/** Opens a listener on a free loopback port (the same one again after a close). */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listener> {
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
