import { presentJobStatus } from '../api/dialects/civitai/job-status.ts';
import { presentImage, presentJob } from '../api/dialects/native/present.ts';
import { presentStatus, runpodData } from '../api/dialects/runpod/present.ts';
import { SYSTEM_CALLER } from '../core/caller.ts';
import type { JobService, ScopedJobs } from '../core/job-service.ts';
import type { Job, JobImage } from '../core/job.ts';
import type { WebhookDelivery, Jsonified, WebhookSnapshot } from '../core/ports/webhooks.ts';

/** What rendering needs of the core: JobService has it all. */
export type PayloadSource = Pick<JobService, 'for' | 'viewAt'>;

const orNull = (text: string | null) => (text === null ? null : new Date(text));

function reviveJob(json: Jsonified<Job>): Job {
  return {
    ...json,
    runAfter: new Date(json.runAfter),
    createdAt: new Date(json.createdAt),
    updatedAt: new Date(json.updatedAt),
    startedAt: orNull(json.startedAt),
    completedAt: orNull(json.completedAt),
    deadlineAt: orNull(json.deadlineAt),
  };
}

const reviveImage = (json: Jsonified<JobImage>): JobImage => ({ ...json, createdAt: new Date(json.createdAt) });

const isSnapshot = (payload: WebhookDelivery['payload']): payload is WebhookSnapshot => 'job' in payload;

/**
 * The body of one attempt, as JSON text. It is rendered at each attempt rather than stored, so the
 * image links in it are freshly signed even when an attempt comes hours after the event; what the
 * body describes does not change: a job at the moment of its event (from the snapshot taken then),
 * or a finished job or batch, which stays as it is.
 *
 * - native: a Standard Webhooks envelope `{type, timestamp, data}` with `data` the job as the native
 *   API shows it (plus `image`, the announced one, for `job.image`), or the batch as GET /batches/{id}.
 * - civitai: the v1 JobStatus, as GET /v1/consumer/jobs/{jobId} answers it.
 * - runpod: the job's /status body, under the id the client knows (a retried job's original id).
 */
export function makePayloadRenderer(source: PayloadSource) {
  // A delivery is darkroom's own work about a job it already accepted: no caller's scope applies.
  const jobs: Pick<ScopedJobs, 'get' | 'events' | 'readImage' | 'getBatch'> = source.for(SYSTEM_CALLER);
  return async function render(delivery: WebhookDelivery): Promise<string> {
    switch (delivery.format) {
      case 'native':
        return JSON.stringify({ type: delivery.event, timestamp: delivery.createdAt.toISOString(), data: await nativeData(delivery) });
      case 'civitai': {
        const [job, events] = await Promise.all([jobs.get(delivery.jobId), jobs.events(delivery.jobId)]);
        return JSON.stringify(presentJobStatus(job, events.at(-1), false));
      }
      case 'runpod': {
        const job = await jobs.get(delivery.jobId);
        const data = runpodData(job);
        if (!data) throw new Error(`job ${job.id} is not a RunPod-dialect job`);
        return JSON.stringify(await presentStatus(data.retryOf ?? job.id, job, data, (id, index) => jobs.readImage(id, index)));
      }
      default:
        throw new Error(`delivery ${delivery.id} has a format no dialect renders: ${delivery.format}`);
    }
  };

  async function nativeData(delivery: WebhookDelivery): Promise<unknown> {
    if (delivery.event === 'batch.completed') {
      const batch = await jobs.getBatch(delivery.batchId as string);
      return { ...batch, jobs: batch.jobs.map(presentJob) };
    }
    const { payload } = delivery;
    if (!isSnapshot(payload)) throw new Error(`delivery ${delivery.id} has no job snapshot`);
    const view = await source.viewAt(reviveJob(payload.job), payload.images.map(reviveImage));
    const image = view.images.find((candidate) => candidate.index === payload.imageIndex);
    return { ...presentJob(view), ...(image ? { image: presentImage(image) } : {}) };
  }
}
