import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the proxy does to the first whole-object GETs of a key; later ones pass through. */
export type Stall =
  /** Send the status line, headers (full Content-Length) and half the body, then nothing more. */
  | 'half-body'
  /** Accept the request and never answer. */
  | 'no-response';

/**
 * A small HTTP proxy in front of the sandbox's moto that stalls chosen GETs, to prove a client gives up on
 * a connection that stops making progress. Requests are forwarded verbatim (Host included, so SigV4
 * signatures still verify). Stalled sockets are held open until `close()`.
 */
export async function startStallingProxy(
  upstream: string,
  stalls: Map<string, { kind: Stall; times: number }>,
): Promise<{ endpoint: string; stalled: () => number; close: () => Promise<void> }> {
  const target = new URL(upstream);
  const held = new Set<Socket>();
  let stalled = 0;
  const server: Server = createServer((incoming, outgoing) => {
    const path = decodeURIComponent((incoming.url ?? '').split('?')[0] ?? '');
    // Whole-object GETs are copies; a ranged one is preflight's one-byte read, left alone.
    const copyRead = incoming.method === 'GET' && incoming.headers.range === undefined;
    const rule = copyRead ? [...stalls].find(([key]) => path.endsWith(`/${key}`))?.[1] : undefined;
    let stall: Stall | undefined;
    if (rule && rule.times > 0) {
      rule.times -= 1;
      stalled += 1;
      stall = rule.kind;
      held.add(incoming.socket);
      if (stall === 'no-response') return;
    }
    const upstreamRequest = request(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (response) => {
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        if (!stall) {
          response.pipe(outgoing);
          return;
        }
        const declared = Number(response.headers['content-length'] ?? 0);
        let sent = 0;
        response.on('data', (chunk: Buffer) => {
          const room = Math.floor(declared / 2) - sent;
          if (room <= 0) return;
          outgoing.write(chunk.subarray(0, room));
          sent += Math.min(room, chunk.length);
        });
      },
    );
    incoming.pipe(upstreamRequest);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stalled: () => stalled,
    close: async () => {
      for (const socket of held) socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
