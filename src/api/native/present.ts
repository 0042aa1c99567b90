import type { Static } from 'typebox';
import type { ImageView, JobView } from '../../core/job-service.ts';
import type { JobEvent } from '../../core/job.ts';
import type { EventsResponse, ImageSchema, JobSchema } from './schemas.ts';

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

