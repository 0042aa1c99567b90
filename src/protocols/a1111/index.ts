/**
 * AUTOMATIC1111's stable-diffusion-webui API (and Forge, which keeps it): the shapes of
 * `/sdapi/v1/txt2img`, `/sdapi/v1/img2img`, `/sdapi/v1/progress`, `/internal/progress` and its error
 * bodies, the sampler and scheduler names, and the `info` text it answers with. Shared by darkroom's
 * A1111 dialect and its a1111 provider.
 */

/** The fields both generation routes take (the webui's StableDiffusionProcessing, as its API exposes them). */
export interface A1111GenerationFields {
  prompt?: string | null;
  negative_prompt?: string | null;
  styles?: string[] | null;
  seed?: number | null;
  subseed?: number | null;
  subseed_strength?: number | null;
  sampler_name?: string | null;
  /** The old spelling of sampler_name, still read when sampler_name is absent. */
  sampler_index?: string | null;
  scheduler?: string | null;
  batch_size?: number | null;
  n_iter?: number | null;
  steps?: number | null;
  cfg_scale?: number | null;
  width?: number | null;
  height?: number | null;
  restore_faces?: boolean | null;
  tiling?: boolean | null;
  denoising_strength?: number | null;
  /** `sd_model_checkpoint` picks the checkpoint for this request only. */
  override_settings?: Record<string, unknown> | null;
  override_settings_restore_afterwards?: boolean | null;
  /** The id `/internal/progress` knows the request by; the webui makes one up when absent. */
  force_task_id?: string | null;
  send_images?: boolean | null;
  save_images?: boolean | null;
  script_name?: string | null;
  script_args?: unknown[] | null;
  alwayson_scripts?: Record<string, unknown> | null;
}

export type A1111Txt2ImgRequest = A1111GenerationFields & {
  enable_hr?: boolean | null;
  hr_scale?: number | null;
  hr_upscaler?: string | null;
};

export interface A1111Img2ImgRequest extends A1111GenerationFields {
  /** Base64 (or data URIs) of the pictures to start from; the webui uses the first. */
  init_images?: string[] | null;
  /** Base64 of the inpainting mask: white is repainted, black kept. */
  mask?: string | null;
  /** 0: just resize, 1: crop and resize, 2: resize and fill, 3: latent upscale. */
  resize_mode?: number | null;
  mask_blur?: number | null;
  /** What fills the masked area before sampling: 0 fill, 1 original, 2 latent noise, 3 latent nothing. */
  inpainting_fill?: number | null;
  /** Inpaint at full resolution (only the masked area, then pasted back). */
  inpaint_full_res?: boolean | null;
  inpaint_full_res_padding?: number | null;
  /** 1 repaints the black of the mask instead of its white. */
  inpainting_mask_invert?: number | null;
  include_init_images?: boolean | null;
}

/** What both generation routes answer: base64 images, the request back, and `info` (JSON text). */
export interface A1111GenerationResponse {
  images: string[];
  parameters: Record<string, unknown>;
  info: string;
}

/** GET /sdapi/v1/progress: the server's one current job (the webui runs one at a time). */
export interface A1111ProgressResponse {
  progress: number;
  eta_relative: number;
  state: {
    skipped: boolean;
    interrupted: boolean;
    job: string;
    job_count: number;
    job_timestamp: string;
    job_no: number;
    sampling_step: number;
    sampling_steps: number;
  };
  current_image: string | null;
  textinfo: string | null;
}

/** POST /internal/progress: one task by the id it was given (`force_task_id`). */
export interface A1111TaskProgressRequest {
  id_task: string;
  id_live_preview?: number;
  live_preview?: boolean;
}

export interface A1111TaskProgressResponse {
  active: boolean;
  queued: boolean;
  completed: boolean;
  progress: number | null;
  eta: number | null;
  live_preview: string | null;
  id_live_preview: number | null;
  textinfo: string | null;
}

/** The body of a refusal other than a schema failure (the webui's exception middleware). */
export interface A1111ErrorBody {
  error: string;
  detail: string;
  body: string;
  errors: string;
}

/** A schema failure, as FastAPI answers it with 422. */
export interface A1111ValidationBody {
  detail: { loc: (string | number)[]; msg: string; type: string }[];
}

/** The webui's samplers (GET /sdapi/v1/samplers): name and aliases. */
export const A1111_SAMPLERS: readonly { name: string; aliases: string[] }[] = [
  { name: 'DPM++ 2M', aliases: ['k_dpmpp_2m'] },
  { name: 'DPM++ SDE', aliases: ['k_dpmpp_sde'] },
  { name: 'DPM++ 2M SDE', aliases: ['k_dpmpp_2m_sde'] },
  { name: 'DPM++ 2M SDE Heun', aliases: ['k_dpmpp_2m_sde_heun'] },
  { name: 'DPM++ 2S a', aliases: ['k_dpmpp_2s_a'] },
  { name: 'DPM++ 3M SDE', aliases: ['k_dpmpp_3m_sde'] },
  { name: 'Euler a', aliases: ['k_euler_a', 'k_euler_ancestral'] },
  { name: 'Euler', aliases: ['k_euler'] },
  { name: 'LMS', aliases: ['k_lms'] },
  { name: 'Heun', aliases: ['k_heun'] },
  { name: 'DPM2', aliases: ['k_dpm_2'] },
  { name: 'DPM2 a', aliases: ['k_dpm_2_a'] },
  { name: 'DPM fast', aliases: ['k_dpm_fast'] },
  { name: 'DPM adaptive', aliases: ['k_dpm_ad'] },
  { name: 'Restart', aliases: ['restart'] },
  { name: 'DDIM', aliases: ['ddim'] },
  { name: 'PLMS', aliases: ['plms'] },
  { name: 'UniPC', aliases: ['unipc'] },
  { name: 'LCM', aliases: ['k_lcm'] },
];

/** The webui's schedulers (GET /sdapi/v1/schedulers): the name sent, and the label shown. */
export const A1111_SCHEDULERS: readonly { name: string; label: string }[] = [
  { name: 'automatic', label: 'Automatic' },
  { name: 'uniform', label: 'Uniform' },
  { name: 'karras', label: 'Karras' },
  { name: 'exponential', label: 'Exponential' },
  { name: 'polyexponential', label: 'Polyexponential' },
  { name: 'sgm_uniform', label: 'SGM Uniform' },
  { name: 'kl_optimal', label: 'KL Optimal' },
  { name: 'align_your_steps', label: 'Align Your Steps' },
  { name: 'simple', label: 'Simple' },
  { name: 'normal', label: 'Normal' },
  { name: 'ddim', label: 'DDIM' },
  { name: 'beta', label: 'Beta' },
];

export const A1111_DEFAULT_SAMPLER = 'Euler';
/** The webui's own defaults where a request leaves a field out. */
export const A1111_DEFAULTS = { steps: 50, cfgScale: 7, width: 512, height: 512, denoisingStrength: 0.75 } as const;

/** Sampler names with case, spaces, `+` and `_` folded: `dpm++ 2m karras`, `DPMPP2MKarras` and `dpmpp_2m_karras` all meet. */
const fold = (name: string) => name.toLowerCase().replaceAll('+', 'p').replace(/[^a-z0-9]/g, '');

const SAMPLER_BY_KEY = new Map<string, string>();
for (const sampler of A1111_SAMPLERS) {
  SAMPLER_BY_KEY.set(fold(sampler.name), sampler.name);
  for (const alias of sampler.aliases) SAMPLER_BY_KEY.set(fold(alias), sampler.name);
}
// Civitai's and diffusers' spellings of the same samplers.
for (const [alias, name] of [
  ['eulerancestral', 'Euler a'],
  ['dpmsolvermultistep', 'DPM++ 2M'],
  ['dpm2m', 'DPM++ 2M'],
  ['dpm2msde', 'DPM++ 2M SDE'],
  ['dpmsde', 'DPM++ SDE'],
  ['ddpm', 'DDIM'],
] as const) {
  SAMPLER_BY_KEY.set(alias, name);
}

const SCHEDULER_SUFFIXES = ['karras', 'exponential', 'polyexponential', 'uniform', 'simple', 'normal', 'beta'];

/**
 * The webui's sampler and scheduler for darkroom's free-text `scheduler` (an A1111, Civitai or
 * diffusers spelling): `DPM++ 2M Karras` → `DPM++ 2M` with `karras` (the webui split the two in 1.9;
 * older servers still take the joined name). A name the table does not know is sent as given.
 */
export function a1111Sampler(name: string | undefined): { sampler_name: string; scheduler?: string } {
  if (name === undefined) return { sampler_name: A1111_DEFAULT_SAMPLER };
  const key = fold(name);
  const known = SAMPLER_BY_KEY.get(key);
  if (known) return { sampler_name: known };
  for (const suffix of SCHEDULER_SUFFIXES) {
    const base = key.endsWith(suffix) ? SAMPLER_BY_KEY.get(key.slice(0, -suffix.length)) : undefined;
    if (base) return { sampler_name: base, scheduler: suffix };
  }
  return { sampler_name: name };
}

/** darkroom's `scheduler` for an A1111 sampler and scheduler: `DPM++ 2M` with `karras` is `DPM++ 2M Karras`. */
export function darkroomScheduler(sampler: string | undefined, scheduler: string | undefined): string | undefined {
  if (sampler === undefined) return undefined;
  const label = A1111_SCHEDULERS.find((item) => item.name === scheduler?.toLowerCase());
  if (!label || label.name === 'automatic') return sampler;
  return `${sampler} ${label.label}`;
}

/** What a generation's `info` JSON says (the subset darkroom writes and reads). */
export interface A1111Info {
  prompt: string;
  all_prompts: string[];
  negative_prompt: string;
  all_negative_prompts: string[];
  seed: number;
  all_seeds: number[];
  subseed: number;
  all_subseeds: number[];
  subseed_strength: number;
  width: number;
  height: number;
  sampler_name: string;
  cfg_scale: number;
  steps: number;
  batch_size: number;
  restore_faces: boolean;
  sd_model_name: string | null;
  sd_model_hash: string | null;
  denoising_strength: number | null;
  extra_generation_params: Record<string, unknown>;
  index_of_first_image: number;
  infotexts: string[];
  styles: string[];
  job_timestamp: string;
  clip_skip: number;
  is_using_inpainting_conditioning: boolean;
  version: string;
}

/** The webui's "infotext": the parameters line written into each PNG and returned in `info`. */
export function infotext(fields: { prompt: string; negativePrompt: string; steps: number; sampler: string; scheduler?: string; cfgScale: number; seed: number; width: number; height: number; model: string | null; denoisingStrength: number | null }): string {
  const parameters = [
    `Steps: ${fields.steps}`,
    `Sampler: ${fields.sampler}`,
    ...(fields.scheduler ? [`Schedule type: ${fields.scheduler}`] : []),
    `CFG scale: ${fields.cfgScale}`,
    `Seed: ${fields.seed}`,
    `Size: ${fields.width}x${fields.height}`,
    ...(fields.model ? [`Model: ${fields.model}`] : []),
    ...(fields.denoisingStrength === null ? [] : [`Denoising strength: ${fields.denoisingStrength}`]),
  ];
  const negative = fields.negativePrompt ? `\nNegative prompt: ${fields.negativePrompt}` : '';
  return `${fields.prompt}${negative}\n${parameters.join(', ')}`;
}

/**
 * The seed of each image from a generation's `info` (JSON text, or already parsed by a proxy):
 * `all_seeds`, else `seed` plus the image's index, the webui's rule for a batch.
 */
export function seedsOfInfo(info: unknown, count: number): (number | undefined)[] {
  let parsed: unknown = info;
  if (typeof info === 'string') {
    try {
      parsed = JSON.parse(info);
    } catch {
      return Array.from({ length: count }, () => undefined);
    }
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const all = Array.isArray(record.all_seeds) ? record.all_seeds : [];
  const first = typeof record.seed === 'number' ? record.seed : undefined;
  return Array.from({ length: count }, (_, index) => {
    const seed = all[index];
    if (typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0) return seed;
    return first === undefined || first < 0 ? undefined : first + index;
  });
}

/**
 * The webui's own words in an error body: `detail` (a sentence, or FastAPI's list of schema
 * failures), else `errors`, else `error`; the text itself when it is not JSON.
 */
export function a1111ErrorMessage(body: string): string {
  const text = body.trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) {
      const record = parsed as Record<string, unknown>;
      if (Array.isArray(record.detail)) {
        return record.detail
          .map((item) => {
            const problem = (typeof item === 'object' && item !== null ? item : {}) as { loc?: unknown; msg?: unknown };
            const where = Array.isArray(problem.loc) ? problem.loc.filter((step) => step !== 'body').join('.') : '';
            return `${where ? `${where}: ` : ''}${typeof problem.msg === 'string' ? problem.msg : 'is invalid'}`;
          })
          .join('; ')
          .slice(0, 500);
      }
      for (const key of ['detail', 'errors', 'error', 'message']) {
        const value = record[key];
        if (typeof value === 'string' && value.trim() !== '') return value.trim().slice(0, 500);
      }
    }
  } catch {
    // Not JSON: the text is the message.
  }
  return text.replace(/\s+/g, ' ').slice(0, 300);
}
