import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { JobService } from '../core/job-service.ts';
import type { ProviderChecks } from '../core/provider-checks.ts';
import type { ResourceStore, IdempotencyStore } from '../core/ports/stores.ts';
import type { EventFeed } from '../core/event-feed.ts';
import type { Metrics } from '../core/ports/metrics.ts';
import type { LinkSigner, ObjectStorage } from '../core/ports/storage.ts';
import type { Queue } from 'bullmq';
import { adminCheck, markRoutesPublic, ownerOf, registerAuth, useCredentialRules, type AuthOptions } from './http/auth.ts';
import { sameSecret } from './http/secrets.ts';
import { registerDocs } from './http/docs.ts';
import { filesRoutes } from './http/files.ts';
import { registerIdempotency } from './http/idempotency.ts';
import { problem, problemFormat, registerProblemHandlers, sendProblem } from './http/problem.ts';
import { validatorCompiler } from './http/validation.ts';
import { WEB_UI_ROOT, webUiRoutes } from './http/web-ui.ts';
import type { Dialect, DialectContext } from './http/dialect.ts';
import { frameworkErrorHandler, installErrorFormat, MAX_PARAM_LENGTH } from './http/errors.ts';
import { addJsonParser } from './http/json.ts';
import { makeRouteOwners } from './http/route-owners.ts';
import { refuseUnstorableUrlText } from './http/storable-input.ts';
import { logComponent } from './http/log-component.ts';

export interface AppDeps {
  /** The served APIs (src/api/dialects/registry.ts). */
  dialects: readonly Dialect[];
  jobs: JobService;
  /** Provider connection checks run as tasks (the tasks dialect's /test). */
  providerChecks: ProviderChecks;
  storage: ObjectStorage;
  signer: LinkSigner;
  logger: Logger;
  bodyLimitBytes: number;
  /** Named checks run by /ready; each throws when its component is not usable. */
  readiness: Record<string, () => Promise<void>>;
  /** Which providers can take work: /ready fails only when none can, and names those that are down. */
  providerAvailability: () => Promise<{ available: string[]; down: string[] }>;
  version: string;
  /** Bull Board's queues, when BULL_BOARD is on. */
  adminQueues?: { queues: Queue[] };
  /** Credentials, scopes, caps and rate limits. */
  auth: AuthOptions;
  /** Fastify's trustProxy (TRUST_PROXY): whether X-Forwarded-For names the client, whose IP identifies guests. */
  trustProxy: boolean | number | string[];
  /** The AIR catalogue behind the Civitai dialect's /v2/resources. */
  resources: ResourceStore;
  /** Where Idempotency-Key answers are kept (the job-creating routes of every dialect). */
  idempotency: IdempotencyStore;
  /** Live job events for the SSE routes. */
  feed: EventFeed;
  /** How often an idle event stream gets a heartbeat (SSE_HEARTBEAT_MS). */
  sseHeartbeatMs: number;
  /** How long the OpenAI dialect waits for a job before answering 504 (OPENAI_WAIT_MS). */
  openaiWaitMs: number;
  /** What /metrics serves, and what each request adds to it. */
  metrics: Metrics & { render(): Promise<string>; readonly contentType: string };
  /** A Bearer token that may read /metrics besides admin keys (METRICS_TOKEN). */
  metricsToken?: string;
}

/** The whole HTTP surface as one Fastify instance that never listens: the process entry owns that. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // Filled as the dialects register their routes: which dialect answers for a path outside a route's scope.
  const owners = makeRouteOwners();
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.bodyLimitBytes,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,100}$/.test(given) ? given : randomUUID();
    },
    // One line per request (onResponse below) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandler(owners, problemFormat),
    // Avvio's 10 s default fails start-up spuriously on a loaded machine (Swagger UI's assets are read at registration).
    pluginTimeout: 60_000,
    // A hop count trusts that many proxies nearest the server.
    trustProxy: typeof deps.trustProxy === 'number' ? (_address: string, hop: number) => hop < (deps.trustProxy as number) : deps.trustProxy,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  registerProblemHandlers(app, owners);
  refuseUnstorableUrlText(app);

  // Bodies are JSON only: anything else (Fastify's default text/plain included) is a 415. A dialect that
  // takes another media type registers its parser inside its own plugin.
  app.removeAllContentTypeParsers();
  addJsonParser(app, 'application/json');

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // Which dialect's scope answered a request, for the HTTP metrics ('none': health, files, docs, 404s outside every dialect).
  const dialectOf = new WeakMap<object, string>();
  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.httpRequest(dialectOf.get(request) ?? 'none', reply.statusCode, reply.elapsedTime / 1000);
    request.log.info(
      { method: request.method, url: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'darkroom',
        version: deps.version,
        description: 'Self-hosted image-generation orchestrator. Errors are RFC 9457 problem details.',
      },
      tags: [{ name: 'jobs' }, { name: 'operations' }],
    },
  });

  // Before every route: its hooks and the rate limiter attach to the routes registered after them.
  await registerAuth(app, deps.auth);
  await app.register(async (docs) => {
    markRoutesPublic(docs);
    await registerDocs(docs);
  });
  if (deps.adminQueues) {
    // Bull Board is loaded only when it is served (BullMQ queues and an admin key configured).
    const { registerAdminQueues } = await import('./http/admin-queues.ts');
    await registerAdminQueues(app, { queues: deps.adminQueues.queues, isAdmin: adminCheck(deps.auth) });
  }
  registerIdempotency(app, {
    store: deps.idempotency,
    bodyLimitBytes: deps.bodyLimitBytes,
    // Keys of different callers never meet; with AUTH=off there is one caller.
    scopeOf: (request) => ownerOf(request.principal) ?? 'anonymous',
  });
  await app.register(async (files) => {
    // A signed link is its own credential: it works in an <img> tag, with no header.
    markRoutesPublic(files);
    await files.register(filesRoutes, {
      storage: deps.storage,
      signer: deps.signer,
      removedAt: async (key) => {
        const jobId = /^jobs\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\//.exec(key)?.[1];
        return jobId ? deps.jobs.imagesExpiredAt(jobId) : null;
      },
    });
  });
  const context: DialectContext = {
    jobs: deps.jobs,
    feed: deps.feed,
    sseHeartbeatMs: deps.sseHeartbeatMs,
    openaiWaitMs: deps.openaiWaitMs,
    providerChecks: deps.providerChecks,
    resources: deps.resources,
    keys: deps.auth.keys,
  };
  for (const dialect of deps.dialects) {
    // Each dialect in a scope of its own: its errors in its service's shape (the auth hook's 401 and 403
    // included), its log lines under its name, its clients' credentials read its service's way.
    await app.register(
      async (scope) => {
        useCredentialRules(scope, { read: dialect.credential?.bind(dialect), foreignTokens: dialect.foreignTokens });
        installErrorFormat(scope, dialect.errors, logComponent(scope, dialect.logComponent));
        scope.addHook('onRoute', (route) => owners.addRoute(route.url, dialect.errors));
        scope.addHook('onRequest', async (request) => void dialectOf.set(request, dialect.name));
        if (dialect.errors.ownNotFound) owners.addPrefix(dialect.prefix, dialect.errors);
        await dialect.routes(scope, context);
      },
      { prefix: dialect.prefix },
    );
  }
  await app.register(webUiRoutes, { root: WEB_UI_ROOT });

  const isAdmin = adminCheck(deps.auth);
  app.get('/metrics', { config: { public: true }, schema: { tags: ['operations'], summary: 'Prometheus metrics (Bearer METRICS_TOKEN or an admin key)' } }, async (request, reply) => {
    const secret = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1]?.trim();
    const allowed = secret !== undefined && ((deps.metricsToken !== undefined && sameSecret(secret, deps.metricsToken)) || (await isAdmin(secret)));
    if (!allowed) {
      reply.header('www-authenticate', 'Bearer realm="darkroom metrics"');
      return sendProblem(reply, problem(secret === undefined ? 401 : 403, secret === undefined ? 'unauthorized' : 'forbidden', 'Metrics need METRICS_TOKEN or an admin key as a Bearer token'));
    }
    return reply.type(deps.metrics.contentType).send(await deps.metrics.render());
  });

  app.get('/health', { config: { public: true }, schema: { tags: ['operations'], summary: 'Liveness' } }, async () => ({ status: 'ok' }));
  app.get(
    '/ready',
    { config: { public: true }, schema: { tags: ['operations'], summary: 'Readiness: database, queue and storage checked, and at least one provider whose circuit is closed' } },
    async (_request, reply) => {
      const checks: Record<string, string> = {};
      let providers: { available: string[]; down: string[] } = { available: [], down: [] };
      await Promise.all([
        ...Object.entries(deps.readiness).map(async ([name, check]) => {
          checks[name] = await check().then(
            () => 'ok',
            (error: unknown) => {
              deps.logger.warn({ err: error, check: name }, 'readiness check failed');
              return 'failed';
            },
          );
        }),
        deps.providerAvailability().then(
          (availability) => void (providers = availability),
          (error: unknown) => deps.logger.warn({ err: error }, 'readiness could not read the provider circuits'),
        ),
      ]);
      // One provider down is degraded service, not an outage: jobs go elsewhere or wait for its probe.
      checks.providers = providers.available.length > 0 ? 'ok' : 'failed';
      const failed = Object.entries(checks).filter(([, state]) => state !== 'ok').map(([name]) => name);
      const body = { checks, providersDown: providers.down };
      if (failed.length > 0) {
        return sendProblem(reply, { ...problem(503, 'not_ready', `Not ready: ${failed.join(', ')} failed its check`), ...body } as never);
      }
      return { status: 'ready', ...body };
    },
  );

  return app;
}
