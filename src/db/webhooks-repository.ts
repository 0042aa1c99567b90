import { and, asc, eq, inArray, lt, lte, or, sql } from 'drizzle-orm';
import type { DeliveryLogEntry, WebhookDelivery, WebhookDeliveryStatus } from '../core/ports/webhooks.ts';
import type { Db } from './client.ts';
import { webhookAttempts, webhookDeliveries } from './schema.ts';

export type NewWebhookDelivery = typeof webhookDeliveries.$inferInsert;

/** What one attempt came to, as the delivery loop records it. */
export interface AttemptRecord {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  /**
   * `delivered` and `failed` end the delivery; a retry is scheduled `delayMs` from now unless that
   * falls after `giveUpAfterMs` from the delivery's creation, which fails it instead.
   */
  next: { kind: 'delivered' } | { kind: 'failed' } | { kind: 'retry'; delayMs: number; giveUpAfterMs: number };
}

export type WebhookRepository = ReturnType<typeof makeWebhookRepository>;

const millis = (ms: number) => sql`(${ms} * interval '1 millisecond')`;

/**
 * The SQL of webhook deliveries. Times that decide who attempts what come from the database's
 * clock (now()), so several worker processes agree on what is due whatever their own clocks say.
 */
export function makeWebhookRepository(db: Db) {
  return {
    async insert(tx: Db, rows: NewWebhookDelivery[]): Promise<void> {
      if (rows.length === 0) return;
      // The only unique key a fresh row can collide on is a batch's one completion: that one exists already.
      await tx.insert(webhookDeliveries).values(rows).onConflictDoNothing();
    },

    /**
     * Takes up to `limit` due deliveries for this process: their due time moves `leaseMs` ahead, so
     * no other process takes them meanwhile, and one whose process died is due again when the lease
     * ends. SKIP LOCKED lets concurrent claims pass each other instead of waiting.
     */
    async claim(limit: number, leaseMs: number): Promise<WebhookDelivery[]> {
      if (limit <= 0) return [];
      const due = db
        .select({ id: webhookDeliveries.id })
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.status, 'pending'), lte(webhookDeliveries.nextAttemptAt, sql`now()`)))
        .orderBy(asc(webhookDeliveries.nextAttemptAt))
        .limit(limit)
        .for('update', { skipLocked: true });
      return db
        .update(webhookDeliveries)
        .set({ nextAttemptAt: sql`now() + ${millis(leaseMs)}` })
        .where(inArray(webhookDeliveries.id, due))
        .returning();
    },

    /** Records an attempt and moves the delivery on; answers where it now stands (null: it had already ended). */
    async record(id: string, attempt: AttemptRecord): Promise<WebhookDeliveryStatus | null> {
      return db.transaction(async (tx) => {
        const { next } = attempt;
        const retryAt = next.kind === 'retry' ? sql`now() + ${millis(next.delayMs)}` : null;
        const givesUp = next.kind === 'retry' ? sql`${retryAt} > ${webhookDeliveries.createdAt} + ${millis(next.giveUpAfterMs)}` : null;
        const status =
          next.kind === 'retry'
            ? sql<WebhookDeliveryStatus>`case when ${givesUp} then 'failed' else 'pending' end`
            : next.kind;
        const [row] = await tx
          .update(webhookDeliveries)
          .set({
            attempts: sql`${webhookDeliveries.attempts} + 1`,
            status,
            nextAttemptAt: next.kind === 'retry' ? sql`case when ${givesUp} then null else ${retryAt} end` : null,
            lastStatusCode: attempt.statusCode,
            lastError: attempt.error,
            deliveredAt: next.kind === 'delivered' ? sql`now()` : null,
          })
          .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, 'pending')))
          .returning();
        if (!row) return null;
        await tx.insert(webhookAttempts).values({
          deliveryId: id,
          attempt: row.attempts,
          startedAt: attempt.startedAt,
          durationMs: attempt.durationMs,
          statusCode: attempt.statusCode,
          error: attempt.error,
          retryAt: row.status === 'pending' ? row.nextAttemptAt : null,
        });
        return row.status;
      });
    },

    /** Ends a claim without an attempt (shutdown): the delivery is due again at once. */
    async release(id: string): Promise<void> {
      await db
        .update(webhookDeliveries)
        .set({ nextAttemptAt: sql`now()` })
        .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, 'pending')));
    },

    /** Milliseconds until the next pending delivery is due (≤ 0: due now), or null when none is pending. */
    async nextDueInMs(): Promise<number | null> {
      const [row] = await db
        .select({ ms: sql<number | null>`(extract(epoch from (min(${webhookDeliveries.nextAttemptAt}) - now())) * 1000)::float8` })
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.status, 'pending'));
      return row?.ms ?? null;
    },

    /** The deliveries about a job, and its batch's completion, oldest first, each with its attempts. */
    async listForJob(jobId: string, batchId: string | null): Promise<DeliveryLogEntry[]> {
      const about = batchId
        ? or(eq(webhookDeliveries.jobId, jobId), and(eq(webhookDeliveries.batchId, batchId), eq(webhookDeliveries.event, 'batch.completed')))
        : eq(webhookDeliveries.jobId, jobId);
      const deliveries = await db.select().from(webhookDeliveries).where(about).orderBy(asc(webhookDeliveries.createdAt), asc(webhookDeliveries.id));
      if (deliveries.length === 0) return [];
      const attempts = await db
        .select()
        .from(webhookAttempts)
        .where(inArray(webhookAttempts.deliveryId, deliveries.map((delivery) => delivery.id)))
        .orderBy(asc(webhookAttempts.deliveryId), asc(webhookAttempts.attempt));
      return deliveries.map((delivery) => ({ ...delivery, attemptLog: attempts.filter((attempt) => attempt.deliveryId === delivery.id) }));
    },

    /** Deletes up to `limit` finished deliveries (delivered or given up) created before `before`, with their attempts; answers how many. */
    async prune(before: Date, limit: number): Promise<number> {
      const due = db
        .select({ id: webhookDeliveries.id })
        .from(webhookDeliveries)
        .where(and(inArray(webhookDeliveries.status, ['delivered', 'failed']), lt(webhookDeliveries.createdAt, before)))
        .limit(limit);
      return (await db.delete(webhookDeliveries).where(inArray(webhookDeliveries.id, due)).returning({ id: webhookDeliveries.id })).length;
    },
  };
}
