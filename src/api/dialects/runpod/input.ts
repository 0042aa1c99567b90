import type { CreateJobInput } from '../../../core/request.ts';
import { DialectError } from '../../http/errors.ts';
import { decodeImages, type ImageField } from './images.ts';

/** The worker whose input a request is shaped like; the answer's `output` takes the same worker's shape. */
export type RunpodFormat = 'comfyui' | 'sdxl' | 'a1111' | 'custom';
/** Links darkroom serves (its signed URLs), or the image bytes in the answer. */
export type ReturnType = 'url' | 'base64';

export interface ParsedInput {
  format: RunpodFormat;
  returnType: ReturnType;
  job: CreateJobInput;
  /** The field each of `job.images` came from, in order (`input.init_images[0]`), for the core's messages. */
  imagePaths?: string[];
}

/** A request read for its fields, with its images still text. */
interface ReadInput extends ParsedInput {
  images: ImageField[];
  /** A ComfyUI graph that samples at the size of the image it loads, not at a size it names. */
  sizeFromInit?: boolean;
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
const SDXL_KEYS = ['num_inference_steps', 'guidance_scale', 'num_images', 'refiner_inference_steps', 'high_noise_frac', 'image_url'];
/** Only A1111 takes these; an input with them is A1111's even with worker-sdxl's other keys beside them. */
const A1111_IMAGE_KEYS = ['init_images', 'mask'];
const A1111_KEYS = ['steps', 'cfg_scale', 'sampler_name', 'batch_size', 'n_iter', 'restore_faces', 'denoising_strength', 'override_settings'];

/**
 * Which worker the input was written for: a ComfyUI `workflow`; A1111's image keys; worker-sdxl's own keys; the
 * custom worker's `return_type`; A1111's keys; and worker-sdxl, RunPod's stock image worker, when
 * nothing tells.
 */
export function detectFormat(input: Json): RunpodFormat {
  if (input.workflow !== undefined) return 'comfyui';
  if (A1111_IMAGE_KEYS.some((key) => key in input)) return 'a1111';
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

  /** Image text (base64 or a data URI) of any length: the body limit bounds it. */
  imageText(key: string): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') return this.fail(key, 'must be a base64 string');
    return value;
  }

  /** A1111's `init_images`: a list, of which darkroom runs one image (A1111 cycles several across a batch). */
  imageList(key: string): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === 'string')) {
      return this.fail(key, 'must be a list of base64 strings');
    }
    if (value.length > 1) return this.fail(key, 'must hold one image: darkroom runs one init image per job');
    return value[0] as string;
  }

  /** Fields of a worker that takes no images: refused rather than ignored, so no one is billed for a picture that ignores theirs. */
  absent(why: string, ...keys: string[]): void {
    for (const key of keys) {
      if (this.source[key] !== undefined && this.source[key] !== null) this.fail(key, `is not supported: ${why}`);
    }
  }

  done<T>(value: T): T {
    if (this.problems.length > 0) throw new RunpodInputError(this.problems);
    return value;
  }
}

const withoutUndefined = (job: CreateJobInput): CreateJobInput =>
  Object.fromEntries(Object.entries(job).filter(([, value]) => value !== undefined)) as CreateJobInput;

/** worker-sdxl's strength when `image_url` comes without one (its schema's default). */
const SDXL_DEFAULT_STRENGTH = 0.3;

/**
 * worker-sdxl's input. Its `image_url` (a link, which the worker downloads) runs the refiner over
 * that image by `strength`: here the link is an init image the core fetches once and stores.
 */
function parseSdxl(input: Json): ReadInput {
  const read = new Reader(input, 'input');
  read.absent('worker-sdxl takes its image as image_url (a link); base64 images go in the A1111 (init_images) or worker-comfyui (images) formats', 'images');
  const imageUrl = read.string('image_url', 2000);
  const strength = read.number('strength', 0, 1);
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
    ...(imageUrl === undefined ? {} : { images: [{ role: 'init', url: imageUrl }], strength: strength ?? SDXL_DEFAULT_STRENGTH }),
  };
  const returnType = read.returnType('return_type') ?? 'url';
  const imagePaths = imageUrl === undefined ? undefined : ['input.image_url'];
  return read.done({ format: 'sdxl', returnType, job: withoutUndefined(job), images: [], ...(imagePaths ? { imagePaths } : {}) });
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

/**
 * A1111's img2img fields: `init_images` (one), `mask` (white repaints, or black with
 * `inpainting_mask_invert: 1`) and `denoising_strength` as the job's strength. A1111's other
 * inpainting settings (`inpainting_fill`, `inpaint_full_res`, `mask_blur`, `resize_mode`) are
 * accepted and not acted on: darkroom's providers always start the masked area from the init image.
 */
function a1111Images(read: Reader): { images: ImageField[]; strength?: number } {
  const init = read.imageList('init_images');
  const mask = read.imageText('mask');
  const invert = read.integer('inpainting_mask_invert', 0, 1, 0) === 1;
  if (mask !== undefined && init === undefined && !read.problems.some((problem) => problem.startsWith('input.init_images'))) {
    read.problems.push('input.mask needs input.init_images: a mask says which pixels of the init image change');
  }
  const images: ImageField[] = [];
  if (init !== undefined) images.push({ role: 'init', path: 'input.init_images[0]', text: init });
  if (init !== undefined && mask !== undefined) images.push({ role: 'mask', path: 'input.mask', text: mask, invert });
  // Without an init image, denoising_strength is the hires fix's, which darkroom does not run.
  const strength = read.number('denoising_strength', 0, 1);
  return { images, ...(init !== undefined && strength !== undefined ? { strength } : {}) };
}

function parseA1111(input: Json): ReadInput {
  const read = new Reader(input, 'input');
  read.absent('A1111 takes its image as init_images (base64)', 'image_url');
  const batchSize = read.integer('batch_size', 1, 10, 1);
  const iterations = read.integer('n_iter', 1, 10, 1);
  const numImages = (batchSize ?? 1) * (iterations ?? 1);
  if (numImages > 10) read.problems.push('input.batch_size × input.n_iter must be at most 10');
  const { images, strength } = a1111Images(read);
  const job: CreateJobInput = { ...a1111Fields(read), scheduler: read.string('sampler_name', 64), numImages, strength };
  // A1111 answers base64 only.
  return read.done({ format: 'a1111', returnType: 'base64', job: withoutUndefined(job), images });
}

function parseCustom(input: Json): ReadInput {
  const read = new Reader(input, 'input');
  read.absent('the custom worker takes text only', 'image', 'image_url', 'images');
  const job: CreateJobInput = {
    ...a1111Fields(read),
    scheduler: read.string('sampler_name', 64) ?? read.string('scheduler', 64),
    numImages: 1,
  };
  const returnType = read.returnType('return_type') ?? 'url';
  return read.done({ format: 'custom', returnType, job: withoutUndefined(job), images: [] });
}

type Link = [string, number];
const isLink = (value: unknown): value is Link => Array.isArray(value) && typeof value[0] === 'string' && typeof value[1] === 'number';
const inputsOf = (node: Json | undefined): Json => (node && isObject(node.inputs) ? node.inputs : {});

/** A node of the graph with its id, for messages and readers. */
interface NodeRef {
  id: string;
  inputs: Json;
}

/** Where a KSampler's latent comes from: an empty latent (text to image), or an image the graph loads and encodes. */
type LatentSource =
  | { kind: 'empty'; latent: NodeRef; batch?: NodeRef }
  | { kind: 'image'; init: NodeRef; scale?: NodeRef; mask?: NodeRef; batch?: NodeRef };

/** LoadImageMask's channels that read a black-and-white mask as darkroom does (white repaints); `alpha` is inverted by ComfyUI. */
const MASK_CHANNELS = ['red', 'green', 'blue'];

/**
 * Follows the KSampler's `latent_image` back to where the latent starts: EmptyLatentImage, or
 * VAEEncode / VAEEncodeForInpaint of a LoadImage (through an optional ImageScale), with a mask from
 * SetLatentNoiseMask or VAEEncodeForInpaint loaded by LoadImageMask, and RepeatLatentBatch for a
 * batch. The graphs the runpod provider builds are of this shape, as are ComfyUI's own
 * image-to-image and inpainting examples.
 */
function traceLatent(nodes: Record<string, Json>, samplerId: string, start: unknown, problems: string[]): LatentSource | undefined {
  const ref = (link: Link): NodeRef => ({ id: link[0], inputs: inputsOf(nodes[link[0]]) });
  const classOf = (link: unknown) => (isLink(link) ? nodes[link[0]]?.class_type : undefined);

  const traceMask = (link: unknown): NodeRef | undefined => {
    if (classOf(link) !== 'LoadImageMask') {
      problems.push(`input.workflow: the mask of KSampler ${samplerId} must come from a LoadImageMask node, reading a black-and-white image`);
      return undefined;
    }
    const mask = ref(link as Link);
    const channel = mask.inputs.channel ?? 'red';
    if (typeof channel !== 'string' || !MASK_CHANNELS.includes(channel)) {
      problems.push(`input.workflow.${mask.id}.inputs.channel must be red, green or blue: darkroom reads a mask's white pixels as the ones to repaint`);
    }
    return mask;
  };

  const traceImage = (link: unknown): { init: NodeRef; scale?: NodeRef } | undefined => {
    let scale: NodeRef | undefined;
    if (classOf(link) === 'ImageScale') {
      scale = ref(link as Link);
      link = scale.inputs.image;
    }
    if (classOf(link) !== 'LoadImage') {
      problems.push(`input.workflow: the image KSampler ${samplerId} starts from must come from a LoadImage node (optionally through ImageScale)`);
      return undefined;
    }
    return { init: ref(link as Link), ...(scale ? { scale } : {}) };
  };

  let link = start;
  let batch: NodeRef | undefined;
  let mask: NodeRef | undefined;
  for (let depth = 0; depth < 4 && isLink(link); depth += 1) {
    const node = ref(link);
    switch (classOf(link)) {
      case 'EmptyLatentImage':
        if (mask) break;
        return { kind: 'empty', latent: node, ...(batch ? { batch } : {}) };
      case 'RepeatLatentBatch':
        if (batch) break;
        batch = node;
        link = node.inputs.samples;
        continue;
      case 'SetLatentNoiseMask':
        if (mask) break;
        mask = traceMask(node.inputs.mask);
        link = node.inputs.samples;
        continue;
      case 'VAEEncode':
      case 'VAEEncodeForInpaint': {
        if (classOf(link) === 'VAEEncodeForInpaint') mask = traceMask(node.inputs.mask);
        const image = traceImage(node.inputs.pixels);
        return image && { kind: 'image', ...image, ...(mask ? { mask } : {}), ...(batch ? { batch } : {}) };
      }
    }
    break;
  }
  if (problems.length === 0) {
    problems.push(
      `input.workflow: KSampler ${samplerId} must sample an empty latent image (EmptyLatentImage) with a width and height, or an image it loads (LoadImage → VAEEncode)`,
    );
  }
  return undefined;
}

/** worker-comfyui's `images`: files the graph's load nodes name. */
function comfyuiFiles(input: Json): Map<string, string> {
  const images = input.images;
  if (images === undefined || images === null) return new Map();
  if (!Array.isArray(images) || !images.every((image) => isObject(image) && typeof image.name === 'string' && typeof image.image === 'string')) {
    throw new RunpodInputError(["input.images must be a list of objects with 'name' and 'image' keys (strings)"]);
  }
  const files = new Map<string, string>();
  for (const [index, image] of (images as { name: string; image: string }[]).entries()) {
    if (files.has(image.name)) throw new RunpodInputError([`input.images[${index}].name ${JSON.stringify(image.name)} is given twice: names must be unique`]);
    files.set(image.name, image.image);
  }
  return files;
}

/**
 * A ComfyUI API-format graph, read the way ComfyUI would run it: the KSampler's settings, the prompt
 * text found by following its positive and negative links back to a text encoder, the size and batch
 * of the latent it samples (empty, or an image from `input.images` with its mask), and the
 * checkpoint file (kept as the model).
 */
function parseComfyui(input: Json): ReadInput {
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
  const files = comfyuiFiles(input);
  const nodes = workflow as Record<string, Json>;
  const entry = Object.entries(nodes).find(([, node]) => node.class_type === 'KSampler' || node.class_type === 'KSamplerAdvanced');
  if (!entry) {
    throw new RunpodInputError(['input.workflow has no KSampler node; darkroom runs workflows built around one']);
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
  const source = traceLatent(nodes, samplerId, settings.latent_image, problems);
  if (source?.kind === 'empty') {
    const latent = literals(source.latent.inputs);
    if (latent.width === undefined || latent.height === undefined) {
      problems.push(`input.workflow: the EmptyLatentImage node ${source.latent.id} KSampler ${samplerId} samples needs a width and height`);
    }
  }
  const checkpoint = Object.values(nodes).find((node) => node.class_type === 'CheckpointLoaderSimple');
  if (problems.length > 0 || !source) throw new RunpodInputError(problems);

  const samplerRead = new Reader(values, `input.workflow.${samplerId}.inputs`);
  const textRead = new Reader({ prompt, negative: textBehind(settings.negative) }, 'input.workflow');
  const checkpointRead = new Reader(inputsOf(checkpoint), 'input.workflow.checkpoint');
  const readers = [samplerRead, textRead, checkpointRead];
  const readerOf = (node: NodeRef) => {
    const reader = new Reader(literals(node.inputs), `input.workflow.${node.id}.inputs`);
    readers.push(reader);
    return reader;
  };

  let size: { width?: number; height?: number; numImages?: number; strength?: number };
  const images: ImageField[] = [];
  if (source.kind === 'empty') {
    const latentRead = readerOf(source.latent);
    size = { width: latentRead.dimension('width', 512), height: latentRead.dimension('height', 512), numImages: latentRead.integer('batch_size', 1, 10, 1) };
  } else {
    const file = (node: NodeRef, role: 'init' | 'mask') => {
      const name = node.inputs.image;
      const text = typeof name === 'string' ? files.get(name) : undefined;
      if (text === undefined) {
        readerOf(node).problems.push(
          `input.workflow.${node.id}.inputs.image must name one of input.images (${JSON.stringify(name)} is not there): darkroom has no other ComfyUI input files`,
        );
        return;
      }
      images.push({ role, path: `input.images[${[...files.keys()].indexOf(name as string)}].image`, text });
    };
    file(source.init, 'init');
    if (source.mask) file(source.mask, 'mask');
    const scaleRead = source.scale && readerOf(source.scale);
    size = {
      ...(scaleRead ? { width: scaleRead.dimension('width', 512), height: scaleRead.dimension('height', 512) } : {}),
      numImages: 1,
      strength: samplerRead.number('denoise', 0, 1) ?? 1,
    };
  }
  if (source.batch) {
    const amount = readerOf(source.batch).integer('amount', 1, 10, 1);
    size.numImages = amount === undefined ? undefined : amount * (size.numImages ?? 1);
    if ((size.numImages ?? 0) > 10) samplerRead.problems.push('input.workflow: the batch must be at most 10 images');
  }

  const job: CreateJobInput = {
    prompt: textRead.string('prompt', 4000, { required: true }) ?? '',
    negativePrompt: textRead.string('negative', 4000) || undefined,
    ...size,
    steps: samplerRead.integer('steps', 1, 150),
    cfgScale: samplerRead.number('cfg', 1, 30),
    seed: samplerRead.seed(values.noise_seed !== undefined ? 'noise_seed' : 'seed', { wrap: true }),
    scheduler: samplerRead.string('sampler_name', 64),
    model: checkpointRead.string('ckpt_name', 500),
  };
  const all = readers.flatMap((reader) => reader.problems);
  if (all.length > 0) throw new RunpodInputError(all);
  // worker-comfyui answers base64 unless its own bucket is configured.
  return { format: 'comfyui', returnType: 'base64', job: withoutUndefined(job), images, sizeFromInit: source.kind === 'image' && !source.scale };
}

function readInput(input: Json): ReadInput {
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

/** ComfyUI's VAE encodes whole 8-pixel blocks: an image's output is its size rounded down to them. */
const latentSide = (side: number) => Math.max(8, side - (side % 8));

/** Maps a RunPod job `input` to darkroom's request, refusing what darkroom cannot run. */
export async function parseRunpodInput(input: Json): Promise<ParsedInput> {
  const { images, sizeFromInit, ...parsed } = readInput(input);
  if (images.length === 0) return parsed;
  const problems: string[] = [];
  const decoded = await decodeImages(images, problems);
  if (problems.length > 0) throw new RunpodInputError(problems);
  const job: CreateJobInput = { ...parsed.job, images: decoded.sources };
  const imagePaths = images.map((image) => image.path);
  if (sizeFromInit && decoded.init) {
    const reader = new Reader({ width: latentSide(decoded.init.width), height: latentSide(decoded.init.height) }, 'input.images (the init image)');
    job.width = reader.dimension('width', 512);
    job.height = reader.dimension('height', 512);
    reader.done(undefined);
  }
  return { ...parsed, job, imagePaths };
}
