import type { GenerationRequest } from '../request.ts';

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
  | { state: 'succeeded'; outputs: ProviderOutput[] }
  | { state: 'cancelled' };

export interface ProviderCheck {
  ok: boolean;
  detail: string;
}

export interface Provider {
  readonly name: string;
  submit(request: GenerationRequest, context: ProviderContext): Promise<{ providerJobId: string }>;
  poll(job: ProviderJobRef, context: ProviderContext): Promise<PollResult>;
  /** Best effort: asks the upstream to stop working (and billing) for the job. */
  cancel(job: ProviderJobRef): Promise<void>;
  check(): Promise<ProviderCheck>;
}

export interface ProviderRegistry {
  get(name: string): Provider | undefined;
  names(): string[];
}

export function makeProviderRegistry(providers: Provider[]): ProviderRegistry {
  const byName = new Map(providers.map((provider) => [provider.name, provider]));
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
  };
}
