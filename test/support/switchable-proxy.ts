import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy that can be switched off (its port refuses connections: `connect ECONNREFUSED`, as a dead
 * endpoint does) and on again on the same port, to take a service away in the middle of a run.
 */
export async function startSwitchableProxy(upstream: string): Promise<{
  endpoint: string;
  down: () => void;
  up: () => Promise<void>;
  close: () => Promise<void>;
}> {
  const target = new URL(upstream);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const service = createConnection({ host: target.hostname, port: Number(target.port) });
    for (const socket of [client, service]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.pipe(service).pipe(client);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  await listen(0);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const down = () => {
    if (!server.listening) return;
    server.close();
    for (const socket of sockets) socket.destroy();
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    down,
    up: () => (server.listening ? Promise.resolve() : listen(port)),
    close: async () => {
      down();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}
