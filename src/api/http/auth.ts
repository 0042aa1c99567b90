import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { BOOTSTRAP_ADMIN_ID, type KeyScope, type KeyStore } from '../../core/ports/stores.ts';
import { sameSecret } from './secrets.ts';
import type { RateLimit } from '../../config/index.ts';
import type { Caller } from '../../core/caller.ts';
import { DarkroomError } from '../../core/errors.ts';

export type AuthMode = 'off' | 'optional' | 'required';

/** Who sent a request, as far as darkroom can tell. */
export type Principal =
  | { kind: 'open' }
  | { kind: 'guest'; ip: string }
  | { kind: 'key'; id: string; name: string; scopes: KeyScope[]; maxActiveJobs: number | null; maxBatchSize: number | null };

/** How requests are limited: `generate` is every job-creating route of every dialect, `read` the rest. */
export type RouteGroup = 'generate' | 'read';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    caller: Caller;
  }
  interface FastifyContextConfig {
    /** Needs no credential and is never rate limited: health, docs, signed file links, the web UI. */
    public?: boolean;
    /** Needs the admin scope (key management). */
    admin?: boolean;
    /** The rate-limit group; `read` unless said otherwise. */
    group?: RouteGroup;
  }
}

export interface AuthOptions {
  mode: AuthMode;
  keys: KeyStore;
  adminApiKey: string | undefined;
  maxActiveJobsPerKey: number | undefined;
  maxBatchSize: number;
  rateLimits: Record<RouteGroup, RateLimit | undefined>;
  /** Shares rate-limit counters between api processes. */
  redis: Redis | undefined;
  /** Other places than `Authorization: Bearer` where a dialect's clients send their key (Dialect.credential). */
  credentialReaders: readonly ((request: FastifyRequest) => string | undefined)[];
}

const unauthorized = (message: string) => new DarkroomError(401, 'unauthorized', message);

/**
 * The credential a request presents: `Authorization: Bearer <key>` (darkroom, and the services
 * whose clients send it so), or where a dialect's clients put it. undefined: none presented.
 */
function presentedKey(request: FastifyRequest, readers: AuthOptions['credentialReaders']): string | undefined {
  const authorization = request.headers.authorization?.trim();
  if (authorization) {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!bearer?.[1]) throw unauthorized('The Authorization header must be "Bearer <API key>"');
    return bearer[1];
  }
  for (const read of readers) {
    const key = read(request);
    if (key !== undefined) return key;
  }
  return undefined;
}

export function ownerOf(principal: Principal): string | null {
  if (principal.kind === 'open') return null;
  return principal.kind === 'guest' ? `guest:${principal.ip}` : `key:${principal.id}`;
}

export function isAdmin(principal: Principal): boolean {
  return principal.kind === 'open' || (principal.kind === 'key' && principal.scopes.includes('admin'));
}

/**
 * Resolves every request's principal (401 for a bad credential, or a missing one when AUTH=required),
 * derives the caller the core runs use cases for, enforces the admin scope, and rate limits per
 * key or guest IP. Registered before the routes it guards.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const { mode, keys } = options;
  const open: Principal = { kind: 'open' };

  async function resolve(request: FastifyRequest): Promise<Principal> {
    if (mode === 'off') return open;
    const presented = presentedKey(request, options.credentialReaders);
    if (presented === undefined) {
      if (mode === 'required') {
        throw unauthorized('This darkroom requires an API key: send Authorization: Bearer <API key> (Fusion Brain clients: X-Key: Key <API key>)');
      }
      return { kind: 'guest', ip: request.ip };
    }
    if (options.adminApiKey !== undefined && sameSecret(presented, options.adminApiKey)) {
      return { kind: 'key', id: BOOTSTRAP_ADMIN_ID, name: 'ADMIN_API_KEY', scopes: ['admin'], maxActiveJobs: null, maxBatchSize: null };
    }
    const key = await keys.verify(presented);
    if (!key) throw unauthorized('The API key is not valid (unknown or revoked)');
    return { kind: 'key', id: key.id, name: key.name, scopes: key.scopes, maxActiveJobs: key.maxActiveJobs, maxBatchSize: key.maxBatchSize };
  }

  function callerOf(principal: Principal): Caller {
    const own = principal.kind === 'key' ? principal : undefined;
    return {
      owner: ownerOf(principal),
      admin: isAdmin(principal),
      maxActiveJobs: own?.maxActiveJobs ?? options.maxActiveJobsPerKey ?? null,
      maxBatchSize: Math.min(own?.maxBatchSize ?? options.maxBatchSize, options.maxBatchSize),
    };
  }

  app.decorateRequest('principal', null as never);
  app.decorateRequest('caller', null as never);

  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public) {
      request.principal = open;
      request.caller = callerOf(open);
      return;
    }
    const principal = await resolve(request);
    request.principal = principal;
    request.caller = callerOf(principal);
    if (principal.kind === 'key') request.log = request.log.child({ keyId: principal.id });
    if (config.admin && !isAdmin(principal)) {
      throw new DarkroomError(403, 'forbidden', 'This needs an API key with the admin scope');
    }
  });

  await app.register(rateLimit, {
    global: true,
    // After onRequest, where the principal is known.
    hook: 'preParsing',
    enableDraftSpec: true,
    ...(options.redis ? { redis: options.redis, nameSpace: 'darkroom-rate-limit:', skipOnError: true } : {}),
    keyGenerator: (request) => `${groupOf(request)}|${ownerOf(request.principal) ?? request.ip}`,
    allowList: (request) => request.routeOptions.config.public === true || options.rateLimits[groupOf(request)] === undefined,
    max: (request) => options.rateLimits[groupOf(request)]?.max ?? Number.MAX_SAFE_INTEGER,
    timeWindow: (request) => options.rateLimits[groupOf(request)]?.windowMs ?? 1000,
    errorResponseBuilder: (request, context) => {
      const group = groupOf(request);
      const limit = options.rateLimits[group];
      const who = request.principal.kind === 'guest' ? 'this IP address' : 'this API key';
      return new DarkroomError(
        429,
        'rate_limited',
        `Rate limit exceeded: ${who} may make ${limit?.text ?? context.max} ${group === 'generate' ? 'job-creating' : 'read'} requests; retry in ${context.after}`,
      );
    },
  });
}

/** Makes every route registered in `scope` (an encapsulated plugin) public; for routes whose options a plugin owns. */
export function markRoutesPublic(scope: FastifyInstance): void {
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, public: true };
  });
}

/** An admin credential: ADMIN_API_KEY or a live key with the admin scope. */
export function adminCheck(options: Pick<AuthOptions, 'keys' | 'adminApiKey'>) {
  return async (secret: string): Promise<boolean> => {
    if (options.adminApiKey !== undefined && sameSecret(secret, options.adminApiKey)) return true;
    return (await options.keys.verify(secret))?.scopes.includes('admin') ?? false;
  };
}

const groupOf = (request: FastifyRequest): RouteGroup => request.routeOptions.config.group ?? 'read';
