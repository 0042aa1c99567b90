import type { Static } from 'typebox';
import type { ImageView, JobView } from '../../../core/job-service.ts';
import type { JobEvent } from '../../../core/job.ts';
import type { EventsResponse, ImageSchema, JobSchema, JobStreamEventSchema } from '../../../protocols/native/schemas.ts';

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
    request: job.request,
    error: job.error,
    timings: job.timings,
    createdAt: job.createdAt.toISOString(),
    startedAt: iso(job.startedAt),
    completedAt: iso(job.completedAt),
    deadlineAt: iso(job.deadlineAt),
    images: job.images.map(presentImage),
  };
}

export function presentEvents(events: JobEvent[]): Static<typeof EventsResponse> {
  return { items: events.map((event) => ({ ...event, createdAt: event.createdAt.toISOString() })) };
}

const numberOrNull = (value: unknown) => (typeof value === 'number' ? value : null);

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
