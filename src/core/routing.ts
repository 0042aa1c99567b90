import type { Provider } from './ports/provider.ts';
import type { GenerationRequest } from './request.ts';

/**
 * Which provider runs a request: the one it names; otherwise the first configured provider that
 * claims it (Civitai claims Civitai model AIRs, Fusion Brain claims Kandinsky styles); otherwise
 * the default. Whether the chosen provider exists is the caller's check.
 */
export function routeProvider(request: GenerationRequest, configured: readonly Pick<Provider, 'name' | 'claims'>[], defaultProvider: string): string {
  if (request.provider) return request.provider;
  return configured.find((provider) => provider.claims?.(request))?.name ?? defaultProvider;
}
