import type { Config } from '../config/index.ts';
import { makeMockProvider } from './mock/index.ts';
import type { Provider } from './port.ts';

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
  return providers;
}
