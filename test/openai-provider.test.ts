import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeOpenAIProvider } from '../src/providers/openai/index.ts';
import { renderMockImage } from '../src/providers/mock/image.ts';
import type { GenerationRequest } from '../src/core/request.ts';
import type { ProviderContext } from '../src/core/ports/provider.ts';
import { ProviderError } from '../src/core/errors.ts';
import { imageTokens, textTokens } from '../src/core/pricing.ts';
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

describe('token usage through the openai provider', () => {
  it("answers the upstream's token usage to clients and prices the job by it; without usage upstream, none is answered", async () => {
    const counting = await startDarkroom({ AUTH: 'off', MOCK_USAGE: 'true', MOCK_LATENCY_MS: '0' });
    const silent = await startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '0' });
    // Estimated at 1000 input and 100 output tokens an image, so that the actual cost shows it was counted from the usage.
    const priced = { OPENAI_API_KEY: 'sk-test-key-for-darkroom', OPENAI_MODELS: 'gpt-image-1', PROVIDER_PRICES: 'openai=gpt-image-1:5/Mtok-in~1000+40/Mtok-out~100', METRICS_TOKEN: 'scraper-token-for-the-usage-test' };
    const darkroom = await startDarkroom({ ...priced, OPENAI_BASE_URL: `${counting.url}/v1` });
    const unreported = await startDarkroom({ ...priced, OPENAI_BASE_URL: `${silent.url}/v1` });
    try {
      const prompt = 'a lighthouse counted in tokens';
      const text = textTokens(prompt);
      const output = imageTokens(1024, 1024);
      const expected = { input_tokens: text, input_tokens_details: { image_tokens: 0, text_tokens: text }, output_tokens: 2 * output, total_tokens: text + 2 * output };

      // A client of darkroom's OpenAI dialect, in front of the openai provider, in front of another darkroom's OpenAI dialect.
      const client = new OpenAI({ apiKey: 'sk-anything', baseURL: `${darkroom.url}/v1` });
      const answer = await client.images.generate({ model: 'gpt-image-1', prompt, n: 2, size: '1024x1024' }).withResponse();
      expect(answer.data.usage).toEqual(expected);
      const job = (await darkroom.api('GET', `/api/v1/jobs/${answer.response.headers.get('darkroom-job-id')}`)).body;
      expect(job).toMatchObject({ provider: 'openai', status: 'succeeded' });
      expect(job.usage).toEqual({ inputTokens: text, outputTokens: 2 * output, inputTextTokens: text, inputImageTokens: 0 });
      expect(job.cost).toEqual({ estimated: (5 * 1000 + 40 * 100 * 2) / 1e6, actual: Math.round((5 * text + 40 * 2 * output) / 1e6 * 1e6) / 1e6, currency: 'USD' });
      // The upstream darkroom's own job says the same.
      expect((await counting.api('GET', '/api/v1/jobs?limit=1')).body.items[0].usage).toEqual(job.usage);
      const metrics = await (await fetch(`${darkroom.url}/metrics`, { headers: { authorization: 'Bearer scraper-token-for-the-usage-test' } })).text();
      expect(metrics).toContain(`darkroom_job_cost_total{provider="openai",currency="USD"} ${job.cost.actual}`);
      expect(metrics).toContain(`darkroom_job_cost_estimated_total{provider="openai",currency="USD"} ${job.cost.estimated}`);

      // An upstream that counts nothing: no usage in the answer (as OpenAI's own for dall-e), and the job keeps its estimate of the tokens.
      const plain = new OpenAI({ apiKey: 'sk-anything', baseURL: `${unreported.url}/v1` });
      const bare = await plain.images.generate({ model: 'gpt-image-1', prompt, size: '1024x1024' }).withResponse();
      expect(bare.data).not.toHaveProperty('usage');
      const bareJob = (await unreported.api('GET', `/api/v1/jobs/${bare.response.headers.get('darkroom-job-id')}`)).body;
      expect(bareJob).toMatchObject({ provider: 'openai', status: 'succeeded', usage: null });
      expect(bareJob.cost).toEqual({ estimated: (5 * 1000 + 40 * 100) / 1e6, actual: (5 * 1000 + 40 * 100) / 1e6, currency: 'USD' });
    } finally {
      await unreported.close({ removeData: true });
      await darkroom.close({ removeData: true });
      await silent.close({ removeData: true });
      await counting.close({ removeData: true });
    }
  }, 90_000);
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

describe('openai provider, against a recording server', () => {
  interface Seen {
    method: string;
    url: string;
    headers: IncomingHttpHeaders;
    body: Buffer;
  }
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  let answer: (request: Seen) => { status: number; body: unknown; headers?: Record<string, string> } = () => ({ status: 500, body: {} });
  let png: Buffer;

  beforeAll(async () => {
    png = await renderMockImage('recorded', 1, 256, 256);
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const record = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) };
        seen.push(record);
        if (record.url === '/image.png') {
          response.writeHead(200, { 'content-type': 'image/png' }).end(png);
          return;
        }
        const reply = answer(record);
        response.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  const KEY = 'sk-recorded-secret-key-0123456789';
  const make = (models: string[]) =>
    makeOpenAIProvider({ baseUrl: `${base}/v1`, apiKey: KEY, organization: 'org-42', project: 'proj-7', models, maxImageBytes: 1_048_576, timeoutMs: 2000 });
  const context = (): ProviderContext => ({ jobId: 'job-9', deadlineAt: null, signal: AbortSignal.timeout(5000), readInput: noInputs });
  const request = (extra: Partial<GenerationRequest> = {}): GenerationRequest => ({ prompt: 'a bridge', width: 1024, height: 1024, numImages: 1, priority: 0, ...extra });
  const run = async (models: string[], job: GenerationRequest) => {
    const provider = make(models);
    const { providerJobId } = await provider.submit(job, context());
    return { providerJobId, result: await provider.poll({ providerJobId, request: job }, context()) };
  };

  it('sends the key, organization, project and ticket, base64 asked of dall-e but not of the GPT image models', async () => {
    answer = () => ({ status: 200, body: { created: 1, data: [{ b64_json: png.toString('base64') }] } });
    seen.length = 0;
    const gpt = await run(['gpt-image-1'], request({ numImages: 1 }));
    expect(gpt.result).toMatchObject({ state: 'succeeded', outputs: [{ contentType: 'image/png' }] });
    const dalle = await run(['dall-e-3'], request({ width: 1792, style: 'natural' }));
    expect(dalle.result.state).toBe('succeeded');
    const [first, second] = seen.map((item) => ({ ...item, json: JSON.parse(item.body.toString()) as Record<string, unknown> }));
    expect(first).toMatchObject({ method: 'POST', url: '/v1/images/generations' });
    expect(first?.headers).toMatchObject({ authorization: `Bearer ${KEY}`, 'openai-organization': 'org-42', 'openai-project': 'proj-7', 'idempotency-key': gpt.providerJobId });
    expect(first?.json).toEqual({ model: 'gpt-image-1', prompt: 'a bridge', n: 1, size: '1024x1024' });
    expect(second?.json).toEqual({ model: 'dall-e-3', prompt: 'a bridge', n: 1, size: '1792x1024', response_format: 'b64_json', style: 'natural' });
  });

  it('reads the token usage of an answer; a malformed one is no usage', async () => {
    const usage = { input_tokens: 50, input_tokens_details: { image_tokens: 40, text_tokens: 10 }, output_tokens: 4160, total_tokens: 4210 };
    answer = () => ({ status: 200, body: { created: 1, data: [{ b64_json: png.toString('base64') }], usage } });
    expect((await run(['gpt-image-1'], request())).result).toMatchObject({ state: 'succeeded', usage: { inputTokens: 50, outputTokens: 4160, inputTextTokens: 10, inputImageTokens: 40 } });
    for (const malformed of [{ ...usage, output_tokens: -1 }, { ...usage, input_tokens: '50' }, 'lots']) {
      answer = () => ({ status: 200, body: { created: 1, data: [{ b64_json: png.toString('base64') }], usage: malformed } });
      expect((await run(['gpt-image-1'], request())).result).not.toHaveProperty('usage');
    }
  });

  it('downloads images answered as links, without the key', async () => {
    answer = () => ({ status: 200, body: { created: 1, data: [{ url: `${base}/image.png` }] } });
    seen.length = 0;
    const { result } = await run(['dall-e-2'], request({ width: 256, height: 256 }));
    expect(result.state === 'succeeded' && result.outputs[0]?.bytes.equals(png)).toBe(true);
    expect(seen[1]?.url).toBe('/image.png');
    expect(seen[1]?.headers.authorization).toBeUndefined();
  });

  it('classifies refusals: an exhausted quota is permanent, a rate limit retryable with its Retry-After, and the key never shows', async () => {
    const failure = async (status: number, body: unknown, headers?: Record<string, string>) => {
      answer = () => ({ status, body, headers });
      const error = await run(['gpt-image-1'], request()).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ProviderError);
      return error as ProviderError;
    };
    expect(await failure(429, { error: { message: 'You exceeded your current quota', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } })).toMatchObject({ code: 'quota_exceeded', retryable: false });
    expect(await failure(429, { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }, { 'retry-after': '7' })).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterMs: 7000 });
    expect(await failure(400, { error: { message: 'Your request was rejected by the safety system', type: 'image_generation_user_error', param: null, code: 'content_policy_violation' } })).toMatchObject({ code: 'content_filtered', retryable: false });
    const echoed = await failure(401, { error: { message: `Incorrect API key provided: ${KEY}`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    expect(echoed).toMatchObject({ code: 'unauthorized', retryable: false });
    expect(echoed.message).not.toContain(KEY);
    expect(echoed.message).toContain('[redacted]');
    expect(await failure(200, { created: 1, data: [] })).toMatchObject({ code: 'invalid_response', retryable: true });
  });
});

