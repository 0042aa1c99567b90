import { describe, expect, it } from 'vitest';
import { neededCapabilities } from '../src/core/ports/provider.ts';
import { routeProvider } from '../src/core/routing.ts';
import type { GenerationRequest } from '../src/core/request.ts';
import { loadConfig } from '../src/config/index.ts';
import { PROVIDER_MODULES } from '../src/providers/registry.ts';

const request = (extra: Partial<GenerationRequest>): GenerationRequest => ({ prompt: 'p', width: 512, height: 512, numImages: 1, priority: 0, ...extra });
// Every provider configured, as its module builds it from credentials.
const configured = loadConfig({
  CIVITAI_API_TOKEN: 'token',
  FUSIONBRAIN_API_KEY: 'key',
  FUSIONBRAIN_SECRET_KEY: 'secret',
  RUNPOD_API_KEY: 'key',
  RUNPOD_ENDPOINT_ID: 'endpoint',
  OPENAI_API_KEY: 'key',
  OPENAI_MODELS: 'dall-e-3,house-model',
  A1111_URLS: 'http://127.0.0.1:7860',
  COMFYUI_URLS: 'http://127.0.0.1:8188',
});
const built = PROVIDER_MODULES.map((module) => module.create(configured.providers[module.name], { timeoutMs: 1000, maxImageBytes: 1024 }));
const only = (...names: string[]) => built.filter((provider) => names.includes(provider.name));
const all = only('mock', 'civitai', 'fusionbrain', 'runpod', 'openai');

describe('provider routing', () => {
  it('uses the provider the job names, configured or not (the caller reports a missing one)', () => {
    expect(routeProvider(request({ provider: 'runpod', model: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }), all, 'mock')).toBe('runpod');
    expect(routeProvider(request({ provider: 'nope' }), only('mock'), 'mock')).toBe('nope');
  });

  it('sends a Civitai model AIR to civitai when it is configured', () => {
    expect(routeProvider(request({ model: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }), all, 'mock')).toBe('civitai');
    expect(routeProvider(request({ model: 'civitai:101055@128078' }), all, 'mock')).toBe('civitai');
    expect(routeProvider(request({ model: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }), only('mock'), 'mock')).toBe('mock');
    expect(routeProvider(request({ model: 'urn:air:sdxl:checkpoint:huggingface:stabilityai/sdxl' }), all, 'mock')).toBe('mock');
  });

  it('sends a workflow job to a provider that runs workflows when the default cannot', () => {
    const workflow = request({ workflow: { '9': { class_type: 'SaveImage', inputs: {} } } });
    const needed = neededCapabilities(workflow);
    expect(needed).toContain('workflows');
    expect(routeProvider(workflow, only('a1111', 'comfyui'), 'a1111', needed)).toBe('comfyui');
    expect(routeProvider(workflow, only('mock', 'a1111', 'comfyui'), 'mock', needed)).toBe('mock');
  });

  it('sends a Kandinsky style to fusionbrain when it is configured', () => {
    expect(routeProvider(request({ style: 'ANIME' }), all, 'mock')).toBe('fusionbrain');
    expect(routeProvider(request({ style: 'uhd' }), all, 'runpod')).toBe('fusionbrain');
    expect(routeProvider(request({ style: 'ANIME' }), only('mock'), 'mock')).toBe('mock');
    expect(routeProvider(request({ style: 'watercolour' }), all, 'runpod')).toBe('runpod');
  });

  it('sends a model the openai provider claims to it when it is configured', () => {
    expect(routeProvider(request({ model: 'dall-e-3' }), all, 'mock')).toBe('openai');
    expect(routeProvider(request({ model: 'house-model' }), all, 'mock')).toBe('openai');
    expect(routeProvider(request({ model: 'gpt-image-1' }), all, 'mock')).toBe('mock');
    expect(routeProvider(request({ model: 'dall-e-3' }), only('mock'), 'mock')).toBe('mock');
  });
});
