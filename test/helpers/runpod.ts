import type { RunpodInputFormat } from '../../src/protocols/runpod/status.ts';
import type { ProviderContractSpec } from './provider-contract.ts';

/**
 * The provider contract for the runpod provider with one worker input format, against darkroom's
 * own RunPod dialect. darkroom job ids are the RunPod job ids, so the upstream job is the provider job.
 */
export function runpodContractSpec(format: RunpodInputFormat): ProviderContractSpec {
  return {
    provider: 'runpod',
    env: (baseUrl) => ({
      RUNPOD_API_URL: `${baseUrl}/v2`,
      RUNPOD_API_KEY: 'test-key',
      RUNPOD_ENDPOINT_ID: 'ep-test',
      RUNPOD_INPUT_FORMAT: format,
    }),
    isSubmit: (request) => request.method === 'POST' && request.path.endsWith('/run'),
    isPoll: (request) => request.method === 'GET' && request.path.includes('/status/'),
    // The custom worker makes one image per job.
    maxImages: format === 'custom' ? 1 : 4,
    request: { width: 512, height: 512 },
    cancelsUpstream: true,
    // The A1111 and ComfyUI workers take an init image and a mask; worker-sdxl and the custom worker text only.
    ...(format === 'a1111' || format === 'comfyui' ? { inputs: { imageToImage: true, inpainting: true } } : {}),
  };
}
