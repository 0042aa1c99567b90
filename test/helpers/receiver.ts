import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** 1 for the first request this receiver saw. */
  number: number;
}

/** How one request is answered: write to `response` (or never, to hang). */
export type Answer = (request: ReceivedWebhook, response: ServerResponse) => void;

export interface Receiver {
  /** http://127.0.0.1:port, without a trailing slash. */
  url: string;
  port: number;
  received: ReceivedWebhook[];
  /** Requests whose answer has not been sent (hanging ones). */
  open(): number;
  answerWith(answer: Answer): void;
  /** Resolves once `count` requests (matching `filter`) have arrived. */
  waitFor(count: number, filter?: (request: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

export const answerStatus = (status: number, body = ''): Answer => (_request, response) => {
  response.writeHead(status, { 'content-type': 'text/plain' }).end(body);
};

/** A webhook receiver on the loopback address: it records every request and answers as told (204 unless told). */
export async function startReceiver(answer: Answer = answerStatus(204)): Promise<Receiver> {
  const received: ReceivedWebhook[] = [];
  const sockets = new Set<Socket>();
  let current = answer;
  let open = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry = { path: request.url ?? '/', headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), number: received.length + 1 };
      received.push(entry);
      open += 1;
      response.on('close', () => (open -= 1));
      current(entry, response);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    open: () => open,
    answerWith(next) {
      current = next;
    },
    async waitFor(count, filter = () => true, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const matching = received.filter(filter);
        if (matching.length >= count) return matching;
        if (Date.now() > until) throw new Error(`receiver got ${matching.length} of ${count} requests in ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
