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

/** Jobs stored by one group commit at most: a bound on one statement's size. */
const MAX_GROUP_ROWS = 1000;

/** A submission waiting for its group's transaction. */
interface PendingInsert {
  rows: NewJob[];
  cap?: ActiveCap;
  budget?: BudgetCharge;
  resolve: (jobs: Job[]) => void;
  reject: (error: unknown) => void;
}

/**
 * All SQL about jobs, images, events and workers. Status changes are compare-and-set
 * (`UPDATE … WHERE status IN (expected)`), so when two actors race only one of them wins; a turn's
 * writes also carry its lease's fencing token (`AND lease_token = $token`).
 */
export function makeJobRepository(db: Db, options: JobRepositoryOptions = {}): JobStore {
  const toJob = (row: typeof jobs.$inferSelect): Job => {
    const { idempotencyKey, leaseToken, leaseExpiresAt, spendPeriod, ...job } = row;
    return job;
  };

  const committed = (events: JobEvent[], outboxWrote = false) => {
    if (events.length > 0) options.onEvents?.(events);
    if (outboxWrote) options.onOutboxCommitted?.();
  };
  const toOutbox = async (tx: Db, events: JobEvent[], job: Job): Promise<boolean> =>
    events.length > 0 && options.outbox ? options.outbox(tx, events.map((event) => ({ event, job }))) : false;

  /** Serialises, across processes, everything that reads or changes one owner's spend. */
  const lockSpend = (tx: Db, owner: string) => tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`darkroom:spend:${owner}`}, 0))`);

  /**
   * In the transaction that ends a job: its actual cost replaces its estimate in the spend row it
   * was charged to. Runs once per job, since only one transition ever ends it (compare-and-set); a
   * job whose actual cost is unknown keeps its estimate charged.
   */
  async function settleSpend(tx: Db, row: typeof jobs.$inferSelect): Promise<void> {
    const estimated = row.cost?.estimated;
    const actual = row.cost?.actual;
    if (row.spendPeriod === null || row.owner === null || estimated == null || actual == null) return;
    const correction = Math.round((actual - estimated) * 1e6) / 1e6;
    if (correction === 0) return;
    await lockSpend(tx, row.owner);
    await tx
      .update(spend)
      .set({ amount: sql`${spend.amount} + ${correction}` })
      .where(and(eq(spend.owner, row.owner), eq(spend.period, row.spendPeriod)));
  }

  /**
   * Group commit: a submission that arrives while another group's transaction runs waits for it and
   * goes in the next group, all of whose jobs are stored in one transaction with one multi-row insert
   * (and their events with another). An idle server commits a lone submission at once, so nothing
   * waits on a timer; under load, groups grow with it. Each submission is still judged alone against
   * its owner's cap and budget, in arrival order, and is refused alone.
   */
  const waiting: PendingInsert[] = [];
  let committing = false;

  function insertJobs(rows: NewJob[], cap?: ActiveCap, budget?: BudgetCharge): Promise<Job[]> {
    return new Promise<Job[]>((resolve, reject) => {
      waiting.push({ rows, cap, budget, resolve, reject });
      if (committing) return;
      committing = true;
      // One turn of the event loop first: requests already received are parsed and join this group.
      // PGlite runs a query without yielding to I/O, so without it every group would be one.
      setImmediate(() => void commitWaiting());
    });
  }

  async function commitWaiting(): Promise<void> {
    try {
      while (waiting.length > 0) {
        let taken = 0;
        let rowCount = 0;
        while (taken < waiting.length && (taken === 0 || rowCount + (waiting[taken]?.rows.length ?? 0) <= MAX_GROUP_ROWS)) {
          rowCount += waiting[taken]?.rows.length ?? 0;
          taken += 1;
        }
        await commitGroup(waiting.splice(0, taken));
      }
    } finally {
      committing = false;
    }
  }

  async function commitGroup(group: PendingInsert[]): Promise<void> {
    let outcome: { accepted: Map<PendingInsert, Job[]>; refused: Map<PendingInsert, Error>; events: JobEvent[] };
    try {
      outcome = await db.transaction((tx) => storeGroup(tx, group));
    } catch (error) {
      // One bad submission (a constraint it breaks) must not sink the others: each goes again alone.
      if (group.length === 1) group[0]?.reject(error);
      else for (const pending of group) await commitGroup([pending]);
      return;
    }
    for (const pending of group) {
      const refusal = outcome.refused.get(pending);
      if (refusal) pending.reject(refusal);
      else pending.resolve(outcome.accepted.get(pending) ?? []);
    }
    committed(outcome.events);
  }

  async function storeGroup(tx: Db, group: PendingInsert[]) {
    const refused = new Map<PendingInsert, Error>();
    // Locks in one order in every process (budgets, then caps, each sorted), so groups never deadlock.
    const budgetKeys = [...new Set(group.flatMap(({ budget }) => (budget ? [`${budget.owner}\n${budget.period}`] : [])))].sort();
    const capOwners = [...new Set(group.flatMap(({ cap }) => (cap ? [cap.owner ?? ''] : [])))].sort();
    const spent = new Map<string, number>();
    for (const key of budgetKeys) {
      const [owner = '', period = ''] = key.split('\n');
      await lockSpend(tx, owner);
      const [current] = await tx.select({ amount: spend.amount }).from(spend).where(and(eq(spend.owner, owner), eq(spend.period, period)));
      spent.set(key, current?.amount ?? 0);
    }
    const active = new Map<string, number>();
    for (const owner of capOwners) {
      // Serialises one owner's inserts, so two concurrent groups cannot both pass the count.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`darkroom:active:${owner}`}, 0))`);
      const [counted] = await tx
        .select({ n: count() })
        .from(jobs)
        .where(and(ownerIs(owner === '' ? null : owner), inArray(jobs.status, ['queued', 'running'])));
      active.set(owner, counted?.n ?? 0);
    }

    const charges = new Map<string, BudgetCharge>();
    const accepted: PendingInsert[] = [];
    for (const pending of group) {
      const { budget, cap, rows } = pending;
      const budgetKey = budget ? `${budget.owner}\n${budget.period}` : undefined;
      const spentSoFar = budgetKey === undefined ? 0 : (spent.get(budgetKey) ?? 0);
      // Micro-units: the sum of many estimates must not drift past an amount it exactly reaches.
      if (budget && Math.round((spentSoFar + budget.cost) * 1e6) > Math.round(budget.amount * 1e6)) {
        refused.set(pending, new BudgetExceeded(spentSoFar, budget.amount, budget.cost));
        continue;
      }
      const activeSoFar = cap ? (active.get(cap.owner ?? '') ?? 0) : 0;
      if (cap && activeSoFar + rows.length > cap.max) {
        refused.set(pending, new ActiveCapExceeded(activeSoFar, cap.max));
        continue;
      }
      if (budget && budgetKey !== undefined) {
        spent.set(budgetKey, spentSoFar + budget.cost);
        const charge = charges.get(budgetKey);
        charges.set(budgetKey, { ...budget, cost: (charge?.cost ?? 0) + budget.cost });
      }
      if (cap) active.set(cap.owner ?? '', activeSoFar + rows.length);
      accepted.push(pending);
    }

    for (const charge of charges.values()) {
      await tx
        .insert(spend)
        .values({ owner: charge.owner, period: charge.period, amount: charge.cost })
        .onConflictDoUpdate({ target: [spend.owner, spend.period], set: { amount: sql`${spend.amount} + ${charge.cost}` } });
    }
    // The period each job's estimate was charged to, where its actual cost settles when it ends.
    const rows = accepted.flatMap((pending) => pending.rows.map((row) => ({ ...row, spendPeriod: pending.budget?.period ?? null })));
    const inserted = rows.length > 0 ? await tx.insert(jobs).values(rows).returning() : [];
    const events =
      inserted.length > 0
        ? await tx
            .insert(jobEvents)
            .values(inserted.map((job) => ({ jobId: job.id, type: 'created' as const, status: job.status, data: {} })))
            .returning()
        : [];
    const byId = new Map(inserted.map((row) => [row.id, toJob(row)]));
    const stored = new Map(accepted.map((pending) => [pending, pending.rows.map((row) => byId.get(row.id)).filter((job) => job !== undefined)]));
    return { accepted: stored, refused, events };
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
      if (isTerminal(to)) await settleSpend(tx, row);
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
   * A job's last step in one transaction: its image rows (a repeated index replaces the earlier row,
   * so a retried store never doubles), their `image` events, and the move to `succeeded` with its
   * status event. Only while the job is running and its lease is still `lease`.
   */
  async function succeed(jobId: string, rows: NewImage[], patch: JobPatch, event: EventInput, lease?: LeaseToken): Promise<Job | null> {
    if (rows.some((row) => row.jobId !== jobId)) throw new Error(`succeed: every image row must belong to job ${jobId}`);
    assertTransition('running', 'succeeded');
    const done = await db.transaction(async (tx) => {
      // Locks the row, so a cancel or a takeover waits for this transaction rather than passing it.
      const [running] = await tx
        .select()
        .from(jobs)
        .where(and(eq(jobs.id, jobId), eq(jobs.status, 'running'), leaseIs(lease)))
        .for('update');
      if (!running) return null;
      if (rows.length > 0) {
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
      }
      const [row] = await tx
        .update(jobs)
        .set({ ...patch, status: 'succeeded', updatedAt: new Date() })
        .where(eq(jobs.id, jobId))
        .returning();
      if (!row) return null;
      await settleSpend(tx, row);
      // One insert, in order: the images as they were stored, then the status.
      const events = await tx
        .insert(jobEvents)
        .values([
          ...rows.map((image) => ({
            jobId,
            type: 'image' as const,
            status: 'running' as const,
            stage: 'storing' as const,
            data: { index: image.index, width: image.width, height: image.height, contentType: image.contentType },
          })),
          { jobId, type: event.type, status: 'succeeded' as const, stage: row.stage, data: event.data ?? {} },
        ])
        .returning();
      const before = toJob(running);
      const job = toJob(row);
      const written = events.map((written) => ({ event: written, job: written.status === 'succeeded' ? job : before }));
      return { job, events, outboxWrote: options.outbox ? await options.outbox(tx, written) : false };
    });
    if (!done) return null;
    options.onTransition?.(done.job, ['running']);
    committed(done.events, done.outboxWrote);
    return done.job;
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

  async function spendOf(owner: string, period: string): Promise<number> {
    const [row] = await db.select({ amount: spend.amount }).from(spend).where(and(eq(spend.owner, owner), eq(spend.period, period)));
    return Math.round((row?.amount ?? 0) * 1e6) / 1e6;
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
    succeed,
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
    spendOf,
    acquireLease,
    renewLease,
    releaseLease,
    heartbeat,
    removeWorker,
    listWorkers,
  };
}
