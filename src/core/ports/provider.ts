import type { TokenUsage } from '../pricing.ts';
import type { GenerationRequest, JobInput } from '../request.ts';

/**
 * The provider port: how darkroom drives one upstream image service. Providers are stateless
 * towards darkroom: everything needed to resume a job after a restart is the saved provider job id
 * plus the request, so `poll` must work in a process that never called `submit`.
 *
 * Errors are thrown as `ProviderError` (core/errors.ts) with their retry meaning.
 */
export interface ProviderContext {
  jobId: string;
  deadlineAt: Date | null;
  signal: AbortSignal;
  /** The stored bytes of one of the request's inputs (never fetched from its source again). */
  readInput(input: JobInput): Promise<Buffer>;
}

export interface ProviderJobRef {
  providerJobId: string;
  request: GenerationRequest;
}

export interface ProviderOutput {
  /** Exactly the bytes the upstream returned; darkroom stores them unchanged. */
  bytes: Buffer;
  contentType: string;
  seed?: number;
}

export type PollResult =
  | { state: 'queued'; queuePosition?: number; nextPollMs?: number }
  | { state: 'running'; progress?: number; nextPollMs?: number }
  /** `usage`: the tokens the upstream says the job took, when it says (OpenAI's GPT image models); it prices token-priced jobs. */
  | { state: 'succeeded'; outputs: ProviderOutput[]; usage?: TokenUsage }
  | { state: 'cancelled' };

export interface ProviderCheck {
  ok: boolean;
  detail: string;
}

export interface Provider {
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  /**
   * Whether this provider is the natural home of a request that names no provider (a Civitai model
   * AIR, a Kandinsky style). Routing sends such a request here when the provider is configured.
   */
  claims?(request: GenerationRequest): boolean;
  /** The model names it claims, for the dialects that list models (OpenAI's GET /v1/models). */
  readonly models?: readonly string[];
  submit(request: GenerationRequest, context: ProviderContext): Promise<{ providerJobId: string }>;
  poll(job: ProviderJobRef, context: ProviderContext): Promise<PollResult>;
  /** Best effort: asks the upstream to stop working (and billing) for the job. */
  cancel(job: ProviderJobRef): Promise<void>;
  check(): Promise<ProviderCheck>;
}

export interface ProviderRegistry {
  get(name: string): Provider | undefined;
  names(): string[];
  /** Every configured provider, in registry order. */
  all(): Provider[];
}

export function makeProviderRegistry(providers: Provider[]): ProviderRegistry {
  const byName = new Map(providers.map((provider) => [provider.name, provider]));
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
    all: () => [...byName.values()],
  };
}

/** What kinds of job a provider can run. */
export interface ProviderCapabilities {
  textToImage: boolean;
  /** An init image changed by `strength`. */
  imageToImage: boolean;
  /** An init image and a mask: only the mask's white pixels change. */
  inpainting: boolean;
  /** Reference images the result takes after. */
  references: boolean;
  /** Most input images of one job (all roles), when the upstream has a limit. */
  maxInputs?: number;
  /** Runs a request's ComfyUI `workflow` as given. */
  workflows?: boolean;
}

/** What a capability is called in messages. */
export const CAPABILITY_NAMES: Record<Capability, string> = {
  textToImage: 'text-to-image',
  imageToImage: 'image-to-image',
  inpainting: 'inpainting (an init image with a mask)',
  references: 'reference images',
  workflows: 'ComfyUI workflows',
};

/** A provider that takes text only. */
export const TEXT_ONLY: ProviderCapabilities = { textToImage: true, imageToImage: false, inpainting: false, references: false };

export type Capability = 'textToImage' | 'imageToImage' | 'inpainting' | 'references' | 'workflows';

/** The capabilities `request` needs of its provider. */
export function neededCapabilities(request: { inputs?: readonly { role: JobInput['role'] }[]; workflow?: unknown }): Capability[] {
  const roles = new Set(request.inputs?.map((input) => input.role));
  const needed: Capability[] = [];
  if (roles.has('mask')) needed.push('inpainting');
  else if (roles.has('init')) needed.push('imageToImage');
  else needed.push('textToImage');
  if (roles.has('reference')) needed.push('references');
  if (request.workflow !== undefined) needed.push('workflows');
  return needed;
}

/**
 * How a provider module reads its own environment variables. Each call names one variable; a value
 * that does not parse is recorded as a problem (start-up then fails listing every problem) and the
 * fallback is used meanwhile. `src/config` implements it: nothing else reads the environment.
 */
export interface SettingsReader {
  /** The trimmed text, or `fallback` when unset or empty. */
  text(name: string): string | undefined;
  text(name: string, fallback: string): string;
  integer(name: string, fallback: number, min: number, max: number): number;
  /** A number from `min` to `max` (fractions allowed). */
  number(name: string, fallback: number, min: number, max: number): number;
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T;
  /** An http(s) URL without its trailing slashes. */
  url(name: string): string | undefined;
  url(name: string, fallback: string): string;
  /** Records a problem that involves several variables. */
  problem(message: string): void;
}

/** Settings every provider shares (PROVIDER_TIMEOUT_MS, PROVIDER_MAX_IMAGE_BYTES) and test seams. */
export interface SharedProviderSettings {
  /** Longest a single upstream call may take. */
  timeoutMs: number;
  /** Largest image a provider downloads or decodes. */
  maxImageBytes: number;
  /** Randomness (mock latency and failures), so tests can pin it. */
  random?: () => number;
}

/**
 * One provider as a module of darkroom: its name, how it reads its configuration, and how it is
 * built. Adding a provider is its folder exporting one of these, plus one line in the registry.
 */
export interface ProviderModule<Settings = unknown> {
  readonly name: string;
  /**
   * Reads the module's variables. Answers undefined when the provider is not configured (its
   * credentials are unset), so darkroom runs without it.
   */
  settings(read: SettingsReader): Settings | undefined;
  create(settings: Settings, shared: SharedProviderSettings): Provider;
}
