import type { JobView } from '../../../core/job-service.ts';
import type { ProviderCheck } from '../../../core/provider-checks.ts';
import type { TaskBody, TaskStatus } from './schemas.ts';


/** What the dialect keeps with each job it creates (Job.dialectData). */
export interface TaskJobData {
  /** As sent: darkroom does not rewrite prompts, so this is recorded, not acted on. */
  useEnhancedPrompts: boolean;
  /** A noise schedule darkroom's request has no field for (anything but `karras`), recorded as sent. */
  scheduler?: string;
}

export const DIALECT = 'tasks';

const percent = (fraction: number) => Math.max(0, Math.min(100, Math.round(fraction * 100)));

/** How far one job is, from 0 (queued) to 1 (finished, whichever way). */
function fractionDone(job: JobView): number {
  if (job.status === 'queued') return 0;
  if (job.status === 'running') return job.progress ?? 0;
  return 1;
}

/**
 * A job's task status: `started` once a worker has it, `generating` once the provider reports
 * progress (or darkroom is storing the result).
 */
function statusOf(job: JobView): TaskStatus {
  switch (job.status) {
    case 'queued':
      return 'pending';
    case 'running':
      return job.stage === 'storing' || (job.progress ?? 0) > 0 ? 'generating' : 'started';
    case 'succeeded':
      return 'success';
    case 'cancelled':
      return 'cancelled';
    default:
      return 'failed';
  }
}

function failureOf(job: JobView): string {
  if (job.status === 'expired') return 'The task did not finish before its deadline';
  if (job.status === 'cancelled') return 'The task was cancelled';
  return job.error?.message ?? 'The generation failed';
}

export function isTasksJob(job: JobView): boolean {
  return job.dialect === DIALECT;
}

/** One generation's task. */
export function presentJob(job: JobView): TaskBody {
  const status = statusOf(job);
  const body: TaskBody = { task_id: job.id, status, result: null, error: null };
  if (status === 'generating') body.result = { progress: percent(fractionDone(job)) };
  if (status === 'failed') body.error = failureOf(job);
  if (status === 'success') {
    const image = job.images[0];
    if (!image) return { ...body, status: 'failed', error: 'The generation finished without an image' };
    body.result = {
      success: true,
      image_url: image.url,
      prompt: job.request.prompt,
      width: image.width,
      height: image.height,
      steps: job.request.steps ?? null,
      seed: image.seed,
    };
  }
  return body;
}

/**
 * A batch's task, from its jobs in request order (ids are time-ordered and made in that order): `pending` until one starts; `started`, then `generating` with the
 * share done (finished prompts count whole, running ones by their progress) while any is unfinished.
 * Once all have finished: `cancelled` if any was cancelled (with the images made before), `failed`
 * if none succeeded, otherwise `success` with the images that succeeded and an `errors` entry for
 * each prompt that did not.
 */
export function presentBatch(batchId: string, jobs: JobView[]): TaskBody {
  const statuses = jobs.map(statusOf);
  const body: TaskBody = { task_id: batchId, status: 'pending', result: null, error: null };
  const finished = statuses.filter((status) => ['success', 'failed', 'cancelled'].includes(status)).length;

  if (finished < jobs.length) {
    if (statuses.every((status) => status === 'pending')) return body;
    const progress = jobs.reduce((sum, job) => sum + fractionDone(job), 0) / jobs.length;
    if (finished === 0 && progress === 0) return { ...body, status: 'started' };
    return { ...body, status: 'generating', result: { progress: percent(progress), completed: finished, total: jobs.length } };
  }

  const images = jobs.flatMap((job) => {
    const image = job.status === 'succeeded' ? job.images[0] : undefined;
    return image ? [{ prompt: job.request.prompt, image_url: image.url, width: image.width, height: image.height, seed: image.seed }] : [];
  });
  const errors = jobs.filter((job) => job.status !== 'succeeded').map((job) => ({ prompt: job.request.prompt, error: failureOf(job) }));

  if (statuses.includes('cancelled')) {
    return { ...body, status: 'cancelled', result: images.length > 0 ? { success: false, images, errors } : null };
  }
  if (images.length === 0) {
    const first = errors[0]?.error ?? 'The generation failed';
    return { ...body, status: 'failed', error: jobs.length === 1 ? first : `All ${jobs.length} generations failed; the first: ${first}` };
  }
  return { ...body, status: 'success', result: { success: true, images, ...(errors.length > 0 ? { errors } : {}) } };
}

/** A provider connection test's task: `started` while it runs, then `success` (healthy) or `failed`. */
export function presentCheck(check: ProviderCheck): TaskBody {
  const body: TaskBody = { task_id: check.id, status: 'started', result: null, error: null };
  if (check.state === 'running') return body;
  const healthy = check.healthy === true;
  const detail = check.detail ?? '';
  return {
    ...body,
    status: healthy ? 'success' : 'failed',
    result: { success: healthy, provider: check.provider, healthy, detail, latency_ms: check.latencyMs ?? 0 },
    error: healthy ? null : `Provider ${check.provider} failed its connection check: ${detail}`,
  };
}
