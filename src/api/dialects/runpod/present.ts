import type { ImageView, JobView } from '../../../core/job-service.ts';
import type { JobStatus } from '../../../core/job.ts';
import { EXTENSION_BY_TYPE } from '../../../core/ports/storage.ts';
import type { ReturnType, RunpodFormat } from './input.ts';
import { SYSTEM_CALLER } from '../../../core/caller.ts';
import type { WebhookDelivery } from '../../../core/ports/webhooks.ts';
import type { PayloadSource } from '../../http/dialect.ts';
import { DEFAULT_STRENGTH, inputOf } from '../../../core/request.ts';

export type RunpodStatus = 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';

const STATUS: Record<JobStatus, RunpodStatus> = {
  queued: 'IN_QUEUE',
  running: 'IN_PROGRESS',
  succeeded: 'COMPLETED',
  failed: 'FAILED',
  cancelled: 'CANCELLED',
  expired: 'TIMED_OUT',
};

export const runpodStatus = (status: JobStatus): RunpodStatus => STATUS[status];

/** What the dialect keeps with each job it creates (Job.dialectData). */
export interface RunpodJobData {
  endpointId: string;
  format: RunpodFormat;
  returnType: ReturnType;
  /** The job's policy.ttl, so a retry gets a fresh deadline of the same length. */
  ttlMs?: number;
  /** On a job that was retried: the darkroom job running its latest attempt (see routes.ts). */
  current?: string;
  /** On a retry's job: the job whose id the client knows. */
  retryOf?: string;
  /** Marks a retry's job, so /health can count them with one query. */
  retried?: true;
}

const FORMATS: readonly string[] = ['comfyui', 'sdxl', 'a1111', 'custom'];

/** The dialect data of a RunPod-dialect job, or null for any other job (which this dialect does not show). */
export function runpodData(job: { dialect: string; dialectData: Record<string, unknown> }): RunpodJobData | null {
  const data = job.dialectData;
  if (job.dialect !== 'runpod' || typeof data.endpointId !== 'string') return null;
  return {
    endpointId: data.endpointId,
    format: FORMATS.includes(data.format as string) ? (data.format as RunpodFormat) : 'sdxl',
    returnType: data.returnType === 'base64' ? 'base64' : 'url',
    ...(typeof data.ttlMs === 'number' ? { ttlMs: data.ttlMs } : {}),
    ...(typeof data.current === 'string' ? { current: data.current } : {}),
    ...(typeof data.retryOf === 'string' ? { retryOf: data.retryOf } : {}),
  };
}

export interface RunpodStatusBody {
  id: string;
  status: RunpodStatus;
  delayTime?: number;
  executionTime?: number;
  output?: unknown;
  error?: string;
}

export type ReadImage = (jobId: string, index: number) => Promise<{ bytes: Buffer; contentType: string }>;

const base64Of = async (job: JobView, image: ImageView, read: ReadImage) => (await read(job.id, image.index)).bytes.toString('base64');

/** ComfyUI's own file naming, so clients that key on `filename` see what they know. */
const comfyFilename = (image: ImageView) => `ComfyUI_${String(image.index + 1).padStart(5, '0')}_.${EXTENSION_BY_TYPE[image.contentType] ?? 'png'}`;

/** A finished job's images in the output shape of the worker its input was written for. */
async function output(job: JobView, data: RunpodJobData, read: ReadImage): Promise<unknown> {
  const images = [...job.images].sort((a, b) => a.index - b.index);
  const seed = images[0]?.seed ?? undefined;
  switch (data.format) {
    case 'comfyui':
      return {
        images: await Promise.all(images.map(async (image) => ({ filename: comfyFilename(image), type: 'base64', data: await base64Of(job, image, read) }))),
      };
    case 'sdxl': {
      const list =
        data.returnType === 'base64'
          ? await Promise.all(images.map(async (image) => `data:${image.contentType};base64,${await base64Of(job, image, read)}`))
          : images.map((image) => image.url);
      return { images: list, image_url: list[0], ...(seed === undefined ? {} : { seed }) };
    }
    case 'a1111': {
      const { request } = job;
      const seeds = images.map((image) => image.seed ?? -1);
      const parameters = {
        prompt: request.prompt,
        negative_prompt: request.negativePrompt ?? '',
        width: request.width,
        height: request.height,
        steps: request.steps ?? null,
        cfg_scale: request.cfgScale ?? null,
        seed: request.seed ?? -1,
        sampler_name: request.scheduler ?? null,
        batch_size: request.numImages,
        n_iter: 1,
        // img2img's answer names its image fields but, like A1111, does not send the images back.
        ...(inputOf(request, 'init')
          ? { init_images: null, mask: null, denoising_strength: request.strength ?? DEFAULT_STRENGTH, inpainting_fill: 1, inpaint_full_res: false, resize_mode: 0 }
          : {}),
      };
      const info = {
        prompt: request.prompt,
        all_prompts: seeds.map(() => request.prompt),
        negative_prompt: request.negativePrompt ?? '',
        seed: seeds[0] ?? -1,
        all_seeds: seeds,
        width: request.width,
        height: request.height,
        steps: request.steps ?? null,
        cfg_scale: request.cfgScale ?? null,
        sampler_name: request.scheduler ?? null,
      };
      // A1111 sends `info` as JSON text, not an object.
      return { images: await Promise.all(images.map((image) => base64Of(job, image, read))), parameters, info: JSON.stringify(info) };
    }
    case 'custom': {
      const first = images[0];
      if (!first) return {};
      return data.returnType === 'base64' ? { image: await base64Of(job, first, read) } : { image_url: first.url };
    }
  }
}

/**
 * A job's RunPod status without its output, under the id the client knows (`id`, which differs from
 * the job's own after a retry). delayTime is queue time (created → started), executionTime run time
 * (started → completed), both in milliseconds.
 */
export function presentBrief(id: string, job: JobView): RunpodStatusBody {
  const status = runpodStatus(job.status);
  const body: RunpodStatusBody = { id, status };
  // A job back in the queue after a failed attempt has started before, but RunPod shows no delay while queued.
  if (job.startedAt && status !== 'IN_QUEUE') body.delayTime = job.startedAt.getTime() - job.createdAt.getTime();
  if (job.startedAt && job.completedAt) body.executionTime = job.completedAt.getTime() - job.startedAt.getTime();
  if ((status === 'FAILED' || status === 'TIMED_OUT') && job.error) body.error = job.error.message;
  return body;
}

/** A job as RunPod's /status answers it: the brief, plus the output once it has COMPLETED. */
export async function presentStatus(id: string, job: JobView, data: RunpodJobData, read: ReadImage): Promise<RunpodStatusBody> {
  const body = presentBrief(id, job);
  if (body.status === 'COMPLETED') body.output = await output(job, data, read);
  return body;
}

/** The RunPod webhook body: the job's /status body, under the id the client knows (a retried job's original id). */
export async function presentWebhook(delivery: WebhookDelivery, source: PayloadSource): Promise<unknown> {
  const jobs = source.for(SYSTEM_CALLER);
  const job = await jobs.get(delivery.jobId);
  const data = runpodData(job);
  if (!data) throw new Error(`job ${job.id} is not a RunPod-dialect job`);
  return presentStatus(data.retryOf ?? job.id, job, data, (id, index) => jobs.readImage(id, index));
}
