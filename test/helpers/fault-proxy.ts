import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  at: number;
  /**
   * What the proxy did: forwarded, or the injected fault. A request a `hold` rule keeps is `held`
   * until the hold ends, then `forwarded`, or `dropped` (never sent upstream) when its client gave up first.
   */
  outcome: 'forwarded' | 'fault' | 'delayed' | 'held' | 'dropped';
  /** When the answer went back (undefined while the request is in flight). */
  answeredAt?: number;
  /** When the client closed the connection before it had the answer (an aborted request). */
  abandonedAt?: number;
}

export interface FaultRule {
  /** Which requests the rule applies to, e.g. `(r) => r.method === 'POST' && r.path.endsWith('/run')`. */
  match: (request: { method: string; path: string }) => boolean;
  /** How many matching requests it applies to (then it is spent). */
  times: number;
  /** Answer with this instead of forwarding… */
  respond?: { status: number; headers?: Record<string, string>; body?: string };
  /** …or forward, but hold the answer back this long (to trip a client timeout)… */
  delayMs?: number;
  /**
   * …or hold the request itself until this settles: a request still on its way. It is then
   * forwarded, unless its client has given up meanwhile (then it never reaches the upstream).
   */
  hold?: Promise<void>;
}

export interface FaultProxy {
  url: string;
  requests: RecordedRequest[];
  inject(rule: FaultRule): void;
  count(match: FaultRule['match']): number;
  /** Matching requests not answered yet. */
  inFlight(match: FaultRule['match']): number;
  /** When the last matching request was answered (0 if never). */
  lastAnsweredAt(match: FaultRule['match']): number;
  close(): Promise<void>;
}

/**
 * A real HTTP proxy in front of an upstream darkroom dialect: it forwards every request and records
 * it, except those an injected rule turns into a 5xx, a 429 or a delay. Providers are tested through
 * it exactly as they would meet a flaky service.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: FaultRule[] = [];
  const requests: RecordedRequest[] = [];

  const forward = (incoming: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const outgoing = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: { ...incoming.headers, host: upstream.host } },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 502, headers: response.headers, body: Buffer.concat(chunks) }));
          response.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  const server: Server = createServer((incoming, reply) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', async () => {
      const seen = { method: incoming.method ?? 'GET', path: (incoming.url ?? '/').split('?')[0] ?? '/' };
      const rule = rules.find((candidate) => candidate.times > 0 && candidate.match(seen));
      if (rule) rule.times -= 1;
      const record: RecordedRequest = {
        ...seen,
        at: Date.now(),
        outcome: rule?.respond ? 'fault' : rule?.delayMs ? 'delayed' : rule?.hold ? 'held' : 'forwarded',
      };
      requests.push(record);
      reply.on('close', () => {
        if (!reply.writableFinished) record.abandonedAt ??= Date.now();
      });
      if (rule?.respond) {
        reply.writeHead(rule.respond.status, { 'content-type': 'application/json', ...rule.respond.headers });
        reply.end(rule.respond.body ?? JSON.stringify({ error: `injected ${rule.respond.status}` }));
        record.answeredAt = Date.now();
        return;
      }
      if (rule?.hold) {
        await rule.hold;
        if (record.abandonedAt !== undefined) {
          record.outcome = 'dropped';
          record.answeredAt = Date.now();
          return;
        }
        record.outcome = 'forwarded';
      }
      try {
        const answer = await forward(incoming, Buffer.concat(chunks));
        if (rule?.delayMs) await new Promise((resolve) => setTimeout(resolve, rule.delayMs));
        if (reply.destroyed) {
          record.answeredAt = Date.now();
          return;
        }
        const { 'transfer-encoding': _chunked, connection: _connection, ...headers } = answer.headers;
        reply.writeHead(answer.status, { ...headers, 'content-length': String(answer.body.length) });
        reply.end(answer.body);
      } catch {
        if (!reply.headersSent) reply.writeHead(502).end();
      }
      record.answeredAt = Date.now();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    inject: (rule) => void rules.push(rule),
    count: (match) => requests.filter((request) => match(request)).length,
    inFlight: (match) => requests.filter((request) => request.answeredAt === undefined && match(request)).length,
    lastAnsweredAt: (match) => Math.max(0, ...requests.filter((request) => match(request)).map((request) => request.answeredAt ?? 0)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
