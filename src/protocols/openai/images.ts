/**
 * The OpenAI Images API (POST /v1/images/generations, /edits, /variations): its parameters, its
 * answers, its stream events and the limits of each model, as the official `openai` package types
 * them (resources/images). Shared by darkroom's OpenAI dialect and its OpenAI provider.
 */

export type ImageOperation = 'generations' | 'edits' | 'variations';

export const RESPONSE_FORMATS = ['url', 'b64_json'] as const;
export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp'] as const;
export const BACKGROUNDS = ['transparent', 'opaque', 'auto'] as const;
export const MODERATIONS = ['low', 'auto'] as const;
export const INPUT_FIDELITIES = ['high', 'low'] as const;
export const QUALITIES = ['standard', 'hd', 'low', 'medium', 'high', 'auto'] as const;
export const STYLES = ['vivid', 'natural'] as const;

export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export type Background = (typeof BACKGROUNDS)[number];
export type Quality = (typeof QUALITIES)[number];

/** What one model accepts. */
export interface ImageModelLimits {
  /** `WxH` sizes it renders; `auto` is listed where the model takes it. */
  sizes: readonly string[];
  /** Most images per request. */
  maxImages: number;
  /** Longest prompt, in characters. */
  maxPromptLength: number;
  qualities: readonly Quality[];
  /** Most input images of one edit (0: it does no edits). */
  maxEditImages: number;
  variations: boolean;
  /** Whether it answers only base64 (the GPT image models ignore response_format). */
  base64Only: boolean;
  /** Whether it takes the GPT image models' parameters (output_format, background, moderation, …). */
  gptImage: boolean;
  /** The size it renders when none is asked. */
  defaultSize: string;
}

const GPT_IMAGE: ImageModelLimits = {
  sizes: ['1024x1024', '1536x1024', '1024x1536', 'auto'],
  maxImages: 10,
  maxPromptLength: 32_000,
  qualities: ['low', 'medium', 'high', 'auto'],
  maxEditImages: 16,
  variations: false,
  base64Only: true,
  gptImage: true,
  defaultSize: '1024x1024',
};

/** OpenAI's image models (ImageModel in the package), with the limits its API reference gives each. */
export const IMAGE_MODELS: Readonly<Record<string, ImageModelLimits>> = {
  'gpt-image-1': GPT_IMAGE,
  'gpt-image-1-mini': GPT_IMAGE,
  'gpt-image-1.5': GPT_IMAGE,
  'gpt-image-2': GPT_IMAGE,
  'gpt-image-2-2026-04-21': GPT_IMAGE,
  'chatgpt-image-latest': GPT_IMAGE,
  'dall-e-3': {
    sizes: ['1024x1024', '1792x1024', '1024x1792'],
    maxImages: 1,
    maxPromptLength: 4000,
    qualities: ['standard', 'hd'],
    maxEditImages: 0,
    variations: false,
    base64Only: false,
    gptImage: false,
    defaultSize: '1024x1024',
  },
  'dall-e-2': {
    sizes: ['256x256', '512x512', '1024x1024'],
    maxImages: 10,
    maxPromptLength: 1000,
    qualities: ['standard'],
    maxEditImages: 1,
    variations: true,
    base64Only: false,
    gptImage: false,
    defaultSize: '1024x1024',
  },
};

/** The model OpenAI uses when a request names none. */
export const DEFAULT_IMAGE_MODEL = 'dall-e-2';

/** A model's limits, or undefined for a model OpenAI does not have (another server's, or one darkroom routes elsewhere). */
export const limitsOf = (model: string): ImageModelLimits | undefined => (Object.hasOwn(IMAGE_MODELS, model) ? IMAGE_MODELS[model] : undefined);

const SIZE = /^([1-9]\d{1,4})x([1-9]\d{1,4})$/;

/** `1024x1536` as pixels; undefined for `auto` or text that is not a size. */
export function parseSize(size: string): { width: number; height: number } | undefined {
  const match = SIZE.exec(size);
  return match ? { width: Number(match[1]), height: Number(match[2]) } : undefined;
}

export const sizeText = (width: number, height: number) => `${width}x${height}`;

/** The parameters of a generation (ImageGenerateParams). */
export interface ImageGenerateParams {
  prompt: string;
  model?: string;
  n?: number;
  size?: string;
  quality?: Quality;
  style?: (typeof STYLES)[number];
  response_format?: ResponseFormat;
  output_format?: OutputFormat;
  output_compression?: number;
  background?: Background;
  moderation?: (typeof MODERATIONS)[number];
  user?: string;
  stream?: boolean;
  partial_images?: number;
}

/** The text fields of an edit (ImageEditParams); `image` and `mask` are files. */
export interface ImageEditParams extends Omit<ImageGenerateParams, 'style' | 'moderation'> {
  input_fidelity?: (typeof INPUT_FIDELITIES)[number];
}

/** The text fields of a variation (ImageCreateVariationParams); `image` is a file. */
export type ImageVariationParams = Pick<ImageGenerateParams, 'model' | 'n' | 'size' | 'response_format' | 'user'>;

export interface ImageObject {
  b64_json?: string;
  url?: string;
  revised_prompt?: string;
}

export interface ImageUsage {
  input_tokens: number;
  input_tokens_details: { image_tokens: number; text_tokens: number };
  output_tokens: number;
  total_tokens: number;
}

const tokenCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;

/**
 * The `usage` of an ImagesResponse, when it is there and well formed (the GPT image models send
 * it, dall-e does not): counts that are not whole non-negative numbers are no usage at all, and
 * missing details are read as text tokens only.
 */
export function readImageUsage(value: unknown): ImageUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const usage = value as Record<string, unknown>;
  if (!tokenCount(usage.input_tokens) || !tokenCount(usage.output_tokens)) return undefined;
  const details = (typeof usage.input_tokens_details === 'object' && usage.input_tokens_details !== null ? usage.input_tokens_details : {}) as Record<string, unknown>;
  const image = tokenCount(details.image_tokens) ? details.image_tokens : 0;
  const text = tokenCount(details.text_tokens) ? details.text_tokens : usage.input_tokens - image;
  return {
    input_tokens: usage.input_tokens,
    input_tokens_details: { image_tokens: image, text_tokens: Math.max(0, text) },
    output_tokens: usage.output_tokens,
    total_tokens: tokenCount(usage.total_tokens) ? usage.total_tokens : usage.input_tokens + usage.output_tokens,
  };
}

export interface ImagesResponse {
  created: number;
  data?: ImageObject[];
  background?: 'transparent' | 'opaque';
  output_format?: OutputFormat;
  quality?: 'low' | 'medium' | 'high';
  size?: string;
  usage?: ImageUsage;
}

/** One server-sent event of a streamed generation or edit; its SSE `event:` name is its `type`. */
export interface ImageStreamEvent {
  type: `${'image_generation' | 'image_edit'}.${'partial_image' | 'completed'}`;
  b64_json: string;
  background: Background;
  created_at: number;
  output_format: OutputFormat;
  quality: 'low' | 'medium' | 'high' | 'auto';
  size: string;
  partial_image_index?: number;
  usage?: ImageUsage;
}

export const streamEventType = (operation: 'generations' | 'edits', kind: 'partial_image' | 'completed'): ImageStreamEvent['type'] =>
  `${operation === 'generations' ? 'image_generation' : 'image_edit'}.${kind}`;

/** A refusal of one parameter, as OpenAI words it: the parameter, the sentence, and its code. */
export interface ParamProblem {
  param: string;
  message: string;
  code: 'invalid_value' | 'invalid_type' | 'missing_required_parameter' | 'unknown_parameter' | 'integer_below_min_value' | 'integer_above_max_value';
}

const quoted = (values: readonly string[]) => values.map((value) => `'${value}'`).join(', ');

/** Most images of one request on a model OpenAI does not have (darkroom's own limit of numImages). */
export const MAX_IMAGES = 10;
/** Longest prompt for a model OpenAI does not have (darkroom's own limit). */
export const MAX_PROMPT_LENGTH = 4000;
/** Sides darkroom renders for a model OpenAI does not have. */
export const SIDE_LIMITS = { min: 64, max: 2048, multiple: 8 } as const;

const FIELDS: Record<ImageOperation, readonly string[]> = {
  generations: ['prompt', 'model', 'n', 'size', 'quality', 'style', 'response_format', 'output_format', 'output_compression', 'background', 'moderation', 'user', 'stream', 'partial_images'],
  edits: ['prompt', 'model', 'n', 'size', 'quality', 'response_format', 'output_format', 'output_compression', 'background', 'input_fidelity', 'user', 'stream', 'partial_images'],
  variations: ['model', 'n', 'size', 'response_format', 'user'],
};

/**
 * Reads the parameters of one image request, as a JSON body or as the text parts of a multipart
 * form (`form`: numbers and booleans arrive as text), checking each against OpenAI's rules and the
 * limits of the model asked for. A model OpenAI does not have is checked against darkroom's own
 * limits instead, so an app may name any model a server behind darkroom knows. `null` means unset,
 * as the package sends it.
 */
export function readImageParams(
  operation: 'generations',
  fields: Record<string, unknown>,
  options?: { form?: boolean; defaultModel?: string },
): { params: ImageGenerateParams } | { problem: ParamProblem };
export function readImageParams(
  operation: 'edits',
  fields: Record<string, unknown>,
  options?: { form?: boolean; defaultModel?: string },
): { params: ImageEditParams } | { problem: ParamProblem };
export function readImageParams(
  operation: 'variations',
  fields: Record<string, unknown>,
  options?: { form?: boolean; defaultModel?: string },
): { params: ImageVariationParams } | { problem: ParamProblem };
export function readImageParams(
  operation: ImageOperation,
  fields: Record<string, unknown>,
  options: { form?: boolean; defaultModel?: string } = {},
): { params: ImageGenerateParams | ImageEditParams | ImageVariationParams } | { problem: ParamProblem } {
  const form = options.form ?? false;
  const known = FIELDS[operation];
  const unknown = Object.keys(fields).find((name) => !known.includes(name));
  if (unknown !== undefined) return { problem: { param: unknown, message: `Unknown parameter: '${unknown}'.`, code: 'unknown_parameter' } };
  const present = (name: string) => fields[name] !== undefined && fields[name] !== null;

  const text = (name: string, maxLength: number): string | ParamProblem | undefined => {
    if (!present(name)) return undefined;
    const value = fields[name];
    if (typeof value !== 'string') return { param: name, message: `Invalid type for '${name}': expected a string, but got ${typeName(value)} instead.`, code: 'invalid_type' };
    if (value.length > maxLength) return { param: name, message: `Invalid '${name}': string too long. Expected a string with maximum length ${maxLength}, but got a string with length ${value.length} instead.`, code: 'invalid_value' };
    return value;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T | ParamProblem | undefined => {
    const value = text(name, 64);
    if (value === undefined || typeof value === 'object') return value;
    if (!(allowed as readonly string[]).includes(value)) {
      return { param: name, message: `Invalid value: '${value}'. Supported values are: ${quoted(allowed)}.`, code: 'invalid_value' };
    }
    return value as T;
  };
  const integer = (name: string, min: number, max: number): number | ParamProblem | undefined => {
    if (!present(name)) return undefined;
    let value = fields[name];
    if (form && typeof value === 'string' && /^-?\d+$/.test(value.trim())) value = Number(value.trim());
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      return { param: name, message: `Invalid type for '${name}': expected an integer, but got ${typeName(value)} instead.`, code: 'invalid_type' };
    }
    if (value < min) return { param: name, message: `Invalid '${name}': integer below minimum value. Expected a value >= ${min}, but got ${value} instead.`, code: 'integer_below_min_value' };
    if (value > max) return { param: name, message: `Invalid '${name}': integer above maximum value. Expected a value <= ${max}, but got ${value} instead.`, code: 'integer_above_max_value' };
    return value;
  };
  const boolean = (name: string): boolean | ParamProblem | undefined => {
    if (!present(name)) return undefined;
    const value = form && typeof fields[name] === 'string' ? ({ true: true, false: false } as Record<string, boolean>)[String(fields[name]).trim()] : fields[name];
    if (typeof value !== 'boolean') return { param: name, message: `Invalid type for '${name}': expected a boolean, but got ${typeName(fields[name])} instead.`, code: 'invalid_type' };
    return value;
  };

  const model = text('model', 500);
  if (typeof model === 'object') return { problem: model };
  const modelName = model === undefined || model.trim() === '' ? (options.defaultModel ?? DEFAULT_IMAGE_MODEL) : model;
  const limits = limitsOf(modelName);

  const params: Record<string, unknown> = {};
  const read: [string, () => unknown][] = [
    ['model', () => model],
    ['n', () => integer('n', 1, limits?.maxImages ?? MAX_IMAGES)],
    ['size', () => readSize(fields.size, limits)],
    ['response_format', () => oneOf('response_format', RESPONSE_FORMATS)],
    ['user', () => text('user', 500)],
  ];
  if (operation !== 'variations') {
    read.push(
      ['prompt', () => readPrompt(fields.prompt, limits?.maxPromptLength ?? MAX_PROMPT_LENGTH)],
      ['quality', () => oneOf('quality', limits?.qualities ?? QUALITIES)],
      ['output_format', () => oneOf('output_format', OUTPUT_FORMATS)],
      ['output_compression', () => integer('output_compression', 0, 100)],
      ['background', () => oneOf('background', BACKGROUNDS)],
      ['stream', () => boolean('stream')],
      ['partial_images', () => integer('partial_images', 0, 3)],
    );
  }
  if (operation === 'generations') read.push(['style', () => oneOf('style', STYLES)], ['moderation', () => oneOf('moderation', MODERATIONS)]);
  if (operation === 'edits') read.push(['input_fidelity', () => oneOf('input_fidelity', INPUT_FIDELITIES)]);

  for (const [name, reader] of read) {
    const value = reader();
    if (isProblem(value)) return { problem: value };
    if (value !== undefined) params[name] = value;
  }
  if (params.style !== undefined && limits && modelName !== 'dall-e-3') {
    return { problem: { param: 'style', message: `The 'style' parameter is only supported for dall-e-3.`, code: 'invalid_value' } };
  }
  if (limits && operation === 'edits' && limits.maxEditImages === 0) {
    return { problem: { param: 'model', message: `Invalid value: '${modelName}'. ${modelName} does not support image edits.`, code: 'invalid_value' } };
  }
  if (limits && operation === 'variations' && !limits.variations) {
    return { problem: { param: 'model', message: `Invalid value: '${modelName}'. Only dall-e-2 makes variations.`, code: 'invalid_value' } };
  }
  return { params: params as unknown as ImageGenerateParams };
}

function readPrompt(value: unknown, maxLength: number): string | ParamProblem {
  if (value === undefined || value === null) return { param: 'prompt', message: "Missing required parameter: 'prompt'.", code: 'missing_required_parameter' };
  if (typeof value !== 'string') return { param: 'prompt', message: `Invalid type for 'prompt': expected a string, but got ${typeName(value)} instead.`, code: 'invalid_type' };
  if (value.trim() === '') return { param: 'prompt', message: "Invalid 'prompt': empty string. Expected a string with minimum length 1.", code: 'invalid_value' };
  if (value.length > maxLength) {
    return { param: 'prompt', message: `Invalid 'prompt': string too long. Expected a string with maximum length ${maxLength}, but got a string with length ${value.length} instead.`, code: 'invalid_value' };
  }
  return value;
}

function readSize(value: unknown, limits: ImageModelLimits | undefined): string | ParamProblem | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return { param: 'size', message: `Invalid type for 'size': expected a string, but got ${typeName(value)} instead.`, code: 'invalid_type' };
  const sizes = limits?.sizes;
  if (sizes) {
    if (!sizes.includes(value)) return { param: 'size', message: `Invalid value: '${value.slice(0, 64)}'. Supported values are: ${quoted(sizes)}.`, code: 'invalid_value' };
    return value;
  }
  if (value === 'auto') return value;
  const { min, max, multiple } = SIDE_LIMITS;
  const parsed = parseSize(value);
  if (!parsed || [parsed.width, parsed.height].some((side) => side < min || side > max || side % multiple !== 0)) {
    return {
      param: 'size',
      message: `Invalid value: '${value.slice(0, 64)}'. Supported values are 'auto' and WIDTHxHEIGHT with sides from ${min} to ${max}, multiples of ${multiple}.`,
      code: 'invalid_value',
    };
  }
  return value;
}

function isProblem(value: unknown): value is ParamProblem {
  return typeof value === 'object' && value !== null && 'param' in value && 'code' in value;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  return `a ${typeof value}`;
}

/** The pixels a size means for `model`: `auto` is the model's default size (darkroom's 1024 square elsewhere). */
export function pixelsOf(size: string | undefined, model: string): { width: number; height: number } {
  const chosen = size === undefined || size === 'auto' ? (limitsOf(model)?.defaultSize ?? '1024x1024') : size;
  return parseSize(chosen) ?? { width: 1024, height: 1024 };
}
