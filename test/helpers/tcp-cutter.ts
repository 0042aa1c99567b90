import { createConnection, createServer, type Server, type Socket, type AddressInfo } from 'node:net';

export interface TcpCutter {
  /** host:port clients connect to instead of the target. */
  port: number;
  /** Drops every open connection and refuses new ones for `downMs` (a restart, as clients see it). */
  outage(downMs: number): Promise<void>;
  close(): Promise<void>;
}

/** A TCP relay in front of a service (Redis here) that can cut its clients off, as a restart does. */
export async function startTcpCutter(target: { host: string; port: number }): Promise<TcpCutter> {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = createConnection(target);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async outage(downMs) {
      down = true;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      down = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
