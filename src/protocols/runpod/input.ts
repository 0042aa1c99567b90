import type { RunpodInputFormat } from './status.ts';

/** What a worker input is built from: the generation parameters of a darkroom request. */
export interface GenerationParams {
  prompt: string;
  negativePrompt?: string;
  width: number;
  height: number;
  steps?: number;
  cfgScale?: number;
  seed?: number;
  scheduler?: string;
  model?: string;
  numImages: number;
  /** Image-to-image and inpainting: the init image (and mask) as the worker is sent them. */
  images?: WorkerImages;
}

/** One input image, ready for a worker's JSON: its bytes as plain base64. */
export interface WorkerImage {
  base64: string;
  contentType: string;
  /** Hex SHA-256 of the bytes: names the file a ComfyUI worker stores it under. */
  sha256: string;
}

export interface WorkerImages {
  init: WorkerImage;
  /** White pixels are repainted, black ones kept. */
  mask?: WorkerImage;
  /** 0–1: how much the init image may change. */
  strength: number;
}

/** The input formats whose workers take an init image and a mask; worker-sdxl and the custom worker take text only. */
export const IMAGE_INPUT_FORMATS: readonly RunpodInputFormat[] = ['a1111', 'comfyui'];

const FILE_EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/**
 * The name an input image is uploaded under into ComfyUI's input folder. worker-comfyui overwrites
 * files of the same name, and one worker serves many jobs: naming by content means a name always
 * holds the same bytes, whichever job wrote it last.
 */
export function comfyuiInputName(image: WorkerImage): string {
  return `darkroom-${image.sha256.slice(0, 32)}.${FILE_EXTENSIONS[image.contentType] ?? 'png'}`;
}

/**
 * A1111's /sdapi/v1/img2img fields for an init image and mask. `inpainting_fill: 1` starts the
 * masked area from the init image's own pixels (A1111's "original"), so `denoising_strength` means
 * the same as darkroom's strength there too; `inpaint_full_res: false` repaints at the whole
 * picture's scale rather than upscaling the masked region.
 */
export function a1111ImageFields(images: WorkerImages): Record<string, unknown> {
  return {
    init_images: [images.init.base64],
    denoising_strength: images.strength,
    resize_mode: 0,
    ...(images.mask
      ? { mask: images.mask.base64, inpainting_fill: 1, inpaint_full_res: false, inpainting_mask_invert: 0 }
      : {}),
  };
}

/** What worker-comfyui loads when the request names no checkpoint file: the SDXL base its sdxl image ships. */
export const DEFAULT_COMFYUI_CHECKPOINT = 'sd_xl_base_1.0.safetensors';
const COMFYUI_DEFAULT_STEPS = 20;
const COMFYUI_DEFAULT_CFG = 7;
const MAX_SEED = 4294967295;

/** RunPod's documented bounds: executionTimeout from 5 s, ttl from 10 s, both up to 7 days. */
const MIN_EXECUTION_TIMEOUT_MS = 5_000;
const MIN_TTL_MS = 10_000;
const MAX_POLICY_MS = 7 * 24 * 3_600_000;

export interface RunpodPolicy {
  ttl: number;
  executionTimeout: number;
}

/**
 * The job's remaining lifetime as a RunPod execution policy, so RunPod stops (and stops billing for)
 * work darkroom would discard anyway. No deadline means RunPod's own defaults.
 */
export function buildPolicy(deadlineAt: Date | null, now: number): RunpodPolicy | undefined {
  if (!deadlineAt) return undefined;
  const remaining = Math.min(MAX_POLICY_MS, Math.max(0, Math.round(deadlineAt.getTime() - now)));
  return { ttl: Math.max(MIN_TTL_MS, remaining), executionTimeout: Math.max(MIN_EXECUTION_TIMEOUT_MS, remaining) };
}

/** worker-sdxl fails the job on a scheduler name it does not know, so only these are ever sent. */
const SDXL_SCHEDULERS: Record<string, string> = {
  pndm: 'PNDM',
  klms: 'KLMS',
  lms: 'KLMS',
  ddim: 'DDIM',
  keuler: 'K_EULER',
  euler: 'K_EULER',
  keulerancestral: 'K_EULER_ANCESTRAL',
  eulerancestral: 'K_EULER_ANCESTRAL',
  eulera: 'K_EULER_ANCESTRAL',
  dpmsolvermultistep: 'DPMSolverMultistep',
  dpmpp2m: 'DPMSolverMultistep',
  dpmsolversinglestep: 'DPMSolverSinglestep',
  dpmpp2s: 'DPMSolverSinglestep',
};

/** ComfyUI's KSampler sampler names for the common A1111/Civitai spellings; anything else is sent as given. */
const COMFYUI_SAMPLERS: Record<string, string> = {
  euler: 'euler',
  eulera: 'euler_ancestral',
  eulerancestral: 'euler_ancestral',
  heun: 'heun',
  lms: 'lms',
  ddim: 'ddim',
  dpm2: 'dpm_2',
  dpm2a: 'dpm_2_ancestral',
  dpmpp2m: 'dpmpp_2m',
  dpmpp2mkarras: 'dpmpp_2m',
  dpmpp2msde: 'dpmpp_2m_sde',
  dpmpp2msdekarras: 'dpmpp_2m_sde',
  dpmppsde: 'dpmpp_sde',
  dpmppsdekarras: 'dpmpp_sde',
  unipc: 'uni_pc',
  lcm: 'lcm',
};

const samplerKey = (name: string) => name.toLowerCase().replaceAll('+', 'p').replace(/[^a-z0-9]/g, '');

export function sdxlScheduler(name: string | undefined): string | undefined {
  return name === undefined ? undefined : SDXL_SCHEDULERS[samplerKey(name)];
}

export function comfyuiSampler(name: string | undefined): { sampler: string; scheduler: string } {
  if (name === undefined) return { sampler: 'euler', scheduler: 'normal' };
  const key = samplerKey(name);
  return { sampler: COMFYUI_SAMPLERS[key] ?? name, scheduler: key.endsWith('karras') ? 'karras' : 'normal' };
}

/** A checkpoint file name can go to ComfyUI as is; a model AIR names no file ComfyUI could load. */
function comfyuiCheckpoint(model: string | undefined): string {
  if (!model || /^(?:urn:)?air:/i.test(model)) return DEFAULT_COMFYUI_CHECKPOINT;
  return model;
}

/**
 * The latent the KSampler starts from, with an init image: LoadImage → ImageScale (to the requested
 * size) → VAEEncode, with a mask LoadImageMask (its red channel: white repaints) → SetLatentNoiseMask,
 * and RepeatLatentBatch for more than one image. The nodes go under ids 10 and up.
 */
function comfyuiImageLatent(request: GenerationParams, images: WorkerImages): { nodes: Record<string, unknown>; latent: [string, number] } {
  const nodes: Record<string, unknown> = {
    '10': { class_type: 'LoadImage', inputs: { image: comfyuiInputName(images.init) } },
    '11': { class_type: 'ImageScale', inputs: { image: ['10', 0], upscale_method: 'lanczos', width: request.width, height: request.height, crop: 'disabled' } },
    '12': { class_type: 'VAEEncode', inputs: { pixels: ['11', 0], vae: ['4', 2] } },
  };
  let latent: [string, number] = ['12', 0];
  if (images.mask) {
    nodes['13'] = { class_type: 'LoadImageMask', inputs: { image: comfyuiInputName(images.mask), channel: 'red' } };
    nodes['14'] = { class_type: 'SetLatentNoiseMask', inputs: { samples: latent, mask: ['13', 0] } };
    latent = ['14', 0];
  }
  if (request.numImages > 1) {
    nodes['15'] = { class_type: 'RepeatLatentBatch', inputs: { samples: latent, amount: request.numImages } };
    latent = ['15', 0];
  }
  return { nodes, latent };
}

/**
 * The classic ComfyUI text-to-image graph in API format: checkpoint → two prompts → empty latent →
 * KSampler → VAE decode → SaveImage; with an init image, the latent is the encoded image instead
 * (comfyuiImageLatent) and the KSampler denoises by the request's strength. ComfyUI needs a seed, so
 * a request without one gets `randomSeed`.
 */
export function comfyuiWorkflow(request: GenerationParams, randomSeed: number): Record<string, unknown> {
  const { sampler, scheduler } = comfyuiSampler(request.scheduler);
  const fromImage = request.images ? comfyuiImageLatent(request, request.images) : undefined;
  const start = fromImage
    ? fromImage.nodes
    : { '5': { class_type: 'EmptyLatentImage', inputs: { width: request.width, height: request.height, batch_size: request.numImages } } };
  return {
    '3': {
      class_type: 'KSampler',
      inputs: {
        seed: request.seed ?? randomSeed,
        steps: request.steps ?? COMFYUI_DEFAULT_STEPS,
        cfg: request.cfgScale ?? COMFYUI_DEFAULT_CFG,
        sampler_name: sampler,
        scheduler,
        denoise: request.images?.strength ?? 1,
        model: ['4', 0],
        positive: ['6', 0],
        negative: ['7', 0],
        latent_image: fromImage?.latent ?? ['5', 0],
      },
    },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: comfyuiCheckpoint(request.model) } },
    ...start,
    '6': { class_type: 'CLIPTextEncode', inputs: { text: request.prompt, clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: request.negativePrompt ?? '', clip: ['4', 1] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'darkroom', images: ['8', 0] } },
  };
}

/**
 * The `input` of a RunPod job for the endpoint's worker. Absent options are left out so each worker
 * applies its own defaults; worker-sdxl in particular refuses keys it does not know. Input images go
 * only to the formats of IMAGE_INPUT_FORMATS; the others never get them (see the provider's
 * capabilities).
 */
export function buildInput(
  request: GenerationParams,
  format: RunpodInputFormat,
  random: () => number = Math.random,
): Record<string, unknown> {
  const common = { prompt: request.prompt, negative_prompt: request.negativePrompt, width: request.width, height: request.height };
  switch (format) {
    case 'sdxl':
      return {
        ...common,
        num_inference_steps: request.steps,
        guidance_scale: request.cfgScale,
        seed: request.seed,
        scheduler: sdxlScheduler(request.scheduler),
        num_images: request.numImages,
      };
    case 'a1111':
      return {
        ...common,
        steps: request.steps,
        cfg_scale: request.cfgScale,
        // A1111's own spelling of "random".
        seed: request.seed ?? -1,
        sampler_name: request.scheduler,
        batch_size: request.numImages,
        ...(request.images ? a1111ImageFields(request.images) : {}),
      };
    case 'comfyui': {
      const workflow = comfyuiWorkflow(request, Math.floor(random() * (MAX_SEED + 1)));
      if (!request.images) return { workflow };
      const { init, mask } = request.images;
      // worker-comfyui uploads each entry to ComfyUI's input folder under `name` before it queues the workflow.
      const files = [init, ...(mask && mask.sha256 !== init.sha256 ? [mask] : [])].map((image) => ({ name: comfyuiInputName(image), image: image.base64 }));
      return { workflow, images: files };
    }
    case 'custom':
      return { ...common, steps: request.steps, cfg_scale: request.cfgScale, seed: request.seed, return_type: 'base64' };
  }
}
