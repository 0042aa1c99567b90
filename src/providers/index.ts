import type { Config } from '../config/index.ts';
import { makeCivitaiProvider } from './civitai/index.ts';
import { makeFusionBrainProvider } from './fusionbrain/index.ts';
import { makeMockProvider } from './mock/index.ts';
import type { Provider } from '../core/ports/provider.ts';
import { makeRunpodProvider } from './runpod/index.ts';

export interface ProviderFactoryOptions {
  random?: () => number;
}

/**
 * The providers this configuration enables: the mock always, each hosted service when its
 * credentials are set. One place to add a provider.
 */
export function makeProviders(config: Config, options: ProviderFactoryOptions = {}): Provider[] {
  const providers: Provider[] = [
    makeMockProvider({ latencyMs: config.mock.latencyMs, failureRate: config.mock.failureRate, random: options.random }),
  ];
  const { apiUrl, apiKey, secretKey } = config.fusionbrain;
  if (apiKey && secretKey) {
    providers.push(
      makeFusionBrainProvider({ apiUrl, apiKey, secretKey, maxImageBytes: config.providerMaxImageBytes, timeoutMs: config.providerTimeoutMs }),
    );
  }
  const runpod = config.runpod;
  if (runpod.apiKey && runpod.endpointId) {
    providers.push(
      makeRunpodProvider({
        ...runpod,
        apiKey: runpod.apiKey,
        endpointId: runpod.endpointId,
        timeoutMs: config.providerTimeoutMs,
        maxImageBytes: config.providerMaxImageBytes,
      }),
    );
  }
  const { apiToken: civitaiToken } = config.civitai;
  if (civitaiToken) {
    providers.push(
      makeCivitaiProvider({ apiUrl: config.civitai.apiUrl, apiToken: civitaiToken, timeoutMs: config.providerTimeoutMs, maxImageBytes: config.providerMaxImageBytes }),
    );
  }
  return providers;
}
