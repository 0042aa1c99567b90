import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgTable,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { JobError, JobEventType, JobStage, JobStatus, JobTimings } from '../core/job.ts';
import type { GenerationRequest } from '../core/request.ts';

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
  },
  (t) => [
    index('jobs_status_id_idx').on(t.status, t.id),
    index('jobs_owner_id_idx').on(t.owner, t.id),
    index('jobs_batch_idx').on(t.batchId),
    index('jobs_dialect_id_idx').on(t.dialect, t.id),
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

export const schema = { jobs, images, jobEvents, workers, resources };
