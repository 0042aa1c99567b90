import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';

/**
 * Server-sent events written by hand rather than through a plugin: the wire format is four line
 * kinds, and what matters here (replay before live, heartbeats, back-pressure, ending every stream
 * when the server closes) is ours either way. `@fastify/sse` is still 0.x; fastify-sse-v2 takes an
 * async iterable and leaves back-pressure and shutdown to us all the same.
 *
 * The body is a PassThrough handed to `reply.send`, so Fastify still writes the headers set on the
 * reply (x-request-id) and runs its onSend/onResponse hooks, and destroys the stream when the client
 * goes away.
 */
export interface SseStream {
  /** Aborted when the client disconnects or the stream is ended: stop producing. */
  readonly signal: AbortSignal;
  /** Writes one event; resolves once the socket can take more (back-pressure). */
  send(event: { id: number; event: string; data: unknown }): Promise<void>;
  /** Ends the response (idempotent). */
  end(): void;
}

export interface SseOptions {
  /** A comment line is written this often so that proxies do not close an idle stream. */
  heartbeatMs: number;
  /** How long a client waits before reconnecting after a drop (the `retry:` field). */
  retryMs?: number;
}

export function openSse(reply: FastifyReply, options: SseOptions): SseStream {
  const body = new PassThrough();
  const controller = new AbortController();
  const heartbeat = setInterval(() => body.write(':\n\n'), options.heartbeatMs);
  heartbeat.unref();
  body.once('close', () => {
    clearInterval(heartbeat);
    controller.abort();
  });

  reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache, no-transform')
    .header('connection', 'keep-alive')
    // nginx buffers proxied responses unless told not to; a buffered stream is no stream.
    .header('x-accel-buffering', 'no')
    .send(body);
  // Sent at once so that the client gets the headers before the first event.
  body.write(`retry: ${options.retryMs ?? 1000}\n\n`);

  return {
    signal: controller.signal,
    async send(event) {
      if (body.destroyed || body.writableEnded) return;
      const frame = `id: ${event.id}\nevent: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
      if (!body.write(frame)) await Promise.race([once(body, 'drain'), once(body, 'close')]);
    },
    end() {
      clearInterval(heartbeat);
      if (!body.writableEnded) body.end();
      controller.abort();
    },
  };
}

/** Whether the client asked for an event stream (EventSource always sends this Accept). */
export function wantsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\b/i.test(accept);
}
