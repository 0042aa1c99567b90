import type { BatchInput, CreateJobInput, InputSource, Job } from 'darkroom/client';

/**
 * The prompt form's values as the inputs hold them (text), and their translation to and from the
 * API's request. Kept free of the DOM so it can be tested on its own. An empty optional field is
 * left out of the request, so the server's defaults apply; nothing is validated here: the API's
 * problem details are the one source of truth and are shown next to the form.
 */
export interface FormValues {
  prompt: string;
  /** One prompt per line, one job each. */
  batch: boolean;
  negativePrompt: string;
  width: string;
  height: string;
  steps: string;
  cfgScale: string;
  /** Empty: a random seed, chosen by the server. */
  seed: string;
  numImages: string;
  /** Empty: the server's default provider (or its routing rules). */
  provider: string;
  style: string;
  /** 0–1, sent with an init image only: how much it may change. */
  strength: string;
}

export const DEFAULT_STRENGTH = '0.75';

export const DEFAULT_VALUES: FormValues = {
  prompt: '',
  batch: false,
  negativePrompt: '',
  width: '512',
  height: '512',
  steps: '',
  cfgScale: '',
  seed: '',
  numImages: '1',
  provider: '',
  style: '',
  strength: DEFAULT_STRENGTH,
};

export const SIZE_PRESETS = [
  { label: 'Square 512', width: 512, height: 512 },
  { label: 'Square 768', width: 768, height: 768 },
  { label: 'Square 1024', width: 1024, height: 1024 },
  { label: 'Landscape 3:2', width: 768, height: 512 },
  { label: 'Portrait 2:3', width: 512, height: 768 },
  { label: 'Wide 16:9', width: 1024, height: 576 },
  { label: 'Tall 9:16', width: 576, height: 1024 },
] as const;

/** The preset matching the size, or undefined for a custom one. */
export function presetOf(values: Pick<FormValues, 'width' | 'height'>): (typeof SIZE_PRESETS)[number] | undefined {
  return SIZE_PRESETS.find((preset) => String(preset.width) === values.width.trim() && String(preset.height) === values.height.trim());
}

const MAX_SEED = 4294967295;

export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;
}

/** A number field: absent when empty; anything else is sent as typed for the API to judge. */
function numberField(text: string): number | undefined {
  const trimmed = text.trim();
  return trimmed === '' ? undefined : Number(trimmed);
}

function textField(text: string): string | undefined {
  const trimmed = text.trim();
  return trimmed === '' ? undefined : trimmed;
}

type Options = Omit<CreateJobInput, 'prompt'>;

function optionsOf(values: FormValues): Options {
  const options: Options = {
    negativePrompt: textField(values.negativePrompt),
    width: numberField(values.width),
    height: numberField(values.height),
    steps: numberField(values.steps),
    cfgScale: numberField(values.cfgScale),
    seed: numberField(values.seed),
    numImages: numberField(values.numImages),
    provider: textField(values.provider),
    style: textField(values.style),
  };
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Options;
}

/** The input images and their strength; nothing for text-to-image (strength means nothing without an init image). */
function inputsOf(values: FormValues, images: InputSource[]): Pick<CreateJobInput, 'images' | 'strength'> {
  if (images.length === 0) return {};
  const strength = images.some((image) => image.role === 'init') ? numberField(values.strength) : undefined;
  return strength === undefined ? { images } : { images, strength };
}

/** `images`: the uploaded input images, in request order (init, then mask). */
export function toJobInput(values: FormValues, images: InputSource[] = []): CreateJobInput {
  return { prompt: values.prompt.trim(), ...optionsOf(values), ...inputsOf(values, images) };
}

/** Each non-blank line is one prompt. */
export function batchPrompts(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** With input images, every line is a job of its own with the same images (a batch's shared options have no images). */
export function toBatchInput(values: FormValues, images: InputSource[] = []): BatchInput {
  const prompts = batchPrompts(values.prompt);
  if (images.length === 0) return { prompts, ...optionsOf(values) };
  return { jobs: prompts.map((prompt) => ({ prompt, ...inputsOf(values, images) })), ...optionsOf(values) };
}

/**
 * The form filled from a finished job, to make it again. `seed` is the seed of the image being
 * reused (each image of a job has its own), so the result can be reproduced even when the job
 * asked for a random one.
 */
export function valuesFromJob(request: Job['request'], seed: number | null): FormValues {
  const text = (value: string | number | undefined) => (value === undefined ? '' : String(value));
  const chosenSeed = seed ?? (request.seed !== undefined && request.seed >= 0 && request.seed <= MAX_SEED ? request.seed : undefined);
  return {
    prompt: request.prompt,
    batch: false,
    negativePrompt: text(request.negativePrompt),
    width: text(request.width ?? 512),
    height: text(request.height ?? 512),
    steps: text(request.steps),
    cfgScale: text(request.cfgScale),
    seed: text(chosenSeed),
    numImages: text(request.numImages ?? 1),
    provider: text(request.provider),
    style: text(request.style),
    strength: text(request.strength ?? Number(DEFAULT_STRENGTH)),
  };
}

/** Whether any advanced option differs from the defaults (the form then shows them). */
export function hasAdvancedValues(values: FormValues): boolean {
  return (Object.keys(DEFAULT_VALUES) as (keyof FormValues)[]).some(
    (key) => key !== 'prompt' && key !== 'batch' && key !== 'strength' && values[key] !== DEFAULT_VALUES[key],
  );
}

/** darkroom's limits for an output size: 64–2048, a multiple of 8. */
const fitDimension = (pixels: number) => Math.min(2048, Math.max(64, Math.round(pixels / 8) * 8));

/** The output size nearest an input image's that the API accepts. */
export function outputSizeFor(width: number, height: number): { width: string; height: string } {
  return { width: String(fitDimension(width)), height: String(fitDimension(height)) };
}
