import { describe, expect, it } from 'vitest';
import { routeProvider } from '../src/core/routing.ts';
import type { GenerationRequest } from '../src/core/request.ts';

const request = (extra: Partial<GenerationRequest>): GenerationRequest => ({ prompt: 'p', width: 512, height: 512, numImages: 1, priority: 0, ...extra });
const all = ['mock', 'civitai', 'fusionbrain', 'runpod'];

describe('provider routing', () => {
  it('uses the provider the job names, configured or not (the caller reports a missing one)', () => {
    expect(routeProvider(request({ provider: 'runpod', model: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }), all, 'mock')).toBe('runpod');
    expect(routeProvider(request({ provider: 'nope' }), ['mock'], 'mock')).toBe('nope');
  });

  it('sends a Civitai model AIR to civitai when it is configured', () => {
    expect(routeProvider(request({ model: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }), all, 'mock')).toBe('civitai');
    expect(routeProvider(request({ model: 'civitai:101055@128078' }), all, 'mock')).toBe('civitai');
    expect(routeProvider(request({ model: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }), ['mock'], 'mock')).toBe('mock');
    expect(routeProvider(request({ model: 'urn:air:sdxl:checkpoint:huggingface:stabilityai/sdxl' }), all, 'mock')).toBe('mock');
  });

  it('sends a Kandinsky style to fusionbrain when it is configured', () => {
    expect(routeProvider(request({ style: 'ANIME' }), all, 'mock')).toBe('fusionbrain');
    expect(routeProvider(request({ style: 'uhd' }), all, 'runpod')).toBe('fusionbrain');
    expect(routeProvider(request({ style: 'ANIME' }), ['mock'], 'mock')).toBe('mock');
    expect(routeProvider(request({ style: 'watercolour' }), all, 'runpod')).toBe('runpod');
  });
});
