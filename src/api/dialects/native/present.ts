import type { Static } from 'typebox';
import type { ImageView, JobView } from '../../../core/job-service.ts';
import type { JobEvent, Job, JobImage } from '../../../core/job.ts';
import type { EventsResponse, ImageSchema, JobSchema, JobStreamEventSchema } from '../../../protocols/native/schemas.ts';
import type { ApiKey } from '../../../core/ports/stores.ts';
import type { DeliveryLogEntry, Jsonified, WebhookDelivery, WebhookSnapshot } from '../../../core/ports/webhooks.ts';
import type { KeySchema, WebhookDeliverySchema } from './schemas.ts';
import { SYSTEM_CALLER } from '../../../core/caller.ts';
import type { PayloadSource } from '../../http/dialect.ts';
import { stintAttempts } from '../../../core/failover.ts';

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export function presentImage(image: ImageView): Static<typeof ImageSchema> {
  return { ...image, expiresAt: image.expiresAt.toISOString() };
}

/** The native wire shape of a job: what the API promises, nothing of the row it does not. */
export function presentJob(job: JobView): Static<typeof JobSchema> {
  return {
    id: job.id,
    batchId: job.batchId,
    status: job.status,
    stage: job.stage,
    progress: job.progress,
    queuePosition: job.queuePosition,
    priority: job.priority,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    provider: job.provider,
    providerJobId: job.providerJobId,
    fallback: job.fallback,
    providerHistory: stintAttempts(job),
    request: job.request,
    error: job.error,
    timings: job.timings,
    createdAt: job.createdAt.toISOString(),
    startedAt: iso(job.startedAt),
    completedAt: iso(job.completedAt),
    deadlineAt: iso(job.deadlineAt),
    images: job.images.map(presentImage),
    imagesExpiredAt: iso(job.imagesExpiredAt),
    cost: job.cost,
    usage: job.usage,
    inputs: job.inputs,
  };
}

export function presentEvents(events: JobEvent[]): Static<typeof EventsResponse> {
  return { items: events.map((event) => ({ ...event, createdAt: event.createdAt.toISOString() })) };
}

const numberOrNull = (value: unknown) => (typeof value === 'number' ? value : null);
const text = (value: unknown) => (typeof value === 'string' ? value : '');

/**
 * One job_events row as a server-sent event. `image` is the stored image the row announces, when
 * it still exists, for its signed links. A job's creation row is its first status event (queued).
 */
export function presentStreamEvent(event: JobEvent, image?: ImageView): Static<typeof JobStreamEventSchema> {
  const base = { id: event.id, jobId: event.jobId, status: event.status, stage: event.stage, at: event.createdAt.toISOString() };
  switch (event.type) {
    case 'created':
    case 'status': {
      const error = event.data.error as Static<typeof JobSchema>['error'] | undefined;
      return { type: 'status', ...base, error: error ?? null };
    }
    case 'stage':
      return { type: 'stage', ...base };
    case 'progress':
      return { type: 'progress', ...base, progress: numberOrNull(event.data.progress), queuePosition: numberOrNull(event.data.queuePosition) };
    case 'failover':
      return { type: 'failover', ...base, from: text(event.data.from), to: text(event.data.to), reason: text(event.data.reason) };
    case 'image':
      return {
        type: 'image',
        ...base,
        image: {
          index: numberOrNull(event.data.index) ?? 0,
          width: numberOrNull(event.data.width) ?? image?.width ?? 0,
          height: numberOrNull(event.data.height) ?? image?.height ?? 0,
          contentType: typeof event.data.contentType === 'string' ? event.data.contentType : (image?.contentType ?? 'application/octet-stream'),
          url: image?.url ?? null,
          thumbnailUrl: image?.thumbnailUrl ?? null,
          expiresAt: image ? image.expiresAt.toISOString() : null,
        },
      };
  }
}

export function presentKey(key: ApiKey): Static<typeof KeySchema> {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    maxActiveJobs: key.maxActiveJobs,
    maxBatchSize: key.maxBatchSize,
    budget: key.budget,
    createdAt: key.createdAt.toISOString(),
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}


/** API key management under /api/v1/keys: admin scope only. */

export function presentDelivery(entry: DeliveryLogEntry): Static<typeof WebhookDeliverySchema> {
  return {
    id: entry.id,
    url: entry.url,
    event: entry.event,
    format: entry.format,
    status: entry.status,
    createdAt: entry.createdAt.toISOString(),
    deliveredAt: entry.deliveredAt?.toISOString() ?? null,
    nextAttemptAt: entry.status === 'pending' ? (entry.nextAttemptAt?.toISOString() ?? null) : null,
    attempts: entry.attemptLog.map((attempt) => ({
      attempt: attempt.attempt,
      at: attempt.startedAt.toISOString(),
      durationMs: attempt.durationMs,
      statusCode: attempt.statusCode,
      error: attempt.error,
      retryAt: attempt.retryAt?.toISOString() ?? null,
    })),
  };
}

/** The delivery log of a job's webhooks, under /api/v1. */

const orNull = (text: string | null) => (text === null ? null : new Date(text));

function reviveJob(json: Jsonified<Job>): Job {
  return {
    ...json,
    runAfter: new Date(json.runAfter),
    createdAt: new Date(json.createdAt),
    updatedAt: new Date(json.updatedAt),
    startedAt: orNull(json.startedAt),
    completedAt: orNull(json.completedAt),
    // Snapshots taken before retention (or failover) existed have no such field.
    imagesExpiredAt: orNull(json.imagesExpiredAt ?? null),
    fallback: json.fallback ?? false,
    providerHistory: json.providerHistory ?? [],
    deadlineAt: orNull(json.deadlineAt),
    usage: json.usage ?? null,
  };
}

const reviveImage = (json: Jsonified<JobImage>): JobImage => ({ ...json, createdAt: new Date(json.createdAt) });

const isSnapshot = (payload: WebhookDelivery['payload']): payload is WebhookSnapshot => 'job' in payload;

/**
 * darkroom's own webhook body: a Standard Webhooks envelope `{type, timestamp, data}` with `data` the
 * job as the API shows it at the moment of its event (plus `image`, the announced one, for
 * `job.image`), or the batch as GET /batches/{id} shows it.
 */
export async function presentWebhook(delivery: WebhookDelivery, source: PayloadSource): Promise<unknown> {
  return { type: delivery.event, timestamp: delivery.createdAt.toISOString(), data: await webhookData(delivery, source) };
}

async function webhookData(delivery: WebhookDelivery, source: PayloadSource): Promise<unknown> {
  if (delivery.event === 'batch.completed') {
    const batch = await source.for(SYSTEM_CALLER).getBatch(delivery.batchId as string);
    return { ...batch, jobs: batch.jobs.map(presentJob) };
  }
  const { payload } = delivery;
  if (!isSnapshot(payload)) throw new Error(`delivery ${delivery.id} has no job snapshot`);
  const view = await source.viewAt(reviveJob(payload.job), payload.images.map(reviveImage));
  const image = view.images.find((candidate) => candidate.index === payload.imageIndex);
  return { ...presentJob(view), ...(image ? { image: presentImage(image) } : {}), ...(payload.failover ? { failover: payload.failover } : {}) };
}
