import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeOpenAIProvider } from '../src/providers/openai/index.ts';
import type { GenerationRequest } from '../src/core/request.ts';
import type { ProviderContext } from '../src/core/ports/provider.ts';
import { ProviderError } from '../src/core/errors.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { providerContract } from './helpers/provider-contract.ts';
import { noInputs } from './helpers/providers.ts';

const isImageCall = (request: { method: string; path: string }) => request.method === 'POST' && /\/v1\/images\/(generations|edits)$/.test(request.path);

providerContract({
  provider: 'openai',
  env: (baseUrl) => ({ OPENAI_BASE_URL: `${baseUrl}/v1`, OPENAI_API_KEY: 'sk-test-key-for-darkroom', OPENAI_MODELS: 'gpt-image-1' }),
  // The call is the whole job: the one request both submits and answers.
  isSubmit: isImageCall,
  isPoll: isImageCall,
  maxImages: 10,
  request: { width: 1024, height: 1024 },
  cancelsUpstream: false,
  seeds: false,
  // Each darkroom job makes one upstream job, and the suite runs one job at a time: the newest is its own.
  findUpstreamJob: async (_providerJobId, upstream) => (await upstream.api('GET', '/api/v1/jobs?limit=1')).body.items[0].id as string,
  inpainting: true,
  contentRefusal: {
    status: 400,
    body: JSON.stringify({
      error: { message: 'Your request was rejected as a result of our safety system.', type: 'image_generation_user_error', param: null, code: 'moderation_blocked' },
    }),
  },
});

describe('model routing through the openai provider', () => {
  it('sends the models the provider claims to it, any other to the default provider, and lists them', async () => {
    const upstream = await startDarkroom({ AUTH: 'off' });
    const darkroom = await startDarkroom({ OPENAI_BASE_URL: `${upstream.url}/v1`, OPENAI_API_KEY: 'sk-test-key-for-darkroom', OPENAI_MODELS: 'dall-e-3,house-model' });
    try {
      const client = new OpenAI({ apiKey: 'sk-anything', baseURL: `${darkroom.url}/v1` });
      const claimed = await client.images.generate({ model: 'dall-e-3', prompt: 'a claimed model', response_format: 'b64_json' }).withResponse();
      const claimedJob = (await darkroom.api('GET', `/api/v1/jobs/${claimed.response.headers.get('darkroom-job-id')}`)).body;
      expect(claimedJob).toMatchObject({ provider: 'openai', status: 'succeeded' });
      const far = (await upstream.api('GET', '/api/v1/jobs?limit=1')).body.items[0];
      expect(far.request.prompt).toBe('a claimed model');
      const farBytes = Buffer.from(await (await fetch(far.images[0].url)).arrayBuffer());
      expect(Buffer.from(claimed.data.data?.[0]?.b64_json ?? '', 'base64').equals(farBytes)).toBe(true);

      const other = await client.images.generate({ model: 'gpt-image-1', prompt: 'an unclaimed model' }).withResponse();
      const otherJob = (await darkroom.api('GET', `/api/v1/jobs/${other.response.headers.get('darkroom-job-id')}`)).body;
      expect(otherJob.provider).toBe('mock');

      const models = Object.fromEntries((await client.models.list()).data.map((model) => [model.id, model.owned_by]));
      expect(models).toMatchObject({ 'dall-e-3': 'openai', 'house-model': 'openai', 'gpt-image-1': 'mock' });
    } finally {
      await darkroom.close({ removeData: true });
      await upstream.close({ removeData: true });
    }
  });
});

describe('openai provider', () => {
  let upstream: TestDarkroom;
  let proxy: FaultProxy;
  beforeAll(async () => {
    upstream = await startDarkroom({ AUTH: 'off' });
    proxy = await startFaultProxy(upstream.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await upstream?.close({ removeData: true });
  });

  const provider = (models = ['gpt-image-1', 'dall-e-3']) =>
    makeOpenAIProvider({ baseUrl: `${proxy.url}/v1`, apiKey: 'sk-test-key-for-darkroom', models, maxImageBytes: 50 * 1_048_576, timeoutMs: 2000 });
  const context = (): ProviderContext => ({ jobId: 'job-1', deadlineAt: null, signal: AbortSignal.timeout(5000), readInput: noInputs });
  const request = (extra: Partial<GenerationRequest> = {}): GenerationRequest => ({ prompt: 'a bridge', width: 1024, height: 1024, numImages: 1, priority: 0, ...extra });

  it('checks sizes and counts per model before any call', async () => {
    const before = proxy.count(isImageCall);
    const refused = async (job: GenerationRequest) => {
      const error = await provider().submit(job, context()).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ProviderError);
      expect((error as ProviderError).retryable).toBe(false);
      return (error as ProviderError).message;
    };
    expect(await refused(request({ width: 512, height: 512 }))).toContain('gpt-image-1 renders 1024x1024, 1536x1024, 1024x1536, not 512x512');
    expect(await refused(request({ model: 'dall-e-3', numImages: 2 }))).toContain('dall-e-3 makes at most 1 image');
    expect(await refused(request({ model: 'dall-e-3', width: 1536 }))).toContain('dall-e-3 renders');
    expect(await refused(request({ prompt: 'p'.repeat(32_001) }))).toContain('at most 32000 characters');
    expect(proxy.count(isImageCall)).toBe(before);
  });

  it('claims only its configured models and lists them', () => {
    const openai = provider(['dall-e-3']);
    expect(openai.claims?.(request({ model: 'dall-e-3' }))).toBe(true);
    expect(openai.claims?.(request({ model: 'gpt-image-1' }))).toBe(false);
    expect(openai.claims?.(request())).toBe(false);
    expect(openai.models).toEqual(['dall-e-3']);
  });

  it('sends its key, organization and project headers, and checks the connection with GET /models', async () => {
    const openai = makeOpenAIProvider({ baseUrl: `${proxy.url}/v1`, apiKey: 'sk-test-key-for-darkroom', organization: 'org-1', project: 'proj-1', models: ['gpt-image-1'], maxImageBytes: 1_048_576, timeoutMs: 2000 });
    expect(await openai.check()).toMatchObject({ ok: true });
    const broken = makeOpenAIProvider({ baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'sk-test-key-for-darkroom', models: ['gpt-image-1'], maxImageBytes: 1_048_576, timeoutMs: 500 });
    expect(await broken.check()).toMatchObject({ ok: false });
  });
});
