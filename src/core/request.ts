/** What a job's webhook is told of: terminal statuses (`completed`, the default), every status change, each stored image, each move to another provider, its batch's end. */
export const WEBHOOK_EVENT_FILTERS = ['completed', 'status', 'image', 'failover', 'batch.completed'] as const;
export type WebhookEventFilter = (typeof WEBHOOK_EVENT_FILTERS)[number];
export const WEBHOOK_URL_MAX_LENGTH = 2000;

export interface NetworkSettings {
  type: string;
  strength?: number;
  triggerWord?: string;
}

/** What an input image is for: the picture to start from, which of its pixels may change, or a picture to take after. */
export const INPUT_ROLES = ['init', 'mask', 'reference'] as const;
export type InputRole = (typeof INPUT_ROLES)[number];
/** How much the init image may change when the request does not say. */
export const DEFAULT_STRENGTH = 0.75;
export const MAX_INPUTS = 8;

/** An input image as a dialect received it: exactly one of an upload's id, an http(s) URL, or base64 (or a data URI). */
export interface InputSource {
  role: InputRole;
  uploadId?: string;
  url?: string;
  data?: string;
}

/**
 * An input image stored with its job (in darkroom's storage, under the job's own keys) before the
 * job is submitted anywhere, so a retried or resumed job never fetches it again.
 */
export interface JobInput {
  role: InputRole;
  key: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
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
  /** Lets a job that names its provider still move along that provider's fallback chain. */
  fallback?: boolean;
  priority?: number;
  deadline?: string;
  metadata?: Record<string, unknown>;
  webhook?: string;
  webhookEvents?: WebhookEventFilter[];
  /** Input images; the core fetches, checks and stores them before the job is stored. */
  images?: InputSource[];
  /** 0–1: how much the init image may change (0 keeps it, 1 ignores it). */
  strength?: number;
  /**
   * A ComfyUI graph in API format, run as given by providers that run workflows (the other fields
   * then describe it, for the providers that run parameters and for display). Its LoadImage nodes
   * name the job's input images in order (see the comfyui protocol's loadImageNames).
   */
  workflow?: Record<string, unknown>;
}

/**
 * GenerationRequest: the normalised, provider-neutral description of a text-to-image job. Every
 * dialect translates its own request into this shape; providers translate it into theirs.
 * This is the stored request: defaults applied, the provider resolved.
 */
export interface GenerationRequest extends Omit<CreateJobInput, 'width' | 'height' | 'numImages' | 'priority' | 'images'> {
  width: number;
  height: number;
  numImages: number;
  priority: number;
  /** Absent means random (never -1); the seed actually used is recorded on each image. */
  seed?: number;
  /** Present whenever `webhook` is. */
  webhookEvents?: WebhookEventFilter[];
  /** The stored input images, in the order given; absent for text-to-image. */
  inputs?: JobInput[];
  /** Present whenever an init image is. */
  strength?: number;
}

/** The request's input with `role` (the first, for references use referencesOf). */
export const inputOf = (request: Pick<GenerationRequest, 'inputs'>, role: InputRole): JobInput | undefined =>
  request.inputs?.find((input) => input.role === role);

export const referencesOf = (request: Pick<GenerationRequest, 'inputs'>): JobInput[] =>
  request.inputs?.filter((input) => input.role === 'reference') ?? [];

export const METADATA_MAX_BYTES = 16 * 1024;

export function normaliseRequest(input: CreateJobInput): GenerationRequest {
  const { seed, images: _sources, ...rest } = input;
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
