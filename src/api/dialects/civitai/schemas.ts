import { Type, type Static } from 'typebox';
import type { CreateJobInput } from '../../../core/request.ts';
import { airMistake, ASSET_TYPES, canonicalScheduler, isRecord, parseAir, SCHEDULERS } from '../../../protocols/civitai/orchestration.ts';
import type { FieldErrors } from './errors.ts';
import { addError, collectErrors, collectUnstorable, compile } from './validation.ts';

/** darkroom's largest `numImages` (core/request.ts): a bigger `quantity` becomes several darkroom jobs. */
export const MAX_IMAGES_PER_JOB = 10;
export const MAX_QUANTITY = 100;
export const MAX_JOBS_PER_REQUEST = 100;
const PROPERTIES_MAX_BYTES = 16 * 1024;
/** `[d.]hh:mm:ss[.fffffff]`, .NET's TimeSpan text. */
const TIMESPAN = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/;

const NetworkSchema = Type.Object({
  type: Type.Optional(Type.String({ enum: [...ASSET_TYPES] })),
  strength: Type.Optional(Type.Number({ minimum: -10, maximum: 10, nullable: true })),
  triggerWord: Type.Optional(Type.String({ maxLength: 500, nullable: true })),
});

/**
 * A textToImage JobRequest as the v1 spec defines it. Unknown fields are accepted and ignored, as the
 * orchestrator's JSON binder does (the SDK sends `batchSize`); they are kept in the stored spec.
 */
export const JobRequestSchema = Type.Object({
  $type: Type.String({ minLength: 1, maxLength: 100 }),
  baseModel: Type.Optional(Type.String({ maxLength: 64, nullable: true })),
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 500, nullable: true })),
  params: Type.Object({
    prompt: Type.String({ minLength: 1, maxLength: 4000 }),
    negativePrompt: Type.Optional(Type.String({ maxLength: 4000, nullable: true })),
    scheduler: Type.Optional(Type.String({ maxLength: 64, nullable: true })),
    steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 150, nullable: true })),
    cfgScale: Type.Optional(Type.Number({ minimum: 1, maximum: 30, nullable: true })),
    width: Type.Integer({ minimum: 64, maximum: 2048 }),
    height: Type.Integer({ minimum: 64, maximum: 2048 }),
    seed: Type.Optional(Type.Integer({ minimum: -1, maximum: 4294967295, nullable: true })),
    clipSkip: Type.Optional(Type.Integer({ minimum: 0, maximum: 30, nullable: true })),
  }),
  additionalNetworks: Type.Optional(Type.Record(Type.String({ maxLength: 500 }), NetworkSchema, { maxProperties: 20, nullable: true })),
  controlNets: Type.Optional(Type.Array(Type.Unknown(), { nullable: true })),
  quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_QUANTITY, nullable: true })),
  priority: Type.Optional(
    Type.Object(
      { value: Type.Optional(Type.Integer()), min: Type.Optional(Type.Integer()), max: Type.Optional(Type.Integer()) },
      { nullable: true },
    ),
  ),
  properties: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), { maxProperties: 50, nullable: true })),
  callbackUrl: Type.Optional(Type.String({ format: 'uri', maxLength: 2000, nullable: true })),
  expireAt: Type.Optional(Type.String({ format: 'date-time', nullable: true })),
  timeout: Type.Optional(Type.String({ pattern: TIMESPAN.source, nullable: true })),
});
// `nullable` fields may arrive as null; the static type says so where the code reads them.
type Nullable<T> = { [K in keyof T]: T[K] | null };
type JobRequest = Omit<Nullable<Static<typeof JobRequestSchema>>, '$type' | 'params'> & {
  $type: string;
  params: Nullable<Static<typeof JobRequestSchema>['params']> & { prompt: string; width: number; height: number };
};

const validateJobRequest = compile(JobRequestSchema);

/** What the dialect keeps with each darkroom job (Job.dialectData). */
export interface CivitaiJobData {
  /** The request's `properties`, answered back and matched by /jobs/query. */
  properties: Record<string, unknown>;
  /** The JobRequest as received, for `detailed=true`. */
  spec: Record<string, unknown>;
}

export interface PlannedJob {
  input: CreateJobInput;
  data: CivitaiJobData;
}

/**
 * Image inputs as other APIs spell them (Civitai's own v2 image-editing engines take
 * `sourceImage`/`images`). The v1 textToImage job has none, and its binder ignores unknown fields;
 * darkroom refuses these rather than bill a picture that silently left the image out.
 */
const IMAGE_KEYS = ['image', 'images', 'sourceImage', 'sourceImageUrl', 'imageUrl', 'initImage', 'init_images', 'mask', 'maskImage', 'denoise', 'strength'];

/** .NET TimeSpan text in milliseconds. */
export function parseTimeSpan(text: string): number | undefined {
  const match = TIMESPAN.exec(text);
  if (!match) return undefined;
  const [, days, hours, minutes, seconds, fraction] = match;
  const whole = ((Number(days ?? 0) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds);
  return whole * 1000 + Math.round(Number(`0.${fraction ?? '0'}`) * 1000);
}

const NETWORK_TYPE_BY_AIR_TYPE: Record<string, string> = {
  lora: 'Lora',
  locon: 'LoCon',
  lycoris: 'Lycoris',
  embedding: 'TextualInversion',
  textualinversion: 'TextualInversion',
  hypernetwork: 'Hypernetwork',
  vae: 'Vae',
  checkpoint: 'Checkpoint',
};

/**
 * Checks one JobRequest and plans the darkroom jobs that run it: one per started block of
 * MAX_IMAGES_PER_JOB images, consecutive seeds when a seed is given. Every problem is added to
 * `errors` under `prefix`; the plan is null when there was any.
 */
export function planJobRequest(value: unknown, prefix: string, errors: FieldErrors, now = Date.now()): PlannedJob[] | null {
  const field = (name: string) => (prefix ? `${prefix}.${name}` : name);
  const valid = collectErrors(validateJobRequest, value, errors, prefix);
  if (!collectUnstorable(value, errors, prefix) || !valid) return null;
  const job = value as JobRequest;
  const before = Object.keys(errors).length;

  if (job.$type.toLowerCase() !== 'texttoimage') addError(errors, field('$type'), `darkroom runs textToImage jobs only, not '${job.$type}'`);
  const modelMistake = job.model ? airMistake(job.model) : undefined;
  if (modelMistake) addError(errors, field('model'), modelMistake);
  const scheduler = job.params.scheduler ? canonicalScheduler(job.params.scheduler) : undefined;
  if (job.params.scheduler && !scheduler) {
    addError(errors, field('params.scheduler'), `'${job.params.scheduler}' is not a scheduler; use one of ${SCHEDULERS.join(', ')}`);
  }
  for (const air of Object.keys(job.additionalNetworks ?? {})) {
    const mistake = airMistake(air);
    if (mistake) addError(errors, field(`additionalNetworks['${air}']`), mistake);
  }
  if (job.controlNets && job.controlNets.length > 0) {
    addError(errors, field('controlNets'), 'darkroom does not run ControlNets (an image turned into edges, depth or outlines that guide the picture)');
  }
  for (const [path, fields] of [['', job as Record<string, unknown>], ['params.', job.params as Record<string, unknown>]] as const) {
    for (const key of IMAGE_KEYS) {
      if (fields[key] !== undefined && fields[key] !== null) {
        addError(errors, field(`${path}${key}`), 'Civitai’s textToImage jobs take no input image: its API has no image-to-image or inpainting for them');
      }
    }
  }
  if (job.properties && Buffer.byteLength(JSON.stringify(job.properties)) > PROPERTIES_MAX_BYTES) {
    addError(errors, field('properties'), `must serialise to at most ${PROPERTIES_MAX_BYTES} bytes`);
  }
  const deadlines: number[] = [];
  if (job.expireAt) {
    const expireAt = Date.parse(job.expireAt);
    if (expireAt <= now) addError(errors, field('expireAt'), 'must be in the future');
    deadlines.push(expireAt);
  }
  if (job.timeout) {
    const timeoutMs = parseTimeSpan(job.timeout) ?? 0;
    if (timeoutMs <= 0) addError(errors, field('timeout'), 'must be longer than zero');
    deadlines.push(now + timeoutMs);
  }
  if (Object.keys(errors).length > before) return null;

  const additionalNetworks = Object.fromEntries(
    Object.entries(job.additionalNetworks ?? {}).map(([air, network]) => {
      const type = network.type ?? NETWORK_TYPE_BY_AIR_TYPE[parseAir(air)?.type?.toLowerCase() ?? ''] ?? 'Lora';
      const params: { type: string; strength?: number; triggerWord?: string } = { type };
      if (typeof network.strength === 'number') params.strength = network.strength;
      if (typeof network.triggerWord === 'string') params.triggerWord = network.triggerWord;
      return [air, params];
    }),
  );
  const { params } = job;
  const shared: Omit<CreateJobInput, 'numImages' | 'seed'> = { prompt: params.prompt, width: params.width, height: params.height };
  if (typeof params.negativePrompt === 'string') shared.negativePrompt = params.negativePrompt;
  if (typeof params.steps === 'number') shared.steps = params.steps;
  if (typeof params.cfgScale === 'number') shared.cfgScale = params.cfgScale;
  if (scheduler) shared.scheduler = scheduler;
  if (job.model) shared.model = job.model;
  if (Object.keys(additionalNetworks).length > 0) shared.additionalNetworks = additionalNetworks;
  const priority = darkroomPriority(job.priority);
  if (priority !== undefined) shared.priority = priority;
  if (deadlines.length > 0) shared.deadline = new Date(Math.min(...deadlines)).toISOString();
  // The orchestrator calls callbackUrl once the job completes: darkroom's `completed` webhook, in the Civitai payload.
  if (job.callbackUrl) shared.webhook = job.callbackUrl;

  const data: CivitaiJobData = { properties: job.properties ?? {}, spec: value as Record<string, unknown> };
  const quantity = job.quantity ?? 1;
  const seed = typeof params.seed === 'number' && params.seed >= 0 ? params.seed : undefined;
  const planned: PlannedJob[] = [];
  for (let first = 0; first < quantity; first += MAX_IMAGES_PER_JOB) {
    const input: CreateJobInput = { ...shared, numImages: Math.min(MAX_IMAGES_PER_JOB, quantity - first) };
    if (seed !== undefined) input.seed = (seed + first) % 4294967296;
    planned.push({ input, data });
  }
  return planned;
}

/** Civitai runs lower priority values first, darkroom higher ones: the sign flips, within darkroom's range. */
function darkroomPriority(priority: JobRequest['priority']): number | undefined {
  if (!isRecord(priority)) return undefined;
  const { value, min, max } = priority;
  const civitai = typeof value === 'number' ? value : typeof min === 'number' && typeof max === 'number' ? Math.round((min + max) / 2) : undefined;
  return civitai === undefined ? undefined : Math.max(-100, Math.min(100, -civitai));
}
