import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { BOOTSTRAP_ADMIN_ID, KEY_PREFIX, type Budget, type KeyScope, type KeyStore } from '../../core/ports/stores.ts';
import { sameSecret } from './secrets.ts';
import type { RateLimit } from '../../config/index.ts';
import type { Caller } from '../../core/caller.ts';
import { DarkroomError } from '../../core/errors.ts';

export type AuthMode = 'off' | 'optional' | 'required';

/** Who sent a request, as far as darkroom can tell. */
export type Principal =
  | { kind: 'open' }
  | { kind: 'guest'; ip: string }
  | { kind: 'key'; id: string; name: string; scopes: KeyScope[]; maxActiveJobs: number | null; maxBatchSize: number | null; budget?: Budget | null };

/** How requests are limited: `generate` is every job-creating route of every dialect, `read` the rest. */
export type RouteGroup = 'generate' | 'read';

/**
 * How the clients of one served API present credentials: what the auth hook needs of a dialect.
 * Installed on the dialect's scope (`useCredentialRules`); requests routed anywhere else (the native
 * API's rules) have none.
 */
export interface CredentialRules {
  /** Where its clients send a key when not as `Authorization: Bearer` (Dialect.credential). */
  read?: (request: FastifyRequest) => string | undefined;
  /**
   * Its clients carry the imitated service's own tokens (Dialect.foreignTokens): with AUTH=optional,
   * a credential that is not darkroom's makes the caller a guest instead of a 401.
   */
  foreignTokens: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    caller: Caller;
  }
  interface FastifyInstance {
    /** The credential rules of the dialect this scope serves; undefined outside every dialect. */
    credentialRules?: CredentialRules;
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
}

const unauthorized = (message: string) => new DarkroomError(401, 'unauthorized', message);

/** The rules outside every dialect: darkroom's own, where every credential presented must be valid. */
const NATIVE_RULES: CredentialRules = { foreignTokens: false };
/**
 * A path that no route and no dialect serves (`/v2/ep/unknown` of a RunPod client) answers 404 to
 * anyone; a token of another service is no reason to answer 401 instead.
 */
const UNSERVED_RULES: CredentialRules = { foreignTokens: true };

/**
 * Makes every route of `scope` (a dialect's, before its routes are registered), and its not-found
 * answer, follow `rules`. The auth hook runs at the root, before any scope's hooks, and finds them
 * through `request.server`: the scope the request was routed to, which inherits its dialect's.
 */
export function useCredentialRules(scope: FastifyInstance, rules: CredentialRules): void {
  scope.decorate('credentialRules', rules);
}

/**
 * What a request presents: `Authorization: Bearer <token>` (darkroom, and the services whose clients
 * send it so), else a token where the dialect's clients put it, else an Authorization header of
 * another scheme (`other`), else nothing.
 */
function presented(request: FastifyRequest, rules: CredentialRules): { token: string } | 'other' | 'none' {
  const authorization = request.headers.authorization?.trim();
  const bearer = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
  if (bearer) return { token: bearer };
  const token = rules.read?.(request);
  if (token !== undefined) return { token };
  return authorization ? 'other' : 'none';
}

export function ownerOf(principal: Principal): string | null {
  if (principal.kind === 'open') return null;
  return principal.kind === 'guest' ? `guest:${principal.ip}` : `key:${principal.id}`;
}

export function isAdmin(principal: Principal): boolean {
  return principal.kind === 'open' || (principal.kind === 'key' && principal.scopes.includes('admin'));
}

/**
 * Resolves every request's principal by the credential rules of the dialect it was routed to (401
 * for a bad credential, or a missing one when AUTH=required), derives the caller the core runs use
 * cases for, enforces the admin scope, and rate limits per key or guest IP. Registered before the
 * routes it guards; its 401s and 403s are answered by the error format of the route's scope, so in
 * each dialect's own shape.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const { mode, keys } = options;
  const open: Principal = { kind: 'open' };

  /**
   * A credential is darkroom's when it is ADMIN_API_KEY or has darkroom's key format (`dk_…`); such a
   * credential must be valid everywhere. Any other is the imitated service's own token where the
   * dialect says its clients carry one (`foreignTokens`): with AUTH=optional the caller is then a
   * guest, as if it had sent nothing, so a client configured for the real service works unchanged.
   * The native API, and AUTH=required everywhere, take darkroom's credentials only.
   */
  async function resolve(request: FastifyRequest): Promise<Principal> {
    if (mode === 'off') return open;
    const rules = request.server.credentialRules ?? (request.is404 ? UNSERVED_RULES : NATIVE_RULES);
    const guest: Principal = { kind: 'guest', ip: request.ip };
    const foreignIsGuest = rules.foreignTokens && mode === 'optional';
    const credential = presented(request, rules);
    if (credential === 'none') {
      if (mode === 'required') {
        throw unauthorized('This darkroom requires an API key: send Authorization: Bearer <API key> (Fusion Brain clients: X-Key: Key <API key>)');
      }
      return guest;
    }
    if (credential === 'other') {
      if (foreignIsGuest) return guest;
      throw unauthorized('The Authorization header must be "Bearer <API key>"');
    }
    const { token } = credential;
    if (options.adminApiKey !== undefined && sameSecret(token, options.adminApiKey)) {
      return { kind: 'key', id: BOOTSTRAP_ADMIN_ID, name: 'ADMIN_API_KEY', scopes: ['admin'], maxActiveJobs: null, maxBatchSize: null };
    }
    if (!token.startsWith(KEY_PREFIX)) {
      if (foreignIsGuest) return guest;
      throw unauthorized(
        rules.foreignTokens
          ? `This darkroom takes only its own API keys (${KEY_PREFIX}…), not another service's token`
          : `The API key is not valid: darkroom's keys start with ${KEY_PREFIX}`,
      );
    }
    const key = await keys.verify(token);
    if (!key) throw unauthorized('The API key is not valid (unknown or revoked)');
    return { kind: 'key', id: key.id, name: key.name, scopes: key.scopes, maxActiveJobs: key.maxActiveJobs, maxBatchSize: key.maxBatchSize, budget: key.budget };
  }

  function callerOf(principal: Principal): Caller {
    const own = principal.kind === 'key' ? principal : undefined;
    return {
      owner: ownerOf(principal),
      admin: isAdmin(principal),
      maxActiveJobs: own?.maxActiveJobs ?? options.maxActiveJobsPerKey ?? null,
      maxBatchSize: Math.min(own?.maxBatchSize ?? options.maxBatchSize, options.maxBatchSize),
      budget: own?.budget ?? null,
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
