import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler, preHandlerHookHandler, preParsingHookHandler } from 'fastify';
import { DarkroomError } from '../../core/errors.ts';
import type { ClaimRequest, IdempotencyStore } from '../../core/ports/stores.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route creates jobs: it honours `Idempotency-Key` (see api/idempotency.ts). */
    idempotent?: boolean;
  }
}

/** How long a key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
/**
 * A claim still pending after this long belongs to a request that will never finish (its process
 * died): the next request with the key takes it over. Longer than any request may take (runsync
 * waits up to 5 minutes).
 */
export const IDEMPOTENCY_ABANDONED_MS = 10 * 60_000;
const HEADER = 'idempotency-key';
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Whose keys a request's key is among: the API key's owner, or the guest's IP. */
export type ScopeOf = (request: FastifyRequest) => string;

interface Tracked {
  key: string;
  chunks: Buffer[];
  bytes: number;
  tooLarge: boolean;
  /** Set once this request holds the key: its answer is stored (2xx) or the key released. */
  claim?: ClaimRequest;
}

export interface IdempotencyOptions {
  store: IdempotencyStore;
  /** Bodies larger than this (or than the route's own bodyLimit) are not remembered byte for byte; such a request is refused (413). */
  bodyLimitBytes: number;
  scopeOf: ScopeOf;
  /** How long a repeat waits for the first request with its key before answering 409 (default a minute). */
  waitForFirstMs?: number;
}

/**
 * `Idempotency-Key` for every route whose config says `idempotent: true`, whatever its dialect:
 *
 * - The first request with a key claims it (a 'pending' row, unique per caller and key), runs, and
 *   if it answers 2xx its status, content type and body are stored. Any other answer releases the
 *   key, so the client can fix the request or retry.
 * - A repeat with the same method, URL and body bytes within 24 h gets the stored answer, byte for
 *   byte (same job ids), with `Idempotent-Replayed: true`. One that arrives while the first is
 *   running waits for it (up to a minute, then 409 with Retry-After).
 * - A repeat with another request is refused with 422, in the dialect's own error format (errors
 *   thrown here go through the route's error handler).
 *
 * The body is fingerprinted as it streams past, before any parser, so multipart bodies (read by
 * the route itself) count too; their random boundary is normalised first, as two submissions of
 * the same form by the same client differ only in it.
 */
export function registerIdempotency(app: FastifyInstance, options: IdempotencyOptions): void {
  const { store } = options;
  const { scopeOf } = options;
  const tracked = new WeakMap<FastifyRequest, Tracked>();

  const readKey: onRequestHookHandler = async (request) => {
    const header = request.headers[HEADER];
    if (header === undefined) return;
    if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
      throw new DarkroomError(400, 'validation_failed', 'Idempotency-Key must be 1 to 255 visible ASCII characters', [
        { field: HEADER, in: 'headers', message: 'must be 1 to 255 visible ASCII characters' },
      ]);
    }
    tracked.set(request, { key: header, chunks: [], bytes: 0, tooLarge: false });
  };

  // Listens beside whatever reads the body (Fastify's parser, or a multipart reader in the handler);
  // pausing at once keeps the stream from flowing before that reader is attached.
  const observeBody: preParsingHookHandler = async (request, _reply, payload) => {
    const state = tracked.get(request);
    if (!state) return payload;
    request.raw.on('data', (chunk: Buffer) => {
      if (state.tooLarge) return;
      state.bytes += chunk.length;
      // A route that takes images inline allows a larger body than the server's default.
      if (state.bytes > (request.routeOptions.bodyLimit ?? options.bodyLimitBytes)) {
        state.tooLarge = true;
        state.chunks = [];
      } else {
        state.chunks.push(chunk);
      }
    });
    request.raw.pause();
    return payload;
  };

  async function fingerprint(request: FastifyRequest, state: Tracked): Promise<string> {
    // A route that read its body itself may have stopped before the stream's end (a multipart epilogue).
    if (!request.raw.readableEnded) {
      const ended = once(request.raw, 'end');
      request.raw.resume();
      await ended;
    }
    if (state.tooLarge) throw new DarkroomError(413, 'body_too_large', 'The request body is larger than this server accepts');
    let body = Buffer.concat(state.chunks);
    const boundary = /boundary="?([^";]+)"?/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (boundary) body = Buffer.from(body.toString('latin1').replaceAll(boundary, 'darkroom-boundary'), 'latin1');
    return createHash('sha256').update(`${request.method} ${request.url}\n`).update(body).digest('hex');
  }

  function replay(reply: FastifyReply, answer: { statusCode: number | null; contentType: string | null; body: string | null }) {
    reply.code(answer.statusCode ?? 200).header('idempotent-replayed', 'true');
    if (answer.contentType) reply.header('content-type', answer.contentType);
    return reply.send(answer.body ?? '');
  }

  const claimOrReplay: preHandlerHookHandler = async (request, reply) => {
    const state = tracked.get(request);
    if (!state) return;
    const claim: ClaimRequest = { scope: scopeOf(request), key: state.key, fingerprint: await fingerprint(request, state), claim: randomUUID() };
    state.chunks = [];

    const until = Date.now() + (options.waitForFirstMs ?? 60_000);
    for (let delayMs = 10; ; delayMs = Math.min(delayMs * 2, 500)) {
      if (await store.claim(claim)) {
        state.claim = claim;
        return;
      }
      const held = await store.find(claim.scope, claim.key);
      // Released or expired between the two statements: try to claim it again at once.
      if (!held) continue;
      if (held.fingerprint !== claim.fingerprint) {
        throw new DarkroomError(
          422,
          'idempotency_key_reused',
          'This Idempotency-Key was already used with a different request (method, URL or body); use a new key for a new request',
        );
      }
      if (held.state === 'done') return replay(reply, held);
      if (Date.now() >= until) {
        reply.header('retry-after', '1');
        throw new DarkroomError(409, 'idempotency_key_in_use', 'A request with this Idempotency-Key is still being handled; retry shortly');
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  };

  const storeOrRelease: onSendHookHandler = async (request, reply, payload) => {
    const claim = tracked.get(request)?.claim;
    if (!claim) return payload;
    tracked.delete(request);
    const storable = typeof payload === 'string' || Buffer.isBuffer(payload) || payload === null || payload === undefined;
    try {
      if (reply.statusCode >= 200 && reply.statusCode < 300 && storable) {
        const contentType = reply.getHeader('content-type');
        await store.complete(claim, {
          statusCode: reply.statusCode,
          contentType: typeof contentType === 'string' ? contentType : null,
          body: payload === null || payload === undefined ? '' : payload.toString(),
        });
      } else {
        await store.release(claim);
      }
    } catch (error) {
      request.log.error({ err: error, idempotencyKey: claim.key }, 'could not record the outcome of an idempotent request');
      await store.release(claim).catch(() => undefined);
    }
    return payload;
  };

  app.addHook('onRoute', (route) => {
    if (!route.config?.idempotent) return;
    const list = <T>(hooks: T | T[] | undefined): T[] => (hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]);
    route.onRequest = [...list(route.onRequest), readKey];
    route.preParsing = [...list(route.preParsing), observeBody];
    // After the route's own preHandlers (one that reads a multipart body must run first).
    route.preHandler = [...list(route.preHandler), claimOrReplay];
    route.onSend = [...list(route.onSend), storeOrRelease];
    // Documents the header in OpenAPI (its checks are readKey's, which run first).
    if (route.schema && route.schema.headers === undefined) {
      route.schema.headers = {
        type: 'object',
        properties: {
          [HEADER]: {
            type: 'string',
            description: 'Makes the request safe to repeat: the same key and request within 24 h answer the first answer again; another request with the key is refused (422)',
          },
        },
      };
    }
  });
}
