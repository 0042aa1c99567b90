import { and, asc, count, desc, eq, gt, gte, inArray, lt, max, sql } from 'drizzle-orm';
import { assertTransition, isTerminal, TERMINAL_STATUSES, type Job, type JobEvent, type JobImage, type JobStatus } from '../core/job.ts';
import {
  ActiveCapExceeded,
  BudgetExceeded,
  type ActiveCap,
  type BudgetCharge,
  type OwnerCosts,
  type CountFilter,
  type EventInput,
  type JobPatch,
  type JobStore,
  type LeaseClaim,
  type LeaseToken,
  type ListQuery,
  type NewImage,
  type NewJob,
  type WorkerInfo,
} from '../core/ports/job-store.ts';
import type { Db } from './client.ts';
import { images, jobEvents, jobs, spend, workers } from './schema.ts';

const ownerIs = (owner: string | null) => (owner === null ? sql`${jobs.owner} is null` : eq(jobs.owner, owner));
const millis = (ms: number) => sql`(${ms} * interval '1 millisecond')`;
/** The fence of a turn's write: the job's lease is still the one taken with `lease` (no condition without one). */
const leaseIs = (lease: LeaseToken | undefined) => (lease === undefined ? undefined : eq(jobs.leaseToken, lease));

export interface JobRepositoryOptions {
  /** Told of every committed status change (for logs). */
  onTransition?: (job: Job, from: readonly JobStatus[]) => void;
  /** Told of every committed job_events row: the feed of the event bus. */
  onEvents?: (events: JobEvent[]) => void;
  /** Writes what must commit or roll back together with job events (webhook deliveries). */
  outbox?: EventOutbox;
  /** Told after a transaction commits in which the outbox wrote something (to wake its reader). */
  onOutboxCommitted?: () => void;
}

/**
 * Called inside every transaction that adds job_events rows to existing jobs (a job's creation is
 * nobody's event), with each row and its job as the transaction leaves it. Answers whether it wrote
 * anything.
 */
export type EventOutbox = (tx: Db, written: { event: JobEvent; job: Job }[]) => Promise<boolean>;

/**
 * All SQL about jobs, images, events and workers. Status changes are compare-and-set
 * (`UPDATE … WHERE status IN (expected)`), so when two actors race only one of them wins; a turn's
 * writes also carry its lease's fencing token (`AND lease_token = $token`).
 */
export function makeJobRepository(db: Db, options: JobRepositoryOptions = {}): JobStore {
  const toJob = (row: typeof jobs.$inferSelect): Job => {
    const { idempotencyKey, leaseToken, leaseExpiresAt, ...job } = row;
    return job;
  };

  const committed = (events: JobEvent[], outboxWrote = false) => {
    if (events.length > 0) options.onEvents?.(events);
    if (outboxWrote) options.onOutboxCommitted?.();
  };
  const toOutbox = async (tx: Db, events: JobEvent[], job: Job): Promise<boolean> =>
    events.length > 0 && options.outbox ? options.outbox(tx, events.map((event) => ({ event, job }))) : false;

  async function insertJobs(rows: NewJob[], cap?: ActiveCap, budget?: BudgetCharge): Promise<Job[]> {
    const { inserted, events } = await db.transaction(async (tx) => {
      if (budget) {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`darkroom:spend:${budget.owner}`}, 0))`);
        const [current] = await tx.select({ amount: spend.amount }).from(spend).where(and(eq(spend.owner, budget.owner), eq(spend.period, budget.period)));
        const spent = current?.amount ?? 0;
        // Micro-units: the sum of many estimates must not drift past an amount it exactly reaches.
        if (Math.round((spent + budget.cost) * 1e6) > Math.round(budget.amount * 1e6)) throw new BudgetExceeded(spent, budget.amount, budget.cost);
        await tx
          .insert(spend)
          .values({ owner: budget.owner, period: budget.period, amount: budget.cost })
          .onConflictDoUpdate({ target: [spend.owner, spend.period], set: { amount: sql`${spend.amount} + ${budget.cost}` } });
      }
      if (cap) {
        // Serialises one owner's inserts, so two concurrent requests cannot both pass the count.
        await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`darkroom:active:${cap.owner ?? ''}`}, 0))`);
        const [active] = await tx
          .select({ n: count() })
          .from(jobs)
          .where(and(ownerIs(cap.owner), inArray(jobs.status, ['queued', 'running'])));
        const current = active?.n ?? 0;
        if (current + rows.length > cap.max) throw new ActiveCapExceeded(current, cap.max);
      }
      const inserted = await tx.insert(jobs).values(rows).returning();
      const events = await tx
        .insert(jobEvents)
        .values(inserted.map((job) => ({ jobId: job.id, type: 'created' as const, status: job.status, data: {} })))
        .returning();
      return { inserted, events };
    });
    committed(events);
    return inserted.map(toJob);
  }

  async function get(id: string): Promise<Job | null> {
    const [row] = await db.select().from(jobs).where(eq(jobs.id, id));
    return row ? toJob(row) : null;
  }

  async function list(query: ListQuery): Promise<Job[]> {
    const conditions = [];
    if (query.owner !== undefined) conditions.push(ownerIs(query.owner));
    if (query.status) conditions.push(eq(jobs.status, query.status));
    if (query.dialect) conditions.push(eq(jobs.dialect, query.dialect));
    if (query.after) conditions.push(lt(jobs.id, query.after));
    if (query.dialectData) conditions.push(sql`${jobs.dialectData} @> ${JSON.stringify(query.dialectData)}::jsonb`);
    const rows = await db
      .select()
      .from(jobs)
      .where(and(...conditions))
      .orderBy(desc(jobs.id))
      .limit(query.limit)
      .offset(query.offset ?? 0);
    return rows.map(toJob);
  }

  async function getMany(ids: string[]): Promise<Job[]> {
    if (ids.length === 0) return [];
    const rows = await db.select().from(jobs).where(inArray(jobs.id, ids)).orderBy(asc(jobs.id));
    return rows.map(toJob);
  }

  /** Merges `data` into a job's dialect data (whatever its status); only `owner`'s job when given. */
  async function mergeDialectData(id: string, data: Record<string, unknown>, owner?: string | null): Promise<Job | null> {
    const [row] = await db
      .update(jobs)
      .set({ dialectData: sql`${jobs.dialectData} || ${JSON.stringify(data)}::jsonb`, updatedAt: new Date() })
      .where(and(eq(jobs.id, id), owner === undefined ? undefined : ownerIs(owner)))
      .returning();
    return row ? toJob(row) : null;
  }

  /**
   * Sets `key` in a job's dialect data only if it is not set yet; true for the one caller that set
   * it. How a dialect hands something out exactly once, even to concurrent requests. Only `owner`'s
   * job when given.
   */
  async function claimDialectKey(id: string, key: string, value: unknown, owner?: string | null): Promise<boolean> {
    const rows = await db
      .update(jobs)
      .set({ dialectData: sql`${jobs.dialectData} || jsonb_build_object(${key}::text, ${JSON.stringify(value)}::jsonb)`, updatedAt: new Date() })
      .where(and(eq(jobs.id, id), sql`not (${jobs.dialectData} ? ${key})`, owner === undefined ? undefined : ownerIs(owner)))
      .returning({ id: jobs.id });
    return rows.length === 1;
  }

  async function listByBatch(batchId: string): Promise<Job[]> {
    const rows = await db.select().from(jobs).where(eq(jobs.batchId, batchId)).orderBy(asc(jobs.id));
    return rows.map(toJob);
  }

  /** Jobs that are not finished: what a restarted embedded process must carry on with. */
  async function listUnfinished(): Promise<Job[]> {
    const rows = await db
      .select()
      .from(jobs)
      .where(inArray(jobs.status, ['queued', 'running']))
      .orderBy(asc(jobs.id));
    return rows.map(toJob);
  }

  /** Unfinished jobs nobody has touched since `before`: candidates whose queue entry may be lost. */
  async function listStale(before: Date, limit: number): Promise<Job[]> {
    const rows = await db
      .select()
      .from(jobs)
      .where(and(inArray(jobs.status, ['queued', 'running']), lt(jobs.updatedAt, before)))
      .orderBy(asc(jobs.updatedAt))
      .limit(limit);
    return rows.map(toJob);
  }

  async function listMovable(provider: string, limit: number): Promise<Job[]> {
    const rows = await db
      .select()
      .from(jobs)
      .where(and(eq(jobs.status, 'queued'), eq(jobs.provider, provider), eq(jobs.fallback, true)))
      .orderBy(asc(jobs.id))
      .limit(limit);
    return rows.map(toJob);
  }

  /**
   * Moves a job to `to` only if its status is still one of `from`; returns the updated job, or null
   * when the job is missing or another actor changed its status first.
   */
  async function transition(
    id: string,
    from: readonly JobStatus[],
    to: JobStatus,
    patch: JobPatch = {},
    event: EventInput = { type: 'status' },
    lease?: LeaseToken,
  ): Promise<Job | null> {
    for (const status of from) assertTransition(status, to);
    const moved = await db.transaction(async (tx) => {
      const [row] = await tx
        .update(jobs)
        .set({ ...patch, status: to, updatedAt: new Date() })
        .where(and(eq(jobs.id, id), inArray(jobs.status, [...from]), leaseIs(lease)))
        .returning();
      if (!row) return null;
      const events = await tx
        .insert(jobEvents)
        .values({
          jobId: id,
          type: event.type,
          status: to,
          stage: row.stage,
          data: { ...event.data, ...(row.error && to !== 'succeeded' ? { error: row.error } : {}) },
        })
        .returning();
      const job = toJob(row);
      return { job, events, outboxWrote: await toOutbox(tx, events, job) };
    });
    if (!moved) return null;
    options.onTransition?.(moved.job, from);
    committed(moved.events, moved.outboxWrote);
    return moved.job;
  }

  /** Changes a job without changing its status, only while it still has `status` (and its lease is still `lease`). */
  async function update(id: string, status: JobStatus, patch: JobPatch, event?: EventInput, lease?: LeaseToken): Promise<Job | null> {
    const updated = await db.transaction(async (tx) => {
      const [row] = await tx
        .update(jobs)
        .set({ ...patch, updatedAt: new Date() })
        .where(and(eq(jobs.id, id), eq(jobs.status, status), leaseIs(lease)))
        .returning();
      if (!row) return null;
      const events = event
        ? await tx
            .insert(jobEvents)
            .values({ jobId: id, type: event.type, status, stage: row.stage, data: event.data ?? {} })
            .returning()
        : [];
      const job = toJob(row);
      return { job, events, outboxWrote: await toOutbox(tx, events, job) };
    });
    if (!updated) return null;
    committed(updated.events, updated.outboxWrote);
    return updated.job;
  }

  /**
   * Saves one job's image rows while it is running (and its lease is still `lease`); a repeated
   * index replaces the earlier row, so a retried store never doubles.
   */
  async function saveImages(jobId: string, rows: NewImage[], lease?: LeaseToken): Promise<boolean> {
    if (rows.some((row) => row.jobId !== jobId)) throw new Error(`saveImages: every row must belong to job ${jobId}`);
    const saved = await db.transaction(async (tx) => {
      // Locks the row, so a cancel or a takeover waits for this transaction rather than passing it.
      const [owner] = await tx
        .select()
        .from(jobs)
        .where(and(eq(jobs.id, jobId), eq(jobs.status, 'running'), leaseIs(lease)))
        .for('update');
      if (!owner) return null;
      if (rows.length === 0) return { events: [], outboxWrote: false };
      await tx
        .insert(images)
        .values(rows)
        .onConflictDoUpdate({
          target: [images.jobId, images.index],
          set: {
            originalKey: sql`excluded.original_key`,
            thumbnailKey: sql`excluded.thumbnail_key`,
            contentType: sql`excluded.content_type`,
            width: sql`excluded.width`,
            height: sql`excluded.height`,
            bytes: sql`excluded.bytes`,
            sha256: sql`excluded.sha256`,
            seed: sql`excluded.seed`,
          },
        });
      const events = await tx
        .insert(jobEvents)
        .values(
          rows.map((row) => ({
            jobId: row.jobId,
            type: 'image' as const,
            status: 'running' as const,
            stage: 'storing' as const,
            data: { index: row.index, width: row.width, height: row.height, contentType: row.contentType },
          })),
        )
        .returning();
      return { events, outboxWrote: await toOutbox(tx, events, toJob(owner)) };
    });
    if (!saved) return false;
    committed(saved.events, saved.outboxWrote);
    return true;
  }

  async function listImages(jobIds: string[]): Promise<JobImage[]> {
    if (jobIds.length === 0) return [];
    return db
      .select()
      .from(images)
      .where(inArray(images.jobId, jobIds))
      .orderBy(asc(images.jobId), asc(images.index));
  }

  async function expireImages(before: Date, limit: number): Promise<string[]> {
    const due = db
      .select({ id: jobs.id })
      .from(jobs)
      .where(and(eq(jobs.status, 'succeeded'), lt(jobs.completedAt, before), sql`${jobs.imagesExpiredAt} is null`))
      .orderBy(asc(jobs.completedAt))
      .limit(limit)
      .for('update', { skipLocked: true });
    const marked = await db.update(jobs).set({ imagesExpiredAt: new Date() }).where(inArray(jobs.id, due)).returning({ id: jobs.id });
    return marked.map((row) => row.id);
  }

  async function listImagesToPurge(limit: number): Promise<JobImage[]> {
    const rows = await db
      .select({ image: images })
      .from(images)
      .innerJoin(jobs, eq(jobs.id, images.jobId))
      .where(sql`${jobs.imagesExpiredAt} is not null`)
      .limit(limit);
    return rows.map((row) => row.image);
  }

  async function deleteFinishedJobs(before: Date, limit: number): Promise<Job[]> {
    const due = db
      .select({ id: jobs.id })
      .from(jobs)
      .where(
        and(
          inArray(jobs.status, [...TERMINAL_STATUSES]),
          lt(jobs.completedAt, before),
          sql`not exists (select 1 from ${images} where ${images.jobId} = ${jobs.id})`,
        ),
      )
      .orderBy(asc(jobs.completedAt))
      .limit(limit)
      .for('update', { skipLocked: true });
    const deleted = await db.delete(jobs).where(inArray(jobs.id, due)).returning();
    return deleted.map(toJob);
  }

  async function deleteImages(jobId: string): Promise<JobImage[]> {
    return db.delete(images).where(eq(images.jobId, jobId)).returning();
  }

  /** A job's events in order; `after` leaves out those up to and including that event id (for resuming); none unless the job is `owner`'s, when given. */
  async function listEvents(jobId: string, after?: number, owner?: string | null): Promise<JobEvent[]> {
    const conditions = [eq(jobEvents.jobId, jobId)];
    if (after !== undefined) conditions.push(gt(jobEvents.id, after));
    if (owner !== undefined) conditions.push(inArray(jobEvents.jobId, db.select({ id: jobs.id }).from(jobs).where(ownerIs(owner))));
    return db.select().from(jobEvents).where(and(...conditions)).orderBy(asc(jobEvents.id));
  }

  /** Every job's events after event id `after`, in id order, at most `limit`; only `owner`'s jobs when given. */
  async function listEventsAfter(after: number, limit: number, owner?: string | null): Promise<JobEvent[]> {
    const conditions = [gt(jobEvents.id, after)];
    if (owner !== undefined) conditions.push(inArray(jobEvents.jobId, db.select({ id: jobs.id }).from(jobs).where(ownerIs(owner))));
    return db.select().from(jobEvents).where(and(...conditions)).orderBy(asc(jobEvents.id)).limit(limit);
  }

  /** The id of the newest event (0 when there is none): where a stream of what happens next starts. */
  async function lastEventId(): Promise<number> {
    const [row] = await db.select({ id: max(jobEvents.id) }).from(jobEvents);
    return row?.id ?? 0;
  }

  /** `dialectData` narrows to jobs whose dialect data contains it (jsonb @>), e.g. one RunPod endpoint's jobs. */
  async function costsByOwner(owner?: string | null): Promise<OwnerCosts[]> {
    const rows = await db
      .select({
        owner: jobs.owner,
        currency: sql<string>`${jobs.cost} ->> 'currency'`,
        jobs: count(),
        estimated: sql<number>`coalesce(sum((${jobs.cost} ->> 'estimated')::float8), 0)`,
        actual: sql<number>`coalesce(sum((${jobs.cost} ->> 'actual')::float8), 0)`,
      })
      .from(jobs)
      .where(and(sql`${jobs.cost} is not null`, owner === undefined ? undefined : ownerIs(owner)))
      .groupBy(jobs.owner, sql`${jobs.cost} ->> 'currency'`)
      .orderBy(asc(jobs.owner));
    const micro = (value: number) => Math.round(Number(value) * 1e6) / 1e6;
    return rows.map((row) => ({ ...row, estimated: micro(row.estimated), actual: micro(row.actual) }));
  }

  async function countByStatus(filter: CountFilter = {}): Promise<Record<JobStatus, number>> {
    const conditions = [];
    if (filter.owner !== undefined) conditions.push(ownerIs(filter.owner));
    if (filter.dialect) conditions.push(eq(jobs.dialect, filter.dialect));
    if (filter.dialectData) conditions.push(sql`${jobs.dialectData} @> ${JSON.stringify(filter.dialectData)}::jsonb`);
    if (filter.scheduledAfter) conditions.push(gt(jobs.runAfter, filter.scheduledAfter));
    const rows = await db
      .select({ status: jobs.status, n: count() })
      .from(jobs)
      .where(and(...conditions))
      .groupBy(jobs.status);
    const counts: Record<JobStatus, number> = {
      queued: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
      cancelled: 0,
      expired: 0,
    };
    for (const row of rows) counts[row.status] = row.n;
    return counts;
  }

  async function acquireLease(id: string, durationMs: number): Promise<LeaseClaim> {
    const [taken] = await db
      .update(jobs)
      .set({ leaseToken: sql`${jobs.leaseToken} + 1`, leaseExpiresAt: sql`now() + ${millis(durationMs)}` })
      .where(
        and(
          eq(jobs.id, id),
          inArray(jobs.status, ['queued', 'running']),
          sql`(${jobs.leaseExpiresAt} is null or ${jobs.leaseExpiresAt} <= now())`,
        ),
      )
      .returning();
    if (taken) return { outcome: 'acquired', job: toJob(taken), token: taken.leaseToken };
    // Remaining time on the database's clock, the one the lease expires by.
    const [found] = await db
      .select({ row: jobs, expiresInMs: sql<number>`greatest(0, ceil(extract(epoch from (${jobs.leaseExpiresAt} - now())) * 1000))::float8` })
      .from(jobs)
      .where(eq(jobs.id, id));
    if (!found || isTerminal(found.row.status)) return { outcome: 'finished', job: found ? toJob(found.row) : null };
    // Expired between the two statements (or released): the caller asks again at once.
    return { outcome: 'held', job: toJob(found.row), expiresInMs: found.expiresInMs ?? 0 };
  }

  async function renewLease(id: string, token: LeaseToken, durationMs: number): Promise<boolean> {
    const rows = await db
      .update(jobs)
      .set({ leaseExpiresAt: sql`now() + ${millis(durationMs)}` })
      .where(and(eq(jobs.id, id), eq(jobs.leaseToken, token)))
      .returning({ id: jobs.id });
    return rows.length === 1;
  }

  async function releaseLease(id: string, token: LeaseToken): Promise<void> {
    await db
      .update(jobs)
      .set({ leaseExpiresAt: null })
      .where(and(eq(jobs.id, id), eq(jobs.leaseToken, token)));
  }

  async function heartbeat(worker: Omit<WorkerInfo, 'startedAt' | 'heartbeatAt'>): Promise<void> {
    await db
      .insert(workers)
      .values(worker)
      .onConflictDoUpdate({ target: workers.id, set: { heartbeatAt: new Date(), concurrency: worker.concurrency } });
  }

  async function removeWorker(id: string): Promise<void> {
    await db.delete(workers).where(eq(workers.id, id));
  }

  async function listWorkers(aliveSince: Date): Promise<WorkerInfo[]> {
    return db.select().from(workers).where(gte(workers.heartbeatAt, aliveSince)).orderBy(asc(workers.startedAt));
  }

  return {
    insertJobs,
    get,
    getMany,
    mergeDialectData,
    claimDialectKey,
    list,
    listByBatch,
    listUnfinished,
    listStale,
    listMovable,
    transition,
    update,
    saveImages,
    listImages,
    deleteImages,
    expireImages,
    listImagesToPurge,
    deleteFinishedJobs,
    listEvents,
    listEventsAfter,
    lastEventId,
    countByStatus,
    costsByOwner,
    acquireLease,
    renewLease,
    releaseLease,
    heartbeat,
    removeWorker,
    listWorkers,
  };
}
