import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { JobError, JobEventType, JobStage, JobStatus, JobTimings, ProviderStint } from '../core/job.ts';
import type { CallOutcome, CircuitState } from '../core/ports/circuits.ts';
import type { GenerationRequest } from '../core/request.ts';
import type { JobCost, TokenUsage } from '../core/pricing.ts';
import type { Budget } from '../core/ports/stores.ts';
import type { WebhookDeliveryStatus, WebhookEventType, WebhookFormat, WebhookSnapshot } from '../core/ports/webhooks.ts';

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
};

export const jobs = pgTable(
  'jobs',
  {
    id: uuid('id').primaryKey(),
    owner: text('owner'),
    batchId: uuid('batch_id'),
    dialect: text('dialect').notNull(),
    status: text('status').$type<JobStatus>().notNull(),
    stage: text('stage').$type<JobStage>(),
    progress: real('progress'),
    queuePosition: integer('queue_position'),
    priority: integer('priority').notNull().default(0),
    provider: text('provider').notNull(),
    providerJobId: text('provider_job_id'),
    /** Whether the job may move along its provider's fallback chain (not pinned by its caller). */
    fallback: boolean('fallback').notNull().default(false),
    providerHistory: jsonb('provider_history').$type<ProviderStint[]>().notNull().default([]),
    request: jsonb('request').$type<GenerationRequest>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    error: jsonb('error').$type<JobError>(),
    timings: jsonb('timings').$type<JobTimings>().notNull().default({ providerMs: 0, imageMs: 0, storageMs: 0 }),
    idempotencyKey: text('idempotency_key'),
    /** What a dialect must remember about a job to answer in its own shape (input format, tokens, …). */
    dialectData: jsonb('dialect_data').$type<Record<string, unknown>>().notNull().default({}),
    runAfter: timestamp('run_after', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    ...timestamps,
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }),
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }),
    deadlineAt: timestamp('deadline_at', { withTimezone: true, mode: 'date' }),
    /**
     * The fencing token of the job's lease: each turn that takes the lease increments it, and every
     * write of a turn requires the value it took, so a turn whose lease was taken over writes nothing.
     */
    leaseToken: bigint('lease_token', { mode: 'number' }).notNull().default(0),
    /** Until when the current turn holds the lease; null when no turn holds it. */
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true, mode: 'date' }),
    /**
     * Set by retention before it deletes the job's image files and rows, so a job never shows an
     * image whose file may be gone; a sweep that stopped half-way finds the job by it and finishes.
     */
    imagesExpiredAt: timestamp('images_expired_at', { withTimezone: true, mode: 'date' }),
    cost: jsonb('cost').$type<JobCost>(),
    usage: jsonb('usage').$type<TokenUsage>(),
    /**
     * The budget period (a `spend` row of the owner) the job's estimate was charged to; null when it
     * was charged to none. When the job ends its actual cost replaces the estimate there.
     */
    spendPeriod: text('spend_period'),
  },
  (t) => [
    index('jobs_status_id_idx').on(t.status, t.id),
    index('jobs_owner_id_idx').on(t.owner, t.id),
    index('jobs_batch_idx').on(t.batchId),
    index('jobs_dialect_id_idx').on(t.dialect, t.id),
    index('jobs_completed_idx').on(t.completedAt),
    index('jobs_queued_provider_idx').on(t.provider, t.id).where(sql`${t.status} = 'queued'`),
    uniqueIndex('jobs_owner_idempotency_idx')
      .on(t.owner, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
  ],
);

export const images = pgTable(
  'images',
  {
    id: uuid('id').primaryKey(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    index: integer('index').notNull(),
    originalKey: text('original_key').notNull(),
    thumbnailKey: text('thumbnail_key').notNull(),
    contentType: text('content_type').notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    bytes: integer('bytes').notNull(),
    sha256: text('sha256').notNull(),
    seed: bigint('seed', { mode: 'number' }),
    ...timestamps,
  },
  (t) => [uniqueIndex('images_job_index_idx').on(t.jobId, t.index)],
);

export const jobEvents = pgTable(
  'job_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    type: text('type').$type<JobEventType>().notNull(),
    status: text('status').$type<JobStatus>().notNull(),
    stage: text('stage').$type<JobStage>(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
    ...timestamps,
  },
  (t) => [index('job_events_job_idx').on(t.jobId, t.id)],
);

export const workers = pgTable('workers', {
  id: text('id').primaryKey(),
  host: text('host').notNull(),
  pid: integer('pid').notNull(),
  concurrency: integer('concurrency').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  heartbeatAt: timestamp('heartbeat_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/** The AIR catalogue served by the Civitai dialect's /v2/resources: one ResourceInfo document per AIR. */
export const resources = pgTable('resources', {
  air: text('air').primaryKey(),
  data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/**
 * One webhook message: what is sent where, and where it stands. The id is the Standard Webhooks
 * `webhook-id`, the same on every attempt, so receivers can drop repeats. A row is written in the
 * transaction of the job event that causes it (see webhooks/outbox.ts), so no committed event loses
 * its message.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    batchId: uuid('batch_id'),
    url: text('url').notNull(),
    /** `job.completed`, `job.status`, `job.image` or `batch.completed`. */
    event: text('event').$type<WebhookEventType>().notNull(),
    /** Whose payload is sent: darkroom's own envelope, or the dialect's status body the job came in through. */
    format: text('format').$type<WebhookFormat>().notNull(),
    /** What the body is rendered from when it must show a moment (the job at a status change); empty otherwise. */
    payload: jsonb('payload').$type<WebhookSnapshot | Record<string, never>>().notNull().default({}),
    status: text('status').$type<WebhookDeliveryStatus>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** Due time while pending (a claimed row's lease runs until then); null once delivered or failed. */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }).defaultNow(),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    ...timestamps,
    deliveredAt: timestamp('delivered_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_job_idx').on(t.jobId, t.createdAt),
    index('webhook_deliveries_batch_idx').on(t.batchId).where(sql`${t.batchId} is not null`),
    // A batch completes once, whichever of its jobs' transactions notices it.
    uniqueIndex('webhook_deliveries_batch_once_idx').on(t.batchId, t.url).where(sql`${t.event} = 'batch.completed'`),
  ],
);

export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deliveryId: text('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
    durationMs: integer('duration_ms').notNull(),
    statusCode: integer('status_code'),
    error: text('error'),
    /** When the next attempt was scheduled after this one; null when this one ended the delivery. */
    retryAt: timestamp('retry_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [uniqueIndex('webhook_attempts_delivery_idx').on(t.deliveryId, t.attempt)],
);


/**
 * Idempotency-Key records: the first successful answer to a job-creating request, replayed for
 * repeats of the same key by the same caller for 24 hours. A row is claimed ('pending') before the
 * request runs, so concurrent repeats wait for it instead of creating a second job; `claim` names
 * the request holding it. Rows older than 24 hours are ignored and pruned.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    /** Whose key it is: keys of different callers never meet. */
    scope: text('scope').notNull(),
    key: text('key').notNull(),
    /** sha256 of method, URL and body bytes: a repeat with another request is refused. */
    fingerprint: text('fingerprint').notNull(),
    state: text('state').$type<'pending' | 'done'>().notNull(),
    claim: text('claim').notNull(),
    statusCode: integer('status_code'),
    contentType: text('content_type'),
    body: text('body'),
    ...timestamps,
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index('idempotency_keys_created_idx').on(t.createdAt)],
);

/**
 * API keys. Only a SHA-256 of each key is kept: keys are 256 random bits, so a fast hash is as
 * safe as a slow one and lets every request be checked with one indexed lookup. `prefix` is the
 * key's first characters, shown in lists so a person can tell keys apart without the secret.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    scopes: jsonb('scopes').$type<string[]>().notNull().default([]),
    /** Caps of this key over the configured defaults; null keeps the default. */
    maxActiveJobs: integer('max_active_jobs'),
    maxBatchSize: integer('max_batch_size'),
    budget: jsonb('budget').$type<Budget>(),
    ...timestamps,
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [uniqueIndex('api_keys_hash_idx').on(t.hash)],
);

/**
 * Provider connection checks run as tasks (the tasks dialect's POST /test): a row is written when the
 * check starts and completed when it ends, so any api process can answer its status. Rows are kept
 * for a day.
 */
export const providerChecks = pgTable(
  'provider_checks',
  {
    id: uuid('id').primaryKey(),
    /** Who asked, as on jobs: only they (or an unscoped caller) may read it. */
    owner: text('owner'),
    provider: text('provider').notNull(),
    state: text('state').$type<'running' | 'done'>().notNull(),
    healthy: boolean('healthy'),
    detail: text('detail'),
    latencyMs: integer('latency_ms'),
    ...timestamps,
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('provider_checks_created_idx').on(t.createdAt)],
);

/**
 * What each owner's jobs cost per budget period (`2026-12-06`, `2026-12`): the estimates of jobs
 * not ended yet and the actual costs of those that ended.
 */
export const spend = pgTable(
  'spend',
  {
    owner: text('owner').notNull(),
    period: text('period').notNull(),
    amount: doublePrecision('amount').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.owner, t.period] })],
);

/**
 * Input images uploaded for later jobs. The bytes live in storage under a key derived from their
 * SHA-256 (shared with every job that uses them); the row goes when the upload expires, the bytes
 * only when no upload and no job refers to them any more.
 */
export const uploads = pgTable(
  'uploads',
  {
    id: uuid('id').primaryKey(),
    owner: text('owner'),
    key: text('key').notNull(),
    contentType: text('content_type').notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    bytes: integer('bytes').notNull(),
    sha256: text('sha256').notNull(),
    ...timestamps,
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [index('uploads_expires_idx').on(t.expiresAt), index('uploads_key_idx').on(t.key)],
);

/**
 * One row per provider: its circuit breaker and its upstream pause, shared by every process. All
 * times are the database's (`now()`), so processes on machines with skewed clocks agree.
 */
export const providerCircuits = pgTable('provider_circuits', {
  provider: text('provider').primaryKey(),
  state: text('state').$type<CircuitState>().notNull().default('closed'),
  /** Retryable failures and timeouts in a row; a success resets it. */
  consecutiveFailures: integer('consecutive_failures').notNull().default(0),
  openedAt: timestamp('opened_at', { withTimezone: true, mode: 'date' }),
  /** While open: when one probe may go through (the circuit turns half-open). */
  retryAt: timestamp('retry_at', { withTimezone: true, mode: 'date' }),
  /** While half-open: the job whose call is the probe, and until when its claim holds (a dead worker's claim lapses). */
  probeJobId: uuid('probe_job_id'),
  probeExpiresAt: timestamp('probe_expires_at', { withTimezone: true, mode: 'date' }),
  /** An upstream's Retry-After: nothing is sent to the provider before then. */
  pausedUntil: timestamp('paused_until', { withTimezone: true, mode: 'date' }),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/** Recent provider calls (submit, poll), for the error rate and latency that GET /providers shows; pruned after a few minutes. */
export const providerCalls = pgTable(
  'provider_calls',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    provider: text('provider').notNull(),
    /** How it ended: `ok`, `failure` (retryable or a timeout: what counts against the circuit), `rate_limited` or `refused`. */
    outcome: text('outcome').$type<CallOutcome['kind']>().notNull(),
    ms: integer('ms').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('provider_calls_provider_at_idx').on(t.provider, t.at)],
);

export const schema = { jobs, images, jobEvents, workers, resources, webhookDeliveries, webhookAttempts, idempotencyKeys, apiKeys, providerChecks, uploads, spend, providerCircuits, providerCalls };
