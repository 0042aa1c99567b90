import type { JobView } from '../../../core/job-service.ts';
import { A1111_DEFAULTS, A1111_SCHEDULERS, infotext, type A1111Info } from '../../../protocols/a1111/index.ts';

/** What the dialect keeps with each job it creates (Job.dialectData). */
export interface A1111JobData {
  /** force_task_id, when the client gave one: what POST /internal/progress finds the job by. */
  taskId?: string;
  /** The sampler and scheduler as the client named them, for `info`. */
  sampler: string;
  scheduler?: string;
}

const VERSION = 'darkroom';

/** The webui's `info` JSON for a finished job: every image's seed, the infotexts. */
export function presentInfo(job: JobView, data: A1111JobData, styles: string[]): A1111Info {
  const request = job.request;
  const seeds = job.images.map((image, index) => image.seed ?? (request.seed === undefined ? -1 : request.seed + index));
  const seed = seeds[0] ?? request.seed ?? -1;
  const steps = request.steps ?? A1111_DEFAULTS.steps;
  const cfgScale = request.cfgScale ?? A1111_DEFAULTS.cfgScale;
  const model = request.model ?? null;
  const denoisingStrength = request.inputs?.some((input) => input.role === 'init') ? (request.strength ?? A1111_DEFAULTS.denoisingStrength) : null;
  const negativePrompt = request.negativePrompt ?? '';
  const infotexts = seeds.map((each) =>
    infotext({
      prompt: request.prompt,
      negativePrompt,
      steps,
      sampler: data.sampler,
      scheduler: A1111_SCHEDULERS.find((item) => item.name === data.scheduler?.toLowerCase())?.label,
      cfgScale,
      seed: each,
      width: request.width,
      height: request.height,
      model,
      denoisingStrength,
    }),
  );
  return {
    prompt: request.prompt,
    all_prompts: seeds.map(() => request.prompt),
    negative_prompt: negativePrompt,
    all_negative_prompts: seeds.map(() => negativePrompt),
    seed,
    all_seeds: seeds,
    subseed: -1,
    all_subseeds: seeds.map(() => -1),
    subseed_strength: 0,
    width: request.width,
    height: request.height,
    sampler_name: data.sampler,
    cfg_scale: cfgScale,
    steps,
    batch_size: request.numImages,
    restore_faces: false,
    sd_model_name: model,
    sd_model_hash: null,
    denoising_strength: denoisingStrength,
    extra_generation_params: {},
    index_of_first_image: 0,
    infotexts,
    styles,
    job_timestamp: timestamp(job.startedAt ?? job.createdAt),
    clip_skip: 1,
    is_using_inpainting_conditioning: false,
    version: VERSION,
  };
}

/** The webui's job timestamp: local digits, `20240131235959`. */
export function timestamp(at: Date): string {
  return at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
