import type { Job, ProviderStint } from './job.ts';
import { neededCapabilities, type Provider, type ProviderRegistry } from './ports/provider.ts';
import { canDo } from './routing.ts';

/**
 * Fallback chains (PROVIDER_FALLBACK): a job's chain is the one that starts with the provider it was
 * first given, and it moves along it, never back, each provider at most once.
 */
export type FallbackChains = Readonly<Record<string, readonly string[]>>;

/** The first stint of a new job. */
export const firstStint = (provider: string, at: Date): ProviderStint => ({ provider, since: 0, at: at.toISOString() });

/** Attempts the job has made on its current provider. */
export function attemptsOnCurrent(job: Pick<Job, 'attempts' | 'providerHistory'>): number {
  return job.attempts - (job.providerHistory.at(-1)?.since ?? 0);
}

/** Attempts per provider stint, in order: what the API shows. */
export function stintAttempts(job: Pick<Job, 'attempts' | 'providerHistory'>): { provider: string; attempts: number; at: string }[] {
  return job.providerHistory.map((stint, index) => ({
    provider: stint.provider,
    attempts: (job.providerHistory[index + 1]?.since ?? job.attempts) - stint.since,
    at: stint.at,
  }));
}

/**
 * Whether `provider` could take the job over: it can do what the request needs (a workflow job only
 * on a provider that runs workflows, input images only where they are taken, within its count), and a
 * provider that claims requests (a Civitai model AIR, a Kandinsky style, one of OPENAI_MODELS) takes
 * only those it claims, since it cannot run anything else.
 */
export function canTakeOver(provider: Provider, job: Pick<Job, 'request'>): boolean {
  const { request } = job;
  if (!canDo(provider, neededCapabilities({ inputs: request.inputs, workflow: request.workflow }))) return false;
  const most = provider.capabilities.maxInputs;
  if (most !== undefined && (request.inputs?.length ?? 0) > most) return false;
  return provider.claims === undefined || provider.claims(request);
}

/**
 * The provider the job moves to next: the first after its current one in its chain that is
 * configured, has not had the job before, can take it over, and is not `unavailable` (its circuit is
 * not closed). Undefined when there is none (or the job may not move).
 */
export function nextProvider(job: Pick<Job, 'provider' | 'providerHistory' | 'request' | 'fallback'>, chains: FallbackChains, providers: ProviderRegistry, unavailable: ReadonlySet<string>): Provider | undefined {
  if (!job.fallback) return undefined;
  const origin = job.providerHistory[0]?.provider ?? job.provider;
  const chain = [origin, ...(chains[origin] ?? [])];
  const visited = new Set([...job.providerHistory.map((stint) => stint.provider), job.provider]);
  const position = chain.indexOf(job.provider);
  for (const name of chain.slice(position + 1)) {
    const candidate = providers.get(name);
    if (!candidate || visited.has(name) || unavailable.has(name)) continue;
    if (canTakeOver(candidate, job)) return candidate;
  }
  return undefined;
}
