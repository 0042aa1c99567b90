import type { GenerationRequest } from './request.ts';

/** Fusion Brain's published style names (GET cdn.fusionbrain.ai/static/styles/key). */
export const KANDINSKY_STYLES = ['KANDINSKY', 'UHD', 'ANIME', 'DEFAULT'] as const;

/** `urn:air:{ecosystem}:{type}:civitai:{id}@{version}`, with `urn:` and `air:` optional. */
const CIVITAI_AIR = /^(?:urn:)?(?:air:)?(?:[\w/-]+:)?(?:[\w/-]+:)?civitai:[\w/.-]+(?:@[\w/.=,-]+)?/i;

/**
 * Which provider runs a request: the one it names; otherwise the one its content implies (a Civitai
 * model AIR → civitai, a Kandinsky style → fusionbrain) when that provider is configured; otherwise
 * the default. Whether the chosen provider exists is the caller's check.
 */
export function routeProvider(request: GenerationRequest, configured: readonly string[], defaultProvider: string): string {
  if (request.provider) return request.provider;
  if (request.model && CIVITAI_AIR.test(request.model) && configured.includes('civitai')) return 'civitai';
  if (request.style && (KANDINSKY_STYLES as readonly string[]).includes(request.style.toUpperCase()) && configured.includes('fusionbrain')) {
    return 'fusionbrain';
  }
  return defaultProvider;
}
