import { eq, sql } from 'drizzle-orm';
import { v7 as uuidv7 } from 'uuid';
import { isTerminal, type Job, type JobEvent } from '../core/job.ts';
import { NATIVE_WEBHOOK_FORMAT, type Jsonified, type WebhookEventType, type WebhookFormat, type WebhookSnapshot } from '../core/ports/webhooks.ts';
import type { Db } from './client.ts';
import type { EventOutbox } from './jobs-repository.ts';
import { images, jobs } from './schema.ts';
import type { NewWebhookDelivery, WebhookRepository } from './webhooks-repository.ts';

/** First key of the advisory locks that serialise a batch's last completions (the second is the batch's hash). */
const BATCH_LOCK_CLASS = 724_113_002;

const newDeliveryId = () => `msg_${uuidv7()}`;

const toJson = <T>(value: T): Jsonified<T> => JSON.parse(JSON.stringify(value)) as Jsonified<T>;

/**
 * Which messages one job event causes for its job's own subscription. A dialect's callback, as
 * its service's, only tells of the end; darkroom's own webhooks follow `webhookEvents`.
 */
function eventTypesFor(event: JobEvent, job: Job, format: WebhookFormat): WebhookEventType[] {
  if (!job.request.webhook) return [];
  const finished = event.type === 'status' && isTerminal(event.status);
  if (format !== NATIVE_WEBHOOK_FORMAT) return finished ? ['job.completed'] : [];
  const wanted = job.request.webhookEvents ?? ['completed'];
  const types: WebhookEventType[] = [];
  if (event.type === 'status' && wanted.includes('status')) types.push('job.status');
  if (finished && wanted.includes('completed')) types.push('job.completed');
  if (event.type === 'image' && wanted.includes('image')) types.push('job.image');
  if (event.type === 'failover' && wanted.includes('failover')) types.push('job.failover');
  return types;
}

/**
 * Writes the webhook deliveries that job events cause, inside the events' own transaction: an event
 * that commits has its deliveries, one that rolls back has none. Jobs of the dialects in
 * `ownPayloadDialects` get their service's payload; every other job darkroom's own.
 */
export function makeWebhookOutbox(repo: WebhookRepository, ownPayloadDialects: ReadonlySet<string>): EventOutbox {
  const formatOf = (job: Pick<Job, 'dialect'>): WebhookFormat => (ownPayloadDialects.has(job.dialect) ? job.dialect : NATIVE_WEBHOOK_FORMAT);
  return async (tx, written) => {
    const rows: NewWebhookDelivery[] = [];
    const imagesOf = new Map<string, WebhookSnapshot['images']>();
    const finishedBatches = new Set<string>();
    for (const { event, job } of written) {
      if (job.batchId && event.type === 'status' && isTerminal(event.status)) finishedBatches.add(job.batchId);
      const format = formatOf(job);
      const types = eventTypesFor(event, job, format);
      if (types.length === 0) continue;
      let payload: WebhookSnapshot | Record<string, never> = {};
      // Only darkroom's envelope shows a moment; a dialect's body is its finished job, read when sent.
      if (format === NATIVE_WEBHOOK_FORMAT) {
        if (!imagesOf.has(job.id)) imagesOf.set(job.id, (await tx.select().from(images).where(eq(images.jobId, job.id))).map(toJson));
        const imageIndex = event.type === 'image' && typeof event.data.index === 'number' ? event.data.index : null;
        const failover = event.type === 'failover' ? { from: String(event.data.from), to: String(event.data.to), reason: String(event.data.reason) } : undefined;
        payload = { job: toJson(job), images: imagesOf.get(job.id) ?? [], imageIndex, ...(failover ? { failover } : {}) };
      }
      for (const type of types) {
        rows.push({ id: newDeliveryId(), jobId: job.id, batchId: job.batchId, url: job.request.webhook as string, event: type, format, payload });
      }
    }
    for (const batchId of finishedBatches) rows.push(...(await batchCompletion(tx, batchId, written)));
    await repo.insert(tx, rows);
    return rows.length > 0;
  };
}

/**
 * `batch.completed` deliveries when this transaction finishes the batch's last job: one per distinct
 * URL among the batch's jobs that asked for it. Two last jobs finishing at once would each see the
 * other unfinished and neither would send it, so the check waits on a lock per batch: whichever
 * transaction gets it second sees the first one committed.
 */
async function batchCompletion(tx: Db, batchId: string, written: { job: Job }[]): Promise<NewWebhookDelivery[]> {
  await tx.execute(sql`select pg_advisory_xact_lock(${BATCH_LOCK_CLASS}, hashtext(${batchId}))`);
  const [state] = await tx
    .select({
      unfinished: sql<number>`count(*) filter (where ${jobs.status} in ('queued', 'running'))`.mapWith(Number),
      urls: sql<string[]>`coalesce(jsonb_agg(distinct ${jobs.request}->>'webhook') filter (where ${jobs.request}->'webhookEvents' @> '["batch.completed"]'), '[]'::jsonb)`,
    })
    .from(jobs)
    .where(eq(jobs.batchId, batchId));
  if (!state || state.unfinished > 0 || state.urls.length === 0) return [];
  const last = written.find(({ job }) => job.batchId === batchId)?.job;
  if (!last) return [];
  return state.urls.map((url) => ({ id: newDeliveryId(), jobId: last.id, batchId, url, event: 'batch.completed' as const, format: NATIVE_WEBHOOK_FORMAT }));
}
