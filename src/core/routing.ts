import type { Capability, Provider } from './ports/provider.ts';
import type { GenerationRequest } from './request.ts';

type Routable = Pick<Provider, 'name' | 'claims' | 'capabilities'>;

/** Whether `provider` can do everything `needed` lists. */
export const canDo = (provider: Pick<Provider, 'capabilities'>, needed: readonly Capability[]) => needed.every((capability) => provider.capabilities[capability]);

/**
 * Which provider runs a request: the one it names; otherwise the first configured provider that
 * claims it (Civitai claims Civitai model AIRs, Fusion Brain claims Kandinsky styles), otherwise
 * the default — unless that one cannot do what the request needs (image-to-image, inpainting, …),
 * then the first configured provider that can. Whether the chosen provider exists and can do the
 * job is the caller's check.
 */
export function routeProvider(request: GenerationRequest, configured: readonly Routable[], defaultProvider: string, needed: readonly Capability[] = ['textToImage']): string {
  if (request.provider) return request.provider;
  const preferred = configured.find((provider) => provider.claims?.(request))?.name ?? defaultProvider;
  const chosen = configured.find((provider) => provider.name === preferred);
  if (!chosen || canDo(chosen, needed)) return preferred;
  return configured.find((provider) => canDo(provider, needed))?.name ?? preferred;
}
