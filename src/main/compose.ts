import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { makeProcessLogger } from './logger.ts';
import { buildApp } from '../api/app.ts';
import { makeKeyRepository } from '../db/keys-repository.ts';
import { IDEMPOTENCY_ABANDONED_MS, IDEMPOTENCY_TTL_MS } from '../api/http/idempotency.ts';
import { ConfigError, type Config } from '../config/index.ts';
import { makeJobService, type JobService } from '../core/job-service.ts';
import { makeProviderChecks } from '../core/provider-checks.ts';
import { openDatabase, PGLITE_LOCK_STALE_MS, type Database, type DatabaseOptions } from '../db/client.ts';
import { makeIdempotencyRepository } from '../db/idempotency-repository.ts';
import { makeCachedKeyStore, type KeyCacheOptions } from '../core/key-cache.ts';
import { makeCachedJobStore, type JobCacheOptions } from '../core/job-cache.ts';
import { makeJobRepository } from '../db/jobs-repository.ts';
import type { JobStore } from '../core/ports/job-store.ts';
import { makeProviderCheckRepository } from '../db/provider-checks-repository.ts';
import { makeResourceRepository } from '../db/resources-repository.ts';
import { makeLocalEventBus } from '../events/bus.ts';
import type { EventBus } from '../core/ports/events.ts';
import { makeEventFeed } from '../core/event-feed.ts';
import { PROVIDER_MODULES } from '../providers/registry.ts';
import { makeProviderRegistry, type Provider } from '../core/ports/provider.ts';
import { makeQueue } from '../queue/index.ts';
import type { JobQueue } from '../core/ports/queue.ts';
import { makeStorage } from '../storage/index.ts';
import type { ObjectStorage } from '../core/ports/storage.ts';
import { makeLinkSigner, resolveSigningSecret } from '../storage/signing.ts';
import { makePipeline } from '../worker/pipeline.ts';
import { inspectImage, prepareImage } from '../storage/thumbnail.ts';
import { makeInputService } from '../core/inputs.ts';
import { makeRetention } from '../core/retention.ts';
import { makeExclusiveLock } from '../db/exclusive-lock.ts';
import { makePrometheusMetrics } from '../metrics/index.ts';
import { makeUploadRepository } from '../db/uploads-repository.ts';
import { makeInputFetcher } from '../webhooks/input-fetcher.ts';
import { makeReconciler } from '../worker/reconciler.ts';
import { makeWorker, type Worker } from '../worker/worker.ts';
import { makeWebhookDispatcher } from '../webhooks/dispatcher.ts';
import { makeWebhookOutbox } from '../db/webhook-outbox.ts';
import { makeCircuitRepository } from '../db/circuits-repository.ts';
import { makeFailover } from '../worker/failover.ts';
import { makePayloadRenderer } from '../api/http/dialect.ts';
import { DIALECTS } from '../api/dialects/registry.ts';
import { makeWebhookRepository } from '../db/webhooks-repository.ts';
import { makeWebhookSigner, resolveWebhookSecret } from '../webhooks/signing.ts';
import { makeWebhookTargets } from '../webhooks/target.ts';
import { LOCAL_ADMIN_KEY_FILE, persistentSecret } from '../config/secret-file.ts';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };


/** What one process does: both (the embedded default), only HTTP, or only jobs. */
export type DarkroomRole = 'serve' | 'api' | 'worker';

export interface DarkroomOverrides {
  role?: DarkroomRole;
  logger?: Logger;
  /** Wraps the configured queue (tests inject failures through the same port). */
  wrapQueue?: (queue: JobQueue) => JobQueue;
  /** Replaces the providers built from configuration (tests inject controlled ones through the same port). */
  providers?: Provider[];
  /** Randomness for retry jitter and the mock provider, so tests can pin it. */
  random?: () => number;
  /**
   * The embedded database (PGlite) opened otherwise than in DATA_DIR: tests keep it in memory
   * (`dataDir: null`) and start it from a migrated template. Files and secrets stay in DATA_DIR.
   */
  database?: Pick<DatabaseOptions, 'dataDir' | 'template'>;
  /** Wraps the event bus (tests lose messages through the same port). */
  wrapEvents?: (events: EventBus) => EventBus;
  /** How long cached jobs and keys are trusted without news (tests tell the bus's work from the TTL's). */
  cacheTtlMs?: number;
}

export interface Darkroom {
  readonly config: Config;
  readonly app: FastifyInstance;
  readonly jobs: JobService;
  readonly repo: JobStore;
  readonly database: Database;
  readonly queue: JobQueue;
  readonly storage: ObjectStorage;
  readonly worker: Worker;
  readonly events: EventBus;
  readonly logger: Logger;
  /** The base of absolute links: PUBLIC_URL, or the address the server listens on. */
  baseUrl(): string;
  /** Listens, resumes unfinished jobs and starts the worker. */
  start(): Promise<string>;
  /** Stops taking requests and work, lets running steps finish (up to the grace period), closes everything. Idempotent. */
  close(): Promise<void>;
}

/** The providers the configuration enables, built by their modules, in registry order. */
function configuredProviders(config: Config, random: (() => number) | undefined): Provider[] {
  const shared = { timeoutMs: config.providerTimeoutMs, maxImageBytes: config.providerMaxImageBytes, random };
  return PROVIDER_MODULES.filter((module) => module.name in config.providers).map((module) => module.create(config.providers[module.name], shared));
}

/**
 * Jobs kept in memory for reads. A change made by another process reaches this one through the
 * event bus at once; one whose message was lost shows within the TTL.
 */
const JOB_CACHE: JobCacheOptions = { ttlMs: 1000, maxEntries: 10_000 };

/** Verified API keys kept in memory: a key revoked by another process is refused here within the TTL. */
const KEY_CACHE: KeyCacheOptions = { ttlMs: 1000, maxEntries: 10_000 };

/** The one composition root: the CLI, the servers and the tests all build darkroom here. */
export async function createDarkroom(config: Config, overrides: DarkroomOverrides = {}): Promise<Darkroom> {
  const role = overrides.role ?? 'serve';
  const providers = makeProviderRegistry(overrides.providers ?? configuredProviders(config, overrides.random));
  if (!providers.get(config.defaultProvider)) {
    throw new ConfigError([
      `DEFAULT_PROVIDER="${config.defaultProvider}" is not a configured provider (configured: ${providers.names().join(', ')}); set its credentials or choose another`,
    ]);
  }
  const unknownInChains = [...new Set(Object.entries(config.providerFallback).flatMap(([first, rest]) => [first, ...rest]))].filter((name) => !providers.get(name));
  if (unknownInChains.length > 0) {
    throw new ConfigError([`PROVIDER_FALLBACK names ${unknownInChains.map((name) => `"${name}"`).join(', ')}, not configured (configured: ${providers.names().join(', ')})`]);
  }
  const processLogger = overrides.logger ? { logger: overrides.logger, close: async () => undefined } : makeProcessLogger(config);
  const { logger } = processLogger;
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: overrides.database?.dataDir !== undefined ? overrides.database.dataDir : config.dataDir,
    template: overrides.database?.template,
    // A server restarted right after a crash waits for the dead process's lock to go stale.
    lockWaitMs: PGLITE_LOCK_STALE_MS + 5000,
    onLockCompromised: (error) => logger.warn({ err: error }, 'the embedded database lock could not be refreshed in time'),
  });
  try {
    await database.migrate();
  } catch (error) {
    await database.close();
    throw error;
  }
  if (database.created) logger.info({ from: database.created }, 'created the embedded database');
  // Adapters are imported only when configured: the embedded default never loads pg, ioredis or BullMQ.
  const bus = database.pool
    ? await (await import('../events/postgres.ts')).makePostgresEventBus({ url: config.databaseUrl as string, pool: database.pool, logger, onGap: () => repo.clear() })
    : makeLocalEventBus();
  const events = overrides.wrapEvents ? overrides.wrapEvents(bus) : bus;
  const jobLog = logger.child({ component: 'jobs' });
  // A probe's claim outlives its call (PROVIDER_TIMEOUT_MS) and the turn's lease, so only a dead worker's claim lapses.
  const circuits = makeCircuitRepository(database.db, { ...config.circuit, probeMs: config.providerTimeoutMs + config.jobLeaseMs });
  // The queue depth and the circuits are read from the shared store at each scrape.
  const metrics = makePrometheusMetrics({
    queueDepth: () => repo.countByStatus({}),
    circuitsOpen: async () => {
      const down = await circuits.unavailable();
      return Object.fromEntries(providers.names().map((name) => [name, down.has(name)]));
    },
  });
  const webhookRepo = makeWebhookRepository(database.db);
  const jobRows = makeJobRepository(database.db, {
    outbox: makeWebhookOutbox(webhookRepo, new Set(DIALECTS.filter((dialect) => dialect.webhookPayload).map((dialect) => dialect.name))),
    // Only called once jobs run, by which time the dispatcher below exists.
    onOutboxCommitted: () => webhookDispatcher.nudge(),
    onTransition: (job) => {
      metrics.jobFinished(job);
      jobLog.info(
        { jobId: job.id, owner: job.owner, status: job.status, attempt: job.attempts, provider: job.provider, ...(job.error ? { error: job.error.code } : {}) },
        `job ${job.status}`,
      );
    },
    onEvents: (rows) => {
      for (const row of rows) {
        const message = { id: row.id, jobId: row.jobId, type: row.type, status: row.status, stage: row.stage, at: row.createdAt.toISOString() };
        events.publish(message).catch((error: unknown) => jobLog.warn({ err: error, jobId: row.jobId }, 'could not publish a job event'));
      }
    },
  });
  const repo = makeCachedJobStore(jobRows, { ...JOB_CACHE, ttlMs: overrides.cacheTtlMs ?? JOB_CACHE.ttlMs });
  // First of the bus's subscribers, so that whoever a message wakes reads past the forgotten entry.
  events.subscribe((message, origin) => {
    if (origin === 'another-process') repo.invalidate(message.jobId);
  });
  const configuredQueue = await makeQueue(config, logger);
  const queue = overrides.wrapQueue ? overrides.wrapQueue(configuredQueue) : configuredQueue;

  let listeningUrl = `http://${config.host}:${config.port}`;
  const baseUrl = () => config.publicUrl ?? listeningUrl;
  const signer = makeLinkSigner(resolveSigningSecret(config.signingSecret, config.dataDir));
  const storage = await makeStorage(config, { signer, baseUrl });
  const webhookTargets = makeWebhookTargets({ allowPrivate: config.webhooks.allowPrivate });

  const uploadRepo = makeUploadRepository(database.db);
  const idempotencyRepo = makeIdempotencyRepository(database.db, { ttlMs: IDEMPOTENCY_TTL_MS, abandonedAfterMs: IDEMPOTENCY_ABANDONED_MS });
  const retentionLog = logger.child({ component: 'retention' });
  const retention = makeRetention(config.retention, {
    repo,
    storage,
    // Called during sweeps, by which time the input service below exists.
    deleteUnusedInputs: (keys) => inputs.deleteUnused(keys),
    pruneDeliveries: (before, limit) => webhookRepo.prune(before, limit),
    sweepUploads: (now, limit) => inputs.sweep(now, limit),
    pruneIdempotencyKeys: (limit) => idempotencyRepo.prune(limit),
    exclusive: makeExclusiveLock({ name: 'darkroom:retention', pool: database.pool, logger: retentionLog }),
    logger: retentionLog,
    onRemoved: (kind, count) => metrics.retentionRemoved(kind, count),
  });
  const inputs = makeInputService({
    uploads: uploadRepo,
    storage,
    inspect: inspectImage,
    fetcher: makeInputFetcher({ allowPrivate: config.inputs.allowPrivate }),
    maxBytes: config.inputs.maxBytes,
    uploadTtlSeconds: config.inputs.uploadTtlSeconds,
    fetchTimeoutMs: config.inputs.fetchTimeoutMs,
    signedUrlTtlSeconds: config.signedUrlTtlSeconds,
    logger,
  });

  const jobs = makeJobService({
    repo,
    events,
    queue,
    providers,
    storage,
    defaultProvider: config.defaultProvider,
    maxAttempts: config.jobMaxAttempts,
    signedUrlTtlSeconds: config.signedUrlTtlSeconds,
    logger,
    webhooks: { refusal: webhookTargets.refusal, deliveriesOf: (job) => webhookRepo.listForJob(job.id, job.batchId) },
    inputs,
    pricing: config.pricing,
    circuits,
    fallbackChains: config.providerFallback,
  });

  const providerChecks = makeProviderChecks({
    repo: makeProviderCheckRepository(database.db),
    test: (name) => jobs.testProvider(name),
    providerNames: () => providers.names(),
    defaultProvider: config.defaultProvider,
    timeoutMs: config.providerTimeoutMs,
    logger: logger.child({ component: 'provider-checks' }),
  });

  const webhookDispatcher = makeWebhookDispatcher({
    repo: webhookRepo,
    render: makePayloadRenderer(DIALECTS, jobs),
    signer: makeWebhookSigner(resolveWebhookSecret(config.webhooks.secret, config.dataDir)),
    targets: webhookTargets,
    logger: logger.child({ component: 'webhooks' }),
    metrics,
    concurrency: config.webhooks.concurrency,
    timeoutMs: config.webhooks.timeoutMs,
    retry: {
      baseMs: config.webhooks.retryBaseDelayMs,
      maxMs: config.webhooks.retryMaxDelayMs,
      giveUpAfterMs: config.webhooks.retryHours * 3_600_000,
    },
    random: overrides.random,
    userAgent: `darkroom/${packageJson.version}`,
  });

  const failover = makeFailover({
    repo,
    queue,
    providers,
    circuits,
    chains: config.providerFallback,
    afterAttempts: config.failoverAfterAttempts,
    leaseMs: config.jobLeaseMs,
    logger: logger.child({ component: 'failover' }),
  });
  const pipeline = makePipeline({
    circuits,
    failover,
    prepareImage,
    repo,
    providers,
    storage,
    retry: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs },
    providerCallTimeoutMs: config.providerTimeoutMs,
    leaseMs: config.jobLeaseMs,
    logger: logger.child({ component: 'worker' }),
    metrics,
    pricing: config.pricing,
    random: overrides.random,
  });
  const worker = makeWorker({
    id: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    queue,
    pipeline,
    repo,
    concurrency: config.workerConcurrency,
    logger,
  });

  const reconciler = makeReconciler({
    repo,
    queue,
    logger: logger.child({ component: 'reconciler' }),
    intervalMs: config.reconcileIntervalMs,
    staleMs: config.reconcileStaleMs,
    housekeeping: [
      { name: 'provider calls older than the recent window', run: () => circuits.prune() },
      {
        name: 'what outlived its retention or expired',
        run: async () => Object.values((await retention.sweep()).removed).reduce((sum, count) => sum + count, 0),
      },
    ],
  });

  const rateLimited = config.rateLimits.generate !== undefined || config.rateLimits.read !== undefined;
  // Counters in Redis hold across every api process; without Redis each process counts alone.
  const rateLimitRedis =
    role !== 'worker' && rateLimited && config.redisUrl
      ? new (await import('ioredis')).Redis(config.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 5000, lazyConnect: false })
      : undefined;
  rateLimitRedis?.on('error', (error: Error) => logger.warn({ err: error }, 'rate-limit Redis connection error; limits are not applied meanwhile'));

  // Without ADMIN_API_KEY, an embedded server keeps an operator credential in DATA_DIR, so the keys
  // command can make the first admin key through the running server without a restart.
  const adminApiKey =
    config.adminApiKey ?? (config.databaseUrl === undefined && role !== 'worker' ? persistentSecret(config.dataDir, LOCAL_ADMIN_KEY_FILE, () => `dk_local_${randomBytes(32).toString('base64url')}`) : undefined);

  const app = await buildApp({
    dialects: DIALECTS,
    jobs,
    providerChecks,
    storage,
    signer,
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    readiness: { database: database.ping, queue: queue.ping, storage: storage.check },
    providerAvailability: () => jobs.availability(),
    version: packageJson.version,
    adminQueues:
      config.bullBoard && config.adminApiKey && 'dashboardQueues' in configuredQueue
        ? { queues: await configuredQueue.dashboardQueues() }
        : undefined,
    auth: {
      mode: config.auth,
      keys: makeCachedKeyStore(makeKeyRepository(database.db), { ...KEY_CACHE, ttlMs: overrides.cacheTtlMs ?? KEY_CACHE.ttlMs }),
      adminApiKey,
      maxActiveJobsPerKey: config.maxActiveJobsPerKey,
      maxBatchSize: config.maxBatchSize,
      rateLimits: config.rateLimits,
      redis: rateLimitRedis,
    },
    trustProxy: config.trustProxy,
    resources: makeResourceRepository(database.db),
    idempotency: idempotencyRepo,
    feed: makeEventFeed({ repo, events }),
    sseHeartbeatMs: config.sseHeartbeatMs,
    openaiWaitMs: config.openaiWaitMs,
    metrics,
    metricsToken: config.metricsToken,
  });

  let closing: Promise<void> | undefined;

  return {
    config,
    app,
    jobs,
    repo,
    database,
    queue,
    storage,
    worker,
    events,
    logger,
    baseUrl,
    async start() {
      if (role !== 'worker') listeningUrl = await app.listen({ port: config.port, host: config.host });
      let resumed = 0;
      if (role !== 'api') {
        resumed = await jobs.resume();
        await worker.start();
        reconciler.start();
        webhookDispatcher.start();
      }
      logger.info(
        { role, url: role === 'worker' ? undefined : baseUrl(), resumed, concurrency: config.workerConcurrency, database: database.kind, queue: queue.kind },
        'darkroom is running',
      );
      return listeningUrl;
    },
    close() {
      closing ??= (async () => {
        reconciler.stop();
        // Open long polls (?wait=, runsync, Civitai wait) would hold app.close() for minutes; once the
        // grace period is over their connections are cut, so shutdown stays bounded.
        const cut = setTimeout(() => app.server.closeAllConnections(), config.shutdownGraceMs);
        await Promise.all([app.close(), worker.stop(config.shutdownGraceMs)]);
        clearTimeout(cut);
        await providerChecks.close();
        await webhookDispatcher.stop();
        await queue.close();
        rateLimitRedis?.disconnect();
        await storage.close();
        await events.close();
        await database.close();
        await processLogger.close();
      })();
      return closing;
    },
  };
}
