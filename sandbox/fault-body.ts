/** The body faults: a response forwarded, then cut, corrupted or stalled on its way back to the client. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Fault, ProxiedService } from './fault-proxy.js';
import { sendBadGateway } from './fault-replies.js';
import { endToEnd, type Forwarding, forwardAndRead } from './fault-server.js';

/**
 * Forwards a request, then answers with its response body cut (reset, truncate), flipped (corrupt) or
 * left half sent (stall): the faults a network and a dying server make of a body.
 */
export async function forwardWithBodyFault(
  forwarding: Forwarding,
  stalled: Set<Socket>,
  service: ProxiedService,
  req: IncomingMessage,
  res: ServerResponse,
  requestBody: Buffer | undefined,
  fault: Extract<Fault, { type: 'reset' | 'truncate' | 'corrupt' | 'stall' }>,
) {
  let answer: Awaited<ReturnType<typeof forwardAndRead>>;
  try {
    answer = await forwardAndRead(forwarding, service, req, requestBody);
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
}

/** Flips one byte in every 64 KiB (and the last one), so any part or range of the object differs. */
function corrupt(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  for (let at = 0; at < copy.length; at += 64 * 1024) copy[at] = (copy[at] ?? 0) ^ 0xff;
  if (copy.length > 0) copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 0xff;
  return copy;
}
