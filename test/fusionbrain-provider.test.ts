import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../src/core/errors.ts';
import type { GenerationRequest } from '../src/core/request.ts';
import { makeFusionBrainProvider } from '../src/providers/fusionbrain/index.ts';
import { renderMockImage } from '../src/providers/mock/image.ts';
import type { ProviderContext } from '../src/core/ports/provider.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { providerContract } from './helpers/provider-contract.ts';
import { makeScriptedProvider, noInputs } from './helpers/providers.ts';

/** The dialect shows a job id with its version digit set to 4 (src/api/dialects/fusionbrain/ids.ts). */
const jobIdOf = (uuid: string) => `${uuid.slice(0, 14)}7${uuid.slice(15)}`;
const isSubmit = (request: { method: string; path: string }) => request.method === 'POST' && request.path.endsWith('/pipeline/run');

/** The upstream darkroom requires a key; its admin key is what the provider sends as X-Key. */
const UPSTREAM_KEY = 'fusionbrain-upstream-key-0123';
const dialectKeys = { AUTH: 'required', ADMIN_API_KEY: UPSTREAM_KEY };
const providerEnv = (baseUrl: string, key = UPSTREAM_KEY, secret = 's') => ({
  DEFAULT_PROVIDER: 'fusionbrain',
  FUSIONBRAIN_API_URL: baseUrl,
  FUSIONBRAIN_API_KEY: key,
  FUSIONBRAIN_SECRET_KEY: secret,
});

providerContract({
  provider: 'fusionbrain',
  env: (baseUrl) => ({ FUSIONBRAIN_API_URL: baseUrl, FUSIONBRAIN_API_KEY: UPSTREAM_KEY, FUSIONBRAIN_SECRET_KEY: 's' }),
  upstreamEnv: dialectKeys,
  upstreamKey: UPSTREAM_KEY,
  isSubmit,
  isPoll: (request) => request.method === 'GET' && request.path.includes('/pipeline/status/'),
  maxImages: 1,
  request: { width: 512, height: 512 },
  cancelsUpstream: false,
  seeds: false,
  upstreamJobId: jobIdOf,
});

describe('fusionbrain provider against the Fusion Brain dialect', () => {
  let upstream: TestDarkroom;
  let proxy: FaultProxy;
  let darkroom: TestDarkroom;
  // Its upstream refuses every prompt by content policy, which the dialect reports as a censored result.
  let censoringUpstream: TestDarkroom;
  let censored: TestDarkroom;

  beforeAll(async () => {
    const { provider } = makeScriptedProvider({ submits: Array.from({ length: 10 }, () => 'permanent' as const) });
    [upstream, censoringUpstream] = await Promise.all([
      startDarkroom({ MOCK_LATENCY_MS: '20', ...dialectKeys }, { apiKey: UPSTREAM_KEY }),
      startDarkroom(dialectKeys, { providers: [provider], apiKey: UPSTREAM_KEY }),
    ]);
    proxy = await startFaultProxy(upstream.url);
    [darkroom, censored] = await Promise.all([startDarkroom(providerEnv(proxy.url)), startDarkroom(providerEnv(censoringUpstream.url))]);
  });
  afterAll(async () => {
    await Promise.all([darkroom?.close({ removeData: true }), censored?.close({ removeData: true })]);
    await proxy?.close();
    await Promise.all([upstream?.close({ removeData: true }), censoringUpstream?.close({ removeData: true })]);
  });

  const run = async (request: Record<string, unknown>) => {
    const created = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'a red fox in the snow', width: 512, height: 512, ...request });
    expect(created.status).toBe(202);
    return darkroom.waitForJob(created.body.id);
  };

  it('sends the style (as Fusion Brain spells it) and the negative prompt upstream', async () => {
    const job = await run({ style: 'anime', negativePrompt: 'blurry', width: 768, height: 448 });
    expect(job.status).toBe('succeeded');
    expect(job.images).toMatchObject([{ width: 768, height: 448, contentType: 'image/png', seed: null }]);
    const upstreamJob = (await upstream.api('GET', `/api/v1/jobs/${jobIdOf(job.providerJobId as string)}`)).body;
    expect(upstreamJob.request).toMatchObject({ prompt: 'a red fox in the snow', style: 'ANIME', negativePrompt: 'blurry', width: 768, height: 448 });
  });

  it.each([
    ['a side that is not a multiple of 64', { width: 520 }, /width 520 must be a multiple of 64/],
    ['a side above 1024', { height: 1088 }, /height 1088/],
    ['more than one image', { numImages: 2 }, /numImages 2/],
    ['a prompt over 1000 characters', { prompt: 'x'.repeat(1001) }, /1001 characters/],
  ])('refuses %s before any call to Fusion Brain', async (_name, request, message) => {
    const before = proxy.requests.length;
    const job = await run(request);
    expect(job.status).toBe('failed');
    expect(job.attempts).toBe(1);
    expect(job.error).toMatchObject({ code: 'invalid_request', retryable: false, message: expect.stringMatching(message) });
    expect(proxy.requests.length).toBe(before);
  });

  it('fails the job at once with content_filtered when moderation blocks the image', async () => {
    const created = await censored.api('POST', '/api/v1/jobs', { prompt: 'something forbidden', width: 512, height: 512 });
    const job = await censored.waitForJob(created.body.id);
    expect(job.status).toBe('failed');
    expect(job.attempts).toBe(1);
    expect(job.error).toEqual({ code: 'content_filtered', message: "Fusion Brain's moderation blocked the image", retryable: false });
  });

  it('reports itself healthy after checking the pipeline list and its availability', async () => {
    const { body } = await darkroom.api('POST', '/api/v1/providers/fusionbrain/test');
    expect(body).toMatchObject({ name: 'fusionbrain', healthy: true, detail: expect.stringMatching(/ACTIVE/) });
  });
});

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

/** A scripted stand-in for Fusion Brain: answers from `routes` by "METHOD path suffix", records every request. */
async function startScriptedFusionBrain() {
  const seen: Seen[] = [];
  let routes: Record<string, Reply> = {};
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '/';
      seen.push({ method: request.method ?? 'GET', path, headers: request.headers, body: Buffer.concat(chunks).toString() });
      const key = Object.keys(routes).find((candidate) => {
        const [method, suffix] = candidate.split(' ');
        return method === request.method && path.endsWith(suffix ?? '');
      });
      const reply = key ? routes[key] : { status: 404, body: { error: 'Not Found' } };
      if (reply === 'hang' || reply === undefined) return;
      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {});
      response.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    script(next: Record<string, Reply>) {
      routes = next;
      seen.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('fusionbrain provider reading Fusion Brain answers', () => {
  const KEY = 'live-api-key-0123456789';
  const SECRET = 'live-secret-key-9876543210';
  const PIPELINE = '11111111-2222-4333-8444-555555555555';
  const UUID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
  const request: GenerationRequest = { prompt: 'a cat', width: 512, height: 512, numImages: 1, priority: 0 };
  const context = (): ProviderContext => ({ jobId: 'job', deadlineAt: null, readInput: noInputs, signal: AbortSignal.timeout(2000) });
  const ready = {
    'GET /key/api/v1/pipelines': { status: 200, body: [{ uuid: 'not-this-one', type: 'TEXT2VIDEO' }, { uuid: PIPELINE, type: 'TEXT2IMAGE' }] },
    [`GET /pipeline/${PIPELINE}/availability`]: { status: 200, body: { pipeline_status: 'ACTIVE' } },
    'POST /key/api/v1/pipeline/run': { status: 201, body: { uuid: UUID, status: 'INITIAL', status_time: 0 } },
  } satisfies Record<string, Reply>;
  const status = (body: unknown, code = 200): Record<string, Reply> => ({ [`GET /pipeline/status/${UUID}`]: { status: code, body } });

  let fusionBrain: Awaited<ReturnType<typeof startScriptedFusionBrain>>;
  let png: Buffer;
  const provider = () =>
    makeFusionBrainProvider({ apiUrl: fusionBrain.url, apiKey: KEY, secretKey: SECRET, maxImageBytes: 1_000_000, timeoutMs: 2000 });

  beforeAll(async () => {
    fusionBrain = await startScriptedFusionBrain();
    png = await renderMockImage('a cat', 1, 64, 64);
  });
  afterAll(() => fusionBrain?.close());

  /** What a call threw, for asserting on its ProviderError. */
  async function failureOf(call: Promise<unknown>): Promise<ProviderError> {
    const error = await call.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }

  it('submits a multipart run with its key headers and a JSON params part, reusing the discovered pipeline', async () => {
    fusionBrain.script(ready);
    const fb = provider();
    expect(await fb.submit({ ...request, style: 'UHD', negativePrompt: 'dark' }, context())).toEqual({ providerJobId: UUID });
    await fb.submit(request, context());

    expect(fusionBrain.seen.filter((seen) => seen.path.endsWith('/pipelines'))).toHaveLength(1);
    const runs = fusionBrain.seen.filter((seen) => seen.path.endsWith('/pipeline/run'));
    expect(runs).toHaveLength(2);
    const [first] = runs;
    expect(first?.headers['x-key']).toBe(`Key ${KEY}`);
    expect(first?.headers['x-secret']).toBe(`Secret ${SECRET}`);
    expect(first?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(first?.body).toMatch(new RegExp(`name="pipeline_id"\\r\\n\\r\\n${PIPELINE}\\r\\n`));
    const params = /name="params"[^\r]*\r\nContent-Type: application\/json\r\n\r\n(.*)\r\n/.exec(first?.body ?? '');
    expect(JSON.parse(params?.[1] ?? 'null')).toEqual({
      type: 'GENERATE',
      numImages: 1,
      width: 512,
      height: 512,
      style: 'UHD',
      negativePromptDecoder: 'dark',
      generateParams: { query: 'a cat' },
    });
  });

  it('reads a busy pipeline as retryable, from the availability check or from the run answer', async () => {
    fusionBrain.script({ ...ready, [`GET /pipeline/${PIPELINE}/availability`]: { status: 200, body: { status: 'DISABLED_BY_QUEUE' } } });
    const unavailable = await failureOf(provider().submit(request, context()));
    expect(unavailable).toMatchObject({ code: 'upstream_busy', retryable: true, message: expect.stringMatching(/DISABLED_BY_QUEUE/) });
    expect(fusionBrain.seen.some((seen) => seen.path.endsWith('/run'))).toBe(false);

    fusionBrain.script({ ...ready, 'POST /key/api/v1/pipeline/run': { status: 201, body: { model_status: 'DISABLED_BY_QUEUE' } } });
    expect(await failureOf(provider().submit(request, context()))).toMatchObject({ code: 'upstream_busy', retryable: true });
  });

  it('polls INITIAL as queued and PROCESSING as running', async () => {
    const job = { providerJobId: UUID, request };
    fusionBrain.script(status({ uuid: UUID, status: 'INITIAL' }));
    expect(await provider().poll(job, context())).toEqual({ state: 'queued' });
    fusionBrain.script(status({ uuid: UUID, status: 'PROCESSING' }));
    expect(await provider().poll(job, context())).toEqual({ state: 'running' });
  });

  it('decodes files sent as data: URIs or plain base64, typed by their bytes, without a seed', async () => {
    const job = { providerJobId: UUID, request };
    fusionBrain.script(status({ uuid: UUID, status: 'DONE', result: { files: [`data:image/jpeg;base64,${png.toString('base64')}`], censored: false } }));
    const fromUri = await provider().poll(job, context());
    expect(fromUri).toEqual({ state: 'succeeded', outputs: [{ bytes: png, contentType: 'image/png' }] });

    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46]);
    fusionBrain.script(status({ uuid: UUID, status: 'DONE', result: { files: [jpeg.toString('base64')], censored: false } }));
    expect(await provider().poll(job, context())).toEqual({ state: 'succeeded', outputs: [{ bytes: jpeg, contentType: 'image/jpeg' }] });
  });

  it('refuses a censored result permanently, and an image over the size limit', async () => {
    const job = { providerJobId: UUID, request };
    fusionBrain.script(status({ uuid: UUID, status: 'DONE', result: { files: [png.toString('base64')], censored: true } }));
    expect(await failureOf(provider().poll(job, context()))).toMatchObject({ code: 'content_filtered', retryable: false });

    fusionBrain.script(status({ uuid: UUID, status: 'DONE', result: { files: [png.toString('base64')], censored: false } }));
    const small = makeFusionBrainProvider({ apiUrl: fusionBrain.url, apiKey: KEY, secretKey: SECRET, maxImageBytes: png.length - 1, timeoutMs: 2000 });
    expect(await failureOf(small.poll(job, context()))).toMatchObject({ code: 'output_too_large', retryable: false });

    fusionBrain.script(status({ uuid: UUID, status: 'DONE', result: { files: ['bm90IGFuIGltYWdl'], censored: false } }));
    expect(await failureOf(provider().poll(job, context()))).toMatchObject({ code: 'invalid_output', retryable: true, resubmit: true });
  });

  it('resubmits after FAIL and after a 404 (result already read or expired)', async () => {
    const job = { providerJobId: UUID, request };
    fusionBrain.script(status({ uuid: UUID, status: 'FAIL', errorDescription: 'GPU fell over' }));
    expect(await failureOf(provider().poll(job, context()))).toMatchObject({
      code: 'upstream_failed',
      retryable: true,
      resubmit: true,
      message: expect.stringMatching(/GPU fell over/),
    });
    fusionBrain.script(status({ error: 'Not Found' }, 404));
    expect(await failureOf(provider().poll(job, context()))).toMatchObject({ code: 'upstream_job_not_found', retryable: true, resubmit: true });
  });

  it('classifies HTTP failures: 5xx and 429 retry (with Retry-After), 401 and 415 do not, and keys never show', async () => {
    const job = { providerJobId: UUID, request };
    const poll = () => failureOf(provider().poll(job, context()));
    fusionBrain.script(status({ error: 'Internal Server Error' }, 500));
    expect(await poll()).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    fusionBrain.script({ [`GET /pipeline/status/${UUID}`]: { status: 429, headers: { 'retry-after': '3' }, body: { message: 'slow down' } } });
    expect(await poll()).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterMs: 3000 });
    fusionBrain.script({ 'GET /key/api/v1/pipelines': { status: 415, body: { error: 'Unsupported Media Type' } } });
    expect(await failureOf(provider().submit(request, context()))).toMatchObject({ code: 'unsupported_media_type', retryable: false });

    // An upstream that echoes the request back must not leak the keys into the job's error.
    fusionBrain.script(status({ error: 'Unauthorized', message: `bad credentials Key ${KEY} / Secret ${SECRET}` }, 401));
    const unauthorized = await poll();
    expect(unauthorized).toMatchObject({ code: 'unauthorized', retryable: false, message: expect.stringMatching(/bad credentials/) });
    expect(unauthorized.message).not.toContain(KEY);
    expect(unauthorized.message).not.toContain(SECRET);

    fusionBrain.script({ 'GET /key/api/v1/pipelines': { status: 401, body: { error: 'Unauthorized', message: `unknown key ${KEY}` } } });
    const check = await provider().check();
    expect(check).toMatchObject({ ok: false, detail: expect.stringMatching(/401/) });
    expect(check.detail).not.toContain(KEY);
  });

  it('treats a silent upstream and a closed port as retryable', async () => {
    fusionBrain.script({ [`GET /pipeline/status/${UUID}`]: 'hang' });
    const slow = await failureOf(provider().poll({ providerJobId: UUID, request }, { jobId: 'job', deadlineAt: null, readInput: noInputs, signal: AbortSignal.timeout(100) }));
    expect(slow).toMatchObject({ code: 'timeout', retryable: true });

    const closed = makeFusionBrainProvider({ apiUrl: 'http://127.0.0.1:9', apiKey: KEY, secretKey: SECRET, maxImageBytes: 1000, timeoutMs: 2000 });
    expect(await failureOf(closed.submit(request, context()))).toMatchObject({ code: 'network_error', retryable: true });
    expect(await closed.check()).toMatchObject({ ok: false, detail: expect.stringMatching(/Could not reach Fusion Brain/) });
  });
});
