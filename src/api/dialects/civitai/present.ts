import { createHash } from 'node:crypto';
import type { JobView } from '../../../core/job-service.ts';
import { isTerminal, type JobEvent } from '../../../core/job.ts';
import { DEFAULT_MODEL_AIR, isRecord, type JobEventType } from '../../../protocols/civitai/orchestration.ts';
import { SYSTEM_CALLER } from '../../../core/caller.ts';
import type { WebhookDelivery } from '../../../core/ports/webhooks.ts';
import type { PayloadSource } from '../../http/dialect.ts';

/** The name darkroom goes by in `serviceProviders` and `lastEvent.provider`. */
const SERVICE_PROVIDER = 'darkroom';
const JOB_TYPE = 'TextToImageV2';

/** .NET TimeSpan text (`[d.]hh:mm:ss.fffffff`), the format of `jobDuration`. */
export function formatTimeSpan(milliseconds: number): string {
  const total = Math.max(0, Math.round(milliseconds));
  const days = Math.floor(total / 86_400_000);
  const pad = (value: number, width = 2) => String(value).padStart(width, '0');
  const clock = `${pad(Math.floor(total / 3_600_000) % 24)}:${pad(Math.floor(total / 60_000) % 60)}:${pad(Math.floor(total / 1000) % 60)}.${pad(total % 1000, 3)}0000`;
  return days > 0 ? `${days}.${clock}` : clock;
}

/** A stable key per image slot, known before the image exists (as the orchestrator's blob keys are). */
export function blobKey(jobId: string, index: number): string {
  return createHash('sha256').update(`${jobId}:${index}`).digest('hex').toUpperCase();
}

/** Megapixels × images × steps/20: deterministic, proportional to the work, and never billed. */
export function jobCost(job: JobView): number {
  const { width, height, numImages, steps } = job.request;
  return Math.round(((width * height) / 1_048_576) * numImages * ((steps ?? 20) / 20) * 10_000) / 10_000;
}

function eventType(job: JobView): JobEventType {
  switch (job.status) {
    case 'queued':
      return 'Initialized';
    case 'running':
      return job.stage === 'submitting' ? 'Claimed' : 'Updated';
    case 'succeeded':
      return 'Succeeded';
    // A permanent failure is a rejection: a client (or another darkroom) must not submit it again.
    case 'failed':
      return job.error?.retryable === false ? 'Rejected' : 'Failed';
    case 'expired':
      return 'Expired';
    case 'cancelled':
      return 'Deleted';
  }
}

function results(job: JobView): Record<string, unknown>[] {
  const { numImages, seed } = job.request;
  return Array.from({ length: numImages }, (_, index) => {
    const image = job.status === 'succeeded' ? job.images.find((candidate) => candidate.index === index) : undefined;
    if (image) {
      const result: Record<string, unknown> = {
        blobKey: blobKey(job.id, index),
        available: true,
        blobUrl: image.url,
        blobUrlExpirationDate: image.expiresAt.toISOString(),
      };
      if (image.seed !== null) result.seed = image.seed;
      return result;
    }
    const pending: Record<string, unknown> = { blobKey: blobKey(job.id, index), available: false };
    if (seed !== undefined) pending.seed = (seed + index) % 4294967296;
    return pending;
  });
}

/** The original JobRequest (or one rebuilt from the darkroom request), as `detailed=true` shows it. */
function jobSpec(job: JobView, properties: Record<string, unknown>, cost: number): Record<string, unknown> {
  const stored = job.dialectData.spec;
  const { request } = job;
  const spec = isRecord(stored)
    ? stored
    : {
        $type: 'textToImage',
        model: request.model ?? DEFAULT_MODEL_AIR,
        params: {
          prompt: request.prompt,
          negativePrompt: request.negativePrompt,
          scheduler: request.scheduler,
          steps: request.steps,
          cfgScale: request.cfgScale,
          width: request.width,
          height: request.height,
          seed: request.seed ?? -1,
        },
        additionalNetworks: request.additionalNetworks ?? {},
      };
  return {
    ...spec,
    quantity: request.numImages,
    type: JOB_TYPE,
    id: job.id,
    createdAt: job.createdAt.toISOString(),
    expireAt: job.deadlineAt?.toISOString() ?? null,
    properties,
    cost,
  };
}

/** A darkroom job as a v1 JobStatus. `lastEvent` is the newest entry of the job's history. */
export function presentJobStatus(job: JobView, latest: JobEvent | undefined, detailed: boolean): Record<string, unknown> {
  const properties = isRecord(job.dialectData.properties) ? job.dialectData.properties : {};
  const cost = jobCost(job);
  const finished = isTerminal(job.status);
  const context: Record<string, unknown> = { status: job.status, darkroomProvider: job.provider };
  if (job.stage) context.stage = job.stage;
  if (job.progress !== null) context.progress = job.progress;
  if (job.error) {
    context.error = job.error.message;
    context.errorCode = job.error.code;
  }
  const status: Record<string, unknown> = {};
  if (detailed) status.job = jobSpec(job, properties, cost);
  Object.assign(status, {
    jobId: job.id,
    cost,
    properties,
    result: results(job),
    lastEvent: {
      jobId: job.id,
      type: eventType(job),
      dateTime: (latest?.createdAt ?? job.updatedAt).toISOString(),
      provider: SERVICE_PROVIDER,
      workerId: `${SERVICE_PROVIDER}-${job.provider}`,
      context,
      jobDuration: job.startedAt ? formatTimeSpan((job.completedAt ?? new Date()).getTime() - job.startedAt.getTime()) : null,
      retryAttempt: Math.max(0, job.attempts - 1),
      cost,
      jobType: JOB_TYPE,
      claimHasCompleted: finished,
      jobHasCompleted: finished,
    },
  });
  if (!finished) {
    const queuePosition = job.queuePosition === null ? {} : { queuePosition: { precedingJobs: job.queuePosition } };
    status.serviceProviders = { [SERVICE_PROVIDER]: { support: 'Available', ...queuePosition } };
  }
  status.scheduled = !finished;
  return status;
}

/** The Civitai callback body: the v1 JobStatus, as GET /v1/consumer/jobs/{jobId} answers it. */
export async function presentWebhook(delivery: WebhookDelivery, source: PayloadSource): Promise<unknown> {
  // A delivery is darkroom's own work about a job it already accepted: no caller's scope applies.
  const jobs = source.for(SYSTEM_CALLER);
  const [job, events] = await Promise.all([jobs.get(delivery.jobId), jobs.events(delivery.jobId)]);
  return presentJobStatus(job, events.at(-1), false);
}
