import { Type, type Static } from 'typebox';

/**
 * GenerationRequest: the normalised, provider-neutral description of a text-to-image job. Every
 * dialect translates its own request into this shape; providers translate it into theirs.
 */
export const NetworkSchema = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 64 }),
    strength: Type.Optional(Type.Number({ minimum: -10, maximum: 10 })),
    triggerWord: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

/** What a job's webhook is told of: terminal statuses (`completed`, the default), every status change, each stored image, its batch's end. */
export const WEBHOOK_EVENT_FILTERS = ['completed', 'status', 'image', 'batch.completed'] as const;
export type WebhookEventFilter = (typeof WEBHOOK_EVENT_FILTERS)[number];
export const WEBHOOK_URL_MAX_LENGTH = 2000;

const dimension = (description: string) =>
  Type.Integer({ minimum: 64, maximum: 2048, multipleOf: 8, default: 512, description });

/** Options shared by a single job and by every job of a batch. */
export const GenerationOptionsSchema = Type.Object(
  {
    negativePrompt: Type.Optional(Type.String({ maxLength: 4000 })),
    width: Type.Optional(dimension('Image width in pixels: 64–2048, a multiple of 8.')),
    height: Type.Optional(dimension('Image height in pixels: 64–2048, a multiple of 8.')),
    steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 150 })),
    cfgScale: Type.Optional(Type.Number({ minimum: 1, maximum: 30 })),
    seed: Type.Optional(
      Type.Integer({ minimum: -1, maximum: 4294967295, description: 'Absent or -1 means a random seed.' }),
    ),
    scheduler: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    style: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'Model AIR.' })),
    additionalNetworks: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 500 }), NetworkSchema, { maxProperties: 20 }),
    ),
    numImages: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, default: 1 })),
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    priority: Type.Optional(
      Type.Integer({ minimum: -100, maximum: 100, default: 0, description: 'Higher runs first.' }),
    ),
    deadline: Type.Optional(
      Type.String({ format: 'date-time', description: 'The job expires if it has not succeeded by then.' }),
    ),
    metadata: Type.Optional(
      Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
        maxProperties: 50,
        description: 'Free JSON kept with the job (at most 16 KiB serialised).',
      }),
    ),
    webhook: Type.Optional(
      Type.String({
        format: 'uri',
        pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
        maxLength: WEBHOOK_URL_MAX_LENGTH,
        description: 'http(s) URL that darkroom POSTs the events of `webhookEvents` to, signed as Standard Webhooks.',
      }),
    ),
    webhookEvents: Type.Optional(
      Type.Array(Type.Enum(WEBHOOK_EVENT_FILTERS), {
        minItems: 1,
        maxItems: WEBHOOK_EVENT_FILTERS.length,
        uniqueItems: true,
        description: 'Which events reach `webhook` (default: completed).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PromptSchema = Type.String({ minLength: 1, maxLength: 4000 });

export const CreateJobSchema = Type.Object(
  { prompt: PromptSchema, ...GenerationOptionsSchema.properties },
  { additionalProperties: false },
);
export type CreateJobInput = Static<typeof CreateJobSchema>;

/** The stored request: defaults applied, the provider resolved. */
export interface GenerationRequest {
  prompt: string;
  negativePrompt?: string;
  width: number;
  height: number;
  steps?: number;
  cfgScale?: number;
  /** Absent means random; the seed actually used is recorded on each image. */
  seed?: number;
  scheduler?: string;
  style?: string;
  model?: string;
  additionalNetworks?: Record<string, { type: string; strength?: number; triggerWord?: string }>;
  numImages: number;
  provider?: string;
  priority: number;
  deadline?: string;
  metadata?: Record<string, unknown>;
  webhook?: string;
  /** Present whenever `webhook` is. */
  webhookEvents?: WebhookEventFilter[];
}

export const METADATA_MAX_BYTES = 16 * 1024;

export function normaliseRequest(input: CreateJobInput): GenerationRequest {
  const { seed, ...rest } = input;
  const request: GenerationRequest = {
    ...rest,
    width: input.width ?? 512,
    height: input.height ?? 512,
    numImages: input.numImages ?? 1,
    priority: input.priority ?? 0,
  };
  if (seed !== undefined && seed !== -1) request.seed = seed;
  if (request.webhook !== undefined) request.webhookEvents ??= ['completed'];
  return request;
}
