import type { ProviderModule } from '../core/ports/provider.ts';
import { civitaiProviderModule } from './civitai/index.ts';
import { fusionBrainProviderModule } from './fusionbrain/index.ts';
import { mockProviderModule } from './mock/index.ts';
import { openaiProviderModule } from './openai/index.ts';
import { runpodProviderModule } from './runpod/index.ts';
import { a1111ProviderModule } from './a1111/index.ts';
import { comfyuiProviderModule } from './comfyui/index.ts';

/**
 * Every provider darkroom can drive, in routing order: when a request names no provider, the first
 * configured one that claims it runs it. Adding a provider is one line here.
 */
export const PROVIDER_MODULES: readonly ProviderModule[] = [mockProviderModule, civitaiProviderModule, fusionBrainProviderModule, runpodProviderModule, openaiProviderModule, a1111ProviderModule, comfyuiProviderModule];
