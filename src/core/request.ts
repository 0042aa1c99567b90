/** What a job's webhook is told of: terminal statuses (`completed`, the default), every status change, each stored image, its batch's end. */
export const WEBHOOK_EVENT_FILTERS = ['completed', 'status', 'image', 'batch.completed'] as const;
export type WebhookEventFilter = (typeof WEBHOOK_EVENT_FILTERS)[number];
export const WEBHOOK_URL_MAX_LENGTH = 2000;

export interface NetworkSettings {
  type: string;
  strength?: number;
  triggerWord?: string;
}

/**
 * A job as a dialect asks for it, before defaults: the fields each dialect's validator has already
 * checked for type and range (the native API's schema is the reference for the limits).
 */
export interface CreateJobInput {
  prompt: string;
  negativePrompt?: string;
  width?: number;
  height?: number;
  steps?: number;
  cfgScale?: number;
  /** Absent or -1 means a random seed. */
  seed?: number;
  scheduler?: string;
  style?: string;
  model?: string;
  additionalNetworks?: Record<string, NetworkSettings>;
  numImages?: number;
  provider?: string;
  priority?: number;
  deadline?: string;
  metadata?: Record<string, unknown>;
  webhook?: string;
  webhookEvents?: WebhookEventFilter[];
}

/**
 * GenerationRequest: the normalised, provider-neutral description of a text-to-image job. Every
 * dialect translates its own request into this shape; providers translate it into theirs.
 * This is the stored request: defaults applied, the provider resolved.
 */
export interface GenerationRequest extends Omit<CreateJobInput, 'width' | 'height' | 'numImages' | 'priority'> {
  width: number;
  height: number;
  numImages: number;
  priority: number;
  /** Absent means random (never -1); the seed actually used is recorded on each image. */
  seed?: number;
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
