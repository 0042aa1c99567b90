import type { CreateJobInput } from '../../../core/request.ts';
import { DialectError } from '../../http/errors.ts';

/** The worker whose input a request is shaped like; the answer's `output` takes the same worker's shape. */
export type RunpodFormat = 'comfyui' | 'sdxl' | 'a1111' | 'custom';
/** Links darkroom serves (its signed URLs), or the image bytes in the answer. */
export type ReturnType = 'url' | 'base64';

export interface ParsedInput {
  format: RunpodFormat;
  returnType: ReturnType;
  job: CreateJobInput;
}

/** A request darkroom cannot run, answered as a RunPod-style 400 `{error}`. */
export class RunpodInputError extends DialectError {
  constructor(readonly problems: string[]) {
    super(400, problems.join('; '));
    this.name = 'RunpodInputError';
  }
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

const MAX_SEED = 4294967295;
const SDXL_KEYS = ['num_inference_steps', 'guidance_scale', 'num_images', 'refiner_inference_steps', 'high_noise_frac'];
const A1111_KEYS = ['steps', 'cfg_scale', 'sampler_name', 'batch_size', 'n_iter', 'restore_faces', 'denoising_strength', 'override_settings'];

/**
 * Which worker the input was written for: a ComfyUI `workflow`; worker-sdxl's own keys; the
 * custom worker's `return_type`; A1111's keys; and worker-sdxl, RunPod's stock image worker, when
 * nothing tells.
 */
export function detectFormat(input: Json): RunpodFormat {
  if (input.workflow !== undefined) return 'comfyui';
  if (SDXL_KEYS.some((key) => key in input)) return 'sdxl';
  if ('return_type' in input) return 'custom';
  if (A1111_KEYS.some((key) => key in input)) return 'a1111';
  return 'sdxl';
}

/** Reads typed fields of one object, collecting every problem instead of stopping at the first. */
class Reader {
  readonly problems: string[] = [];
  constructor(
    private readonly source: Json,
    private readonly path: string,
  ) {}

  private fail(key: string, message: string): undefined {
    this.problems.push(`${this.path}.${key} ${message}`);
    return undefined;
  }

  string(key: string, max: number, options: { required?: boolean } = {}): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return options.required ? this.fail(key, 'is required') : undefined;
    if (typeof value !== 'string') return this.fail(key, 'must be a string');
    if (options.required && value.trim() === '') return this.fail(key, 'must not be empty');
    if (value.length > max) return this.fail(key, `must be at most ${max} characters`);
    return value;
  }

  integer(key: string, min: number, max: number, fallback?: number): number | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      return this.fail(key, `must be an integer from ${min} to ${max}`);
    }
    return value;
  }

  /** darkroom's image sizes: 64–2048 pixels in steps of 8. */
  dimension(key: string, fallback: number): number | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 64 || value > 2048 || value % 8 !== 0) {
      return this.fail(key, 'must be an integer from 64 to 2048, a multiple of 8');
    }
    return value;
  }

  number(key: string, min: number, max: number): number | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) return this.fail(key, `must be a number from ${min} to ${max}`);
    return value;
  }

  /** -1 and null mean "random", as in every worker; `wrap` folds ComfyUI's 64-bit seeds into darkroom's 32 bits. */
  seed(key: string, options: { wrap?: boolean } = {}): number | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || value === -1) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || (!options.wrap && value > MAX_SEED)) {
      return this.fail(key, `must be -1 (random) or an integer from 0 to ${MAX_SEED}`);
    }
    return value % (MAX_SEED + 1);
  }

  returnType(key: string): ReturnType | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return undefined;
    if (value !== 'url' && value !== 'base64') return this.fail(key, 'must be "url" or "base64"');
    return value;
  }

  /** Image-to-image inputs: darkroom only runs text to image, and says so rather than ignore the image. */
  absent(...keys: string[]): void {
    for (const key of keys) {
      if (this.source[key] !== undefined && this.source[key] !== null) this.fail(key, 'is not supported: darkroom runs text-to-image jobs only');
    }
  }

  done<T>(value: T): T {
    if (this.problems.length > 0) throw new RunpodInputError(this.problems);
    return value;
  }
}

const withoutUndefined = (job: CreateJobInput): CreateJobInput =>
  Object.fromEntries(Object.entries(job).filter(([, value]) => value !== undefined)) as CreateJobInput;

function parseSdxl(input: Json): ParsedInput {
  const read = new Reader(input, 'input');
  read.absent('image_url');
  const job: CreateJobInput = {
    prompt: read.string('prompt', 4000, { required: true }) ?? '',
    negativePrompt: read.string('negative_prompt', 4000),
    width: read.dimension('width', 1024),
    height: read.dimension('height', 1024),
    steps: read.integer('num_inference_steps', 1, 150),
    cfgScale: read.number('guidance_scale', 1, 30),
    seed: read.seed('seed'),
    scheduler: read.string('scheduler', 64),
    numImages: read.integer('num_images', 1, 10, 1),
  };
  const returnType = read.returnType('return_type') ?? 'url';
  return read.done({ format: 'sdxl', returnType, job: withoutUndefined(job) });
}

/** The fields A1111 and the origin's custom worker spell alike (snake_case, A1111's names). */
function a1111Fields(read: Reader) {
  return {
    prompt: read.string('prompt', 4000, { required: true }) ?? '',
    negativePrompt: read.string('negative_prompt', 4000),
    width: read.dimension('width', 512),
    height: read.dimension('height', 512),
    steps: read.integer('steps', 1, 150),
    cfgScale: read.number('cfg_scale', 1, 30),
    seed: read.seed('seed'),
  };
}

function parseA1111(input: Json): ParsedInput {
  const read = new Reader(input, 'input');
  read.absent('init_images', 'mask');
  const batchSize = read.integer('batch_size', 1, 10, 1);
  const iterations = read.integer('n_iter', 1, 10, 1);
  const numImages = (batchSize ?? 1) * (iterations ?? 1);
  if (numImages > 10) read.problems.push('input.batch_size × input.n_iter must be at most 10');
  const job: CreateJobInput = { ...a1111Fields(read), scheduler: read.string('sampler_name', 64), numImages };
  // A1111 answers base64 only.
  return read.done({ format: 'a1111', returnType: 'base64', job: withoutUndefined(job) });
}

function parseCustom(input: Json): ParsedInput {
  const read = new Reader(input, 'input');
  const job: CreateJobInput = {
    ...a1111Fields(read),
    scheduler: read.string('sampler_name', 64) ?? read.string('scheduler', 64),
    numImages: 1,
  };
  const returnType = read.returnType('return_type') ?? 'url';
  return read.done({ format: 'custom', returnType, job: withoutUndefined(job) });
}

type Link = [string, number];
const isLink = (value: unknown): value is Link => Array.isArray(value) && typeof value[0] === 'string' && typeof value[1] === 'number';

/**
 * A ComfyUI API-format graph, read the way ComfyUI would run it: the KSampler's settings, the prompt
 * text found by following its positive and negative links back to a text encoder, the size and batch
 * of the empty latent it samples, and the checkpoint file (kept as the model).
 */
function parseComfyui(input: Json): ParsedInput {
  let workflow: unknown = input.workflow;
  if (typeof workflow === 'string') {
    try {
      workflow = JSON.parse(workflow);
    } catch {
      throw new RunpodInputError(['input.workflow is a string that is not JSON']);
    }
  }
  if (!isObject(workflow) || !Object.values(workflow).every(isObject)) {
    throw new RunpodInputError(['input.workflow must be a ComfyUI workflow in API format: an object of nodes']);
  }
  const nodes = workflow as Record<string, Json>;
  const inputsOf = (node: Json | undefined): Json => (node && isObject(node.inputs) ? node.inputs : {});
  const entry = Object.entries(nodes).find(([, node]) => node.class_type === 'KSampler' || node.class_type === 'KSamplerAdvanced');
  if (!entry) {
    throw new RunpodInputError(['input.workflow has no KSampler node; darkroom runs text-to-image workflows built around one']);
  }
  const [samplerId, sampler] = entry;

  // Settings are often wired from primitive nodes; follow one link to the value the node holds.
  const literals = (fields: Json): Json =>
    Object.fromEntries(
      Object.entries(fields).map(([key, value]) => {
        if (!isLink(value)) return [key, value];
        const source = inputsOf(nodes[value[0]]);
        const held = [key, 'value', 'seed', 'noise_seed', 'int', 'float'].map((name) => source[name]).find((candidate) => typeof candidate === 'number');
        return [key, held ?? value];
      }),
    );
  const settings = inputsOf(sampler);
  const values = literals(settings);

  // Each node is searched once per prompt: a graph whose links fan out (or loop) cannot make the search explode.
  const textBehind = (link: unknown, depth = 0, seen = new Set<string>()): string | undefined => {
    if (!isLink(link) || depth > 10 || seen.has(link[0])) return undefined;
    seen.add(link[0]);
    const fields = inputsOf(nodes[link[0]]);
    for (const key of ['text', 'text_g', 'prompt']) {
      if (typeof fields[key] === 'string') return fields[key];
    }
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'clip') continue;
      const found = textBehind(value, depth + 1, seen);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  const problems: string[] = [];
  const prompt = textBehind(settings.positive);
  if (prompt === undefined || prompt.trim() === '') problems.push(`input.workflow: KSampler ${samplerId} has no positive prompt text behind it`);
  const latent = isLink(settings.latent_image) ? literals(inputsOf(nodes[settings.latent_image[0]])) : {};
  if (latent.width === undefined || latent.height === undefined) {
    problems.push(`input.workflow: KSampler ${samplerId} must sample an empty latent image (EmptyLatentImage) with a width and height`);
  }
  const checkpoint = Object.values(nodes).find((node) => node.class_type === 'CheckpointLoaderSimple');
  if (problems.length > 0) throw new RunpodInputError(problems);

  const samplerRead = new Reader(values, `input.workflow.${samplerId}.inputs`);
  const latentRead = new Reader(latent, `input.workflow.${(settings.latent_image as Link)[0]}.inputs`);
  const textRead = new Reader({ prompt, negative: textBehind(settings.negative) }, 'input.workflow');
  const checkpointRead = new Reader(inputsOf(checkpoint), 'input.workflow.checkpoint');
  const job: CreateJobInput = {
    prompt: textRead.string('prompt', 4000, { required: true }) ?? '',
    negativePrompt: textRead.string('negative', 4000) || undefined,
    width: latentRead.dimension('width', 512),
    height: latentRead.dimension('height', 512),
    numImages: latentRead.integer('batch_size', 1, 10, 1),
    steps: samplerRead.integer('steps', 1, 150),
    cfgScale: samplerRead.number('cfg', 1, 30),
    seed: samplerRead.seed(values.noise_seed !== undefined ? 'noise_seed' : 'seed', { wrap: true }),
    scheduler: samplerRead.string('sampler_name', 64),
    model: checkpointRead.string('ckpt_name', 500),
  };
  const all = [samplerRead, latentRead, textRead, checkpointRead].flatMap((reader) => reader.problems);
  if (all.length > 0) throw new RunpodInputError(all);
  // worker-comfyui answers base64 unless its own bucket is configured.
  return { format: 'comfyui', returnType: 'base64', job: withoutUndefined(job) };
}

/** Maps a RunPod job `input` to darkroom's request, refusing what darkroom cannot run. */
export function parseRunpodInput(input: Json): ParsedInput {
  switch (detectFormat(input)) {
    case 'comfyui':
      return parseComfyui(input);
    case 'sdxl':
      return parseSdxl(input);
    case 'a1111':
      return parseA1111(input);
    case 'custom':
      return parseCustom(input);
  }
}
