import { Writable } from 'node:stream';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../src/core/errors.ts';
import type { Provider } from '../src/core/ports/provider.ts';
import { makeScriptedProvider } from './helpers/providers.ts';
import { startDarkroom, type ApiResponse, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * The RunPod-endpoints origin's own API (`/api/v1/runpod`, FastAPI + Celery), driven the way its
 * README's frontend drives it: POST /generate, poll /status/{task_id} until success, load image_url.
 *
 * - `dr`: AUTH=off, a mock that takes 300 ms: the frontend loop, batches, bad input, idempotency.
 * - `scripted`: AUTH=required, a scripted provider whose connection check fails and whose
 *   completions a test can hold: cancel mid-run, a failing /test, batches with failures, 401s.
 * - `idle`: no worker, so tasks stay queued until a test moves them: queue stats and status mapping.
 * - `shared`: AUTH=optional with two keys and a generate rate limit: isolation, 429s, log lines.
 */

const PROMPT = 'beautiful anime girl with blue hair, detailed eyes';
const ADMIN_KEY = 'origin-runpod-admin-key-0123456789';
const BASE = '/api/v1/runpod';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dr: TestDarkroom;
let scripted: TestDarkroom;
let idle: TestDarkroom;
let shared: TestDarkroom;
let script: ReturnType<typeof makeScriptedProvider>;
const logLines: Record<string, unknown>[] = [];

/** What the next submits do, in order (then: succeed). */
const submitSteps: ('ok' | 'permanent')[] = [];

/** The scripted provider, refusing submits as `submitSteps` say and failing its connection check as an unreachable upstream does. */
function unhealthy(inner: Provider): Provider {
  return {
    name: inner.name,
    capabilities: inner.capabilities,
    async submit(request, context) {
      if (submitSteps.shift() === 'permanent') throw new ProviderError('upstream refused: prompt violates policy', { code: 'rejected', retryable: false });
      return inner.submit(request, context);
    },
    poll: (job, context) => inner.poll(job, context),
    cancel: (job) => inner.cancel(job),
    check: async () => ({ ok: false, detail: 'connect ECONNREFUSED 127.0.0.1:9' }),
  };
}

beforeAll(async () => {
  script = makeScriptedProvider({ latencyMs: 0 });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  // One at a time: booting several at once on a busy machine can outlast Fastify's plugin timeout.
  dr = await startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '300' });
  scripted = await startDarkroom({ AUTH: 'required', ADMIN_API_KEY: ADMIN_KEY }, { apiKey: ADMIN_KEY, providers: [unhealthy(script.provider)] });
  idle = await startDarkroom({ AUTH: 'off', WORKER_CONCURRENCY: '0' }, { persist: true });
  shared = await startDarkroom(
    { AUTH: 'optional', ADMIN_API_KEY: ADMIN_KEY, MOCK_LATENCY_MS: '5000', RATE_LIMIT_GENERATE: '3/minute', LOG_LEVEL: 'info' },
    { logger: pino({ level: 'info' }, sink) },
  );
}, 180_000);
afterAll(async () => {
  await Promise.all([dr, scripted, idle, shared].map((darkroom) => darkroom?.close({ removeData: true })));
}, 60_000);

/** Every job of the darkroom, whatever its status (AUTH=off or an admin: all of them). */
async function jobCount(darkroom: TestDarkroom): Promise<number> {
  const { body } = await darkroom.api('GET', '/api/v1/queue/stats');
  return Object.values(body.jobs as Record<string, number>).reduce((sum, count) => sum + count, 0);
}

/** The README's pollTaskStatus, every 200 ms, keeping each status seen. */
async function pollTask(darkroom: TestDarkroom, taskId: string, headers: Record<string, string> = {}): Promise<{ body: ApiResponse['body']; seen: string[] }> {
  const seen: string[] = [];
  const until = Date.now() + 20_000;
  for (;;) {
    const { status, body } = await darkroom.api('GET', `${BASE}/status/${taskId}`, undefined, headers);
    expect(status).toBe(200);
    if (seen.at(-1) !== body.status) seen.push(body.status);
    if (['success', 'failed', 'cancelled'].includes(body.status)) return { body, seen };
    if (Date.now() > until) throw new Error(`task ${taskId} is still ${body.status}`);
    await sleep(200);
  }
}

async function imageSize(url: string): Promise<{ width?: number; height?: number; format?: string }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  const { width, height, format } = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
  return { width, height, format };
}

/** FastAPI's 422: `detail` is pydantic's list, and one entry names `loc` with `msg`. */
function expectValidation(response: ApiResponse, loc: (string | number)[], msg: RegExp): void {
  expect(response.status, JSON.stringify(response.body)).toBe(422);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(Object.keys(response.body)).toEqual(['detail']);
  expect(response.body.detail).toEqual(expect.arrayContaining([expect.objectContaining({ loc, msg: expect.stringMatching(msg), type: expect.any(String) })]));
}

describe('the README’s frontend loop', () => {
  it('generate → poll status every 200 ms → success → image_url downloads an image of the requested size', async () => {
    const started = await dr.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: 832, height: 1216, steps: 30, use_enhanced_prompts: true });
    expect(started.status).toBe(200);
    expect(started.body).toEqual({
      task_id: expect.stringMatching(UUID),
      status: 'pending',
      message: 'Image generation started. Use /status/{task_id} to check progress.',
    });

    const { body, seen } = await pollTask(dr, started.body.task_id);
    // Statuses only move forward.
    const order = ['pending', 'started', 'generating', 'success'];
    expect(seen.map((status) => order.indexOf(status))).toEqual([...seen.map((status) => order.indexOf(status))].sort((a, b) => a - b));
    expect(body).toEqual({
      task_id: started.body.task_id,
      status: 'success',
      result: { success: true, image_url: expect.stringMatching(/^http:\/\//), prompt: PROMPT, width: 832, height: 1216, steps: 30, seed: expect.any(Number) },
      error: null,
    });
    expect(await imageSize(body.result.image_url)).toEqual({ width: 832, height: 1216, format: 'png' });

    // An ordinary darkroom job underneath.
    const job = (await dr.api('GET', `/api/v1/jobs/${started.body.task_id}`)).body;
    expect(job).toMatchObject({ status: 'succeeded', request: { prompt: PROMPT, width: 832, height: 1216, steps: 30 } });
    expect((await dr.darkroom.repo.get(job.id))?.dialect).toBe('tasks');
  });

  it('defaults: 1024×1024, 30 steps; nulls mean "not given"; unknown fields are ignored, as pydantic does', async () => {
    const started = await dr.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: null, seed: null, cfg_scale: null, style_preset: 'anime' });
    expect(started.status).toBe(200);
    const { body } = await pollTask(dr, started.body.task_id);
    expect(body.result).toMatchObject({ width: 1024, height: 1024, steps: 30 });
    expect(await imageSize(body.result.image_url)).toMatchObject({ width: 1024, height: 1024 });
  });

  it('maps sampler_name (with a karras schedule) to darkroom’s scheduler and records what it does not send', async () => {
    const karras = await dr.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: 512, height: 512, sampler_name: 'DPM++ 2M', scheduler: 'karras', cfg_scale: 6.5, seed: 7, negative_prompt: 'blurry' });
    const simple = await dr.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: 512, height: 512, sampler_name: 'Euler a', scheduler: 'simple', use_enhanced_prompts: false });
    const first = await dr.darkroom.repo.get(karras.body.task_id);
    expect(first?.request).toMatchObject({ scheduler: 'DPM++ 2M Karras', cfgScale: 6.5, seed: 7, negativePrompt: 'blurry' });
    expect(first?.dialectData).toEqual({ useEnhancedPrompts: true });
    const second = await dr.darkroom.repo.get(simple.body.task_id);
    expect(second?.request.scheduler).toBe('Euler a');
    expect(second?.dialectData).toEqual({ useEnhancedPrompts: false, scheduler: 'simple' });
    expect((await pollTask(dr, karras.body.task_id)).body.result.seed).toBe(7);
  });

  it('a batch of three is one task with three images, each of the requested size, in prompt order', async () => {
    const prompts = ['anime girl with blue hair', 'anime girl with red hair', 'anime girl with green hair'];
    const started = await dr.api('POST', `${BASE}/generate/batch`, { prompts, width: 512, height: 768, steps: 20 });
    expect(started.status).toBe(200);
    expect(started.body).toEqual({ task_id: expect.stringMatching(UUID), status: 'pending', message: expect.stringMatching(/^Batch generation of 3 images started/) });

    const { body } = await pollTask(dr, started.body.task_id);
    expect(body.status).toBe('success');
    expect(body.result.success).toBe(true);
    expect(body.result.errors).toBeUndefined();
    expect(body.result.images.map((image: { prompt: string }) => image.prompt)).toEqual(prompts);
    for (const image of body.result.images) {
      expect(image).toMatchObject({ width: 512, height: 768 });
      expect(await imageSize(image.image_url)).toMatchObject({ width: 512, height: 768 });
    }
    const batch = (await dr.api('GET', `/api/v1/batches/${started.body.task_id}`)).body;
    expect(batch.total).toBe(3);
  });

  it('/test runs the default provider’s check as a task', async () => {
    const started = await dr.api('POST', `${BASE}/test`);
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ task_id: expect.stringMatching(UUID), status: 'pending' });
    const { body } = await pollTask(dr, started.body.task_id);
    expect(body).toEqual({
      task_id: started.body.task_id,
      status: 'success',
      result: { success: true, provider: 'mock', healthy: true, detail: expect.stringMatching(/mock/), latency_ms: expect.any(Number) },
      error: null,
    });
    const unknown = await dr.api('POST', `${BASE}/test?provider=nope`);
    expectValidation(unknown, ['query', 'provider'], /not a configured provider/);
  });

  it('Idempotency-Key: a repeat gets the same task; the key with another body is refused', async () => {
    const headers = { 'idempotency-key': 'frontend-click-1' };
    const body = { prompt: PROMPT, width: 512, height: 512 };
    const before = await jobCount(dr);
    const first = await dr.api('POST', `${BASE}/generate`, body, headers);
    const again = await dr.api('POST', `${BASE}/generate`, body, headers);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await jobCount(dr)).toBe(before + 1);
    const other = await dr.api('POST', `${BASE}/generate`, { ...body, prompt: 'another' }, headers);
    expect(other.status).toBe(422);
    expect(other.body).toEqual({ detail: expect.stringMatching(/Idempotency-Key was already used/) });
  });

  it('queue stats show the live worker by id to an unscoped caller', async () => {
    const { status, body } = await dr.api('GET', `${BASE}/queue/stats`);
    expect(status).toBe(200);
    expect(body).toEqual({ active_tasks: expect.any(Number), reserved_tasks: expect.any(Number), scheduled_tasks: 0, workers: [dr.darkroom.worker.id] });
  });
});

describe('unknown tasks and bad input', () => {
  it('an unknown task, a malformed id and another dialect’s job are 404 {detail}', async () => {
    const native = await dr.api('POST', '/api/v1/jobs', { prompt: PROMPT, width: 64, height: 64 });
    for (const id of ['0190a0a0-0000-7000-8000-000000000000', 'abc-123-def-456', native.body.id]) {
      for (const [method, path] of [['GET', `/status/${id}`], ['DELETE', `/cancel/${id}`]] as const) {
        const response = await dr.api(method, `${BASE}${path}`);
        expect(response.status).toBe(404);
        expect(response.body).toEqual({ detail: `Task ${id} not found` });
      }
    }
    expect(await dr.api('GET', `${BASE}/no-such-route`)).toMatchObject({ status: 404, body: { detail: 'Not Found' } });
  });

  const long = 'x'.repeat(2001);
  it.each([
    ['malformed JSON', '/generate', '{"prompt": ', ['body'], /JSON decode error/],
    ['no body', '/generate', undefined, ['body'], /Field required/],
    ['a body that is a list', '/generate', [PROMPT], ['body'], /valid dictionary/],
    ['no prompt', '/generate', { width: 512 }, ['body', 'prompt'], /Field required/],
    ['a prompt that is a number', '/generate', { prompt: 42 }, ['body', 'prompt'], /valid string/],
    ['an empty prompt', '/generate', { prompt: '' }, ['body', 'prompt'], /at least 1 character$/],
    ['a blank prompt', '/generate', { prompt: '   ' }, ['body', 'prompt'], /other than whitespace/],
    ['a prompt of 2001 characters', '/generate', { prompt: long }, ['body', 'prompt'], /at most 2000 characters/],
    ['width 100', '/generate', { prompt: PROMPT, width: 100 }, ['body', 'width'], /greater than or equal to 512/],
    ['height 4096', '/generate', { prompt: PROMPT, height: 4096 }, ['body', 'height'], /less than or equal to 2048/],
    ['width not a multiple of 8', '/generate', { prompt: PROMPT, width: 1004 }, ['body', 'width'], /multiple of 8/],
    ['width as a string', '/generate', { prompt: PROMPT, width: '832' }, ['body', 'width'], /valid integer/],
    ['width with a fraction', '/generate', { prompt: PROMPT, width: 832.5 }, ['body', 'width'], /fractional part/],
    ['steps 0', '/generate', { prompt: PROMPT, steps: 0 }, ['body', 'steps'], /greater than or equal to 1/],
    ['steps 151', '/generate', { prompt: PROMPT, steps: 151 }, ['body', 'steps'], /less than or equal to 150/],
    ['cfg_scale 25', '/generate', { prompt: PROMPT, cfg_scale: 25 }, ['body', 'cfg_scale'], /less than or equal to 20/],
    ['seed -2', '/generate', { prompt: PROMPT, seed: -2 }, ['body', 'seed'], /greater than or equal to -1/],
    ['use_enhanced_prompts "yes"', '/generate', { prompt: PROMPT, use_enhanced_prompts: 'yes' }, ['body', 'use_enhanced_prompts'], /valid boolean/],
    ['11 prompts', '/generate/batch', { prompts: Array.from({ length: 11 }, () => PROMPT) }, ['body', 'prompts'], /at most 10 items after validation, not 11/],
    ['no prompts', '/generate/batch', { prompts: [] }, ['body', 'prompts'], /at least 1 item after validation, not 0/],
    ['prompts not a list', '/generate/batch', { prompts: PROMPT }, ['body', 'prompts'], /valid list/],
    ['one bad prompt of three', '/generate/batch', { prompts: [PROMPT, '', PROMPT] }, ['body', 'prompts', 1], /at least 1 character/],
    ['a bad shared option', '/generate/batch', { prompts: [PROMPT], width: 513 }, ['body', 'width'], /multiple of 8/],
  ])('%s → 422 naming it, nothing created', async (_name, path, body, loc, msg) => {
    const before = await jobCount(dr);
    expectValidation(await dr.api('POST', `${BASE}${path}`, body), loc, msg);
    expect(await jobCount(dr)).toBe(before);
  });

  it('every bad field is listed at once, one entry each', async () => {
    const response = await dr.api('POST', `${BASE}/generate`, { prompt: 3, width: 832.5, steps: 0 });
    expect(response.status).toBe(422);
    expect(response.body.detail.map((item: { loc: unknown[] }) => item.loc.join('.'))).toEqual(['body.prompt', 'body.width', 'body.steps']);
  });

  it('a body that is not JSON is a 415 {detail}', async () => {
    const response = await dr.api('POST', `${BASE}/generate`, 'prompt=fox', { 'content-type': 'text/plain' });
    expect(response.status).toBe(415);
    expect(response.body).toEqual({ detail: expect.stringMatching(/text\/plain/) });
  });
});

describe('cancel, failures and the connection test (scripted provider, AUTH=required)', () => {
  it('without a key every route is a 401 in FastAPI’s shape', async () => {
    for (const [method, path] of [['POST', '/generate'], ['GET', '/status/x'], ['GET', '/queue/stats'], ['POST', '/test'], ['DELETE', '/cancel/x']]) {
      const response = await fetch(`${scripted.url}${BASE}${path}`, { method });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ detail: expect.stringMatching(/requires an API key/) });
    }
  });

  it('cancel mid-run: the task and the darkroom job are cancelled, and so is the upstream job', async () => {
    const hold = script.holdCompletion();
    const started = await scripted.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: 512, height: 512 });
    await hold.reached;
    expect((await scripted.api('GET', `${BASE}/status/${started.body.task_id}`)).body.status).toMatch(/^(started|generating)$/);

    const cancelled = await scripted.api('DELETE', `${BASE}/cancel/${started.body.task_id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toEqual({ task_id: started.body.task_id, status: 'cancelled', message: expect.any(String) });
    const job = await scripted.darkroom.repo.get(started.body.task_id);
    expect(job?.status).toBe('cancelled');
    expect(script.calls.cancel).toEqual([job?.providerJobId]);
    hold.release();

    await sleep(100);
    expect((await scripted.api('GET', `${BASE}/status/${started.body.task_id}`)).body).toEqual({ task_id: started.body.task_id, status: 'cancelled', result: null, error: null });
    const again = await scripted.api('DELETE', `${BASE}/cancel/${started.body.task_id}`);
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ detail: expect.stringMatching(/already finished \(cancelled\)/) });
  });

  it('a failed generation is failed with the job’s error message', async () => {
    submitSteps.push('permanent');
    const started = await scripted.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: 512, height: 512 });
    const { body } = await pollTask(scripted, started.body.task_id);
    expect(body).toEqual({ task_id: started.body.task_id, status: 'failed', result: null, error: 'upstream refused: prompt violates policy' });
    const finished = await scripted.api('DELETE', `${BASE}/cancel/${started.body.task_id}`);
    expect(finished).toMatchObject({ status: 409, body: { detail: expect.stringMatching(/already finished \(failed\)/) } });
  });

  it('a batch where one prompt fails succeeds with the others and lists the failure; one where all fail is failed', async () => {
    submitSteps.push('ok', 'permanent', 'ok');
    const partly = await scripted.api('POST', `${BASE}/generate/batch`, { prompts: ['one', 'two', 'three'], width: 512, height: 512 });
    const { body } = await pollTask(scripted, partly.body.task_id);
    expect(body.status).toBe('success');
    expect(body.result.images).toHaveLength(2);
    expect(body.result.errors).toEqual([{ prompt: expect.any(String), error: 'upstream refused: prompt violates policy' }]);
    expect(body.error).toBeNull();

    submitSteps.push('permanent', 'permanent');
    const none = await scripted.api('POST', `${BASE}/generate/batch`, { prompts: ['one', 'two'], width: 512, height: 512 });
    const failed = await pollTask(scripted, none.body.task_id);
    expect(failed.body).toMatchObject({ status: 'failed', result: null, error: 'All 2 generations failed; the first: upstream refused: prompt violates policy' });
  });

  it('/test against a provider that fails its check is failed, with the provider’s answer', async () => {
    const started = await scripted.api('POST', `${BASE}/test`);
    const { body } = await pollTask(scripted, started.body.task_id);
    expect(body).toEqual({
      task_id: started.body.task_id,
      status: 'failed',
      result: { success: false, provider: 'mock', healthy: false, detail: 'connect ECONNREFUSED 127.0.0.1:9', latency_ms: expect.any(Number) },
      error: 'Provider mock failed its connection check: connect ECONNREFUSED 127.0.0.1:9',
    });
    expect((await scripted.api('DELETE', `${BASE}/cancel/${started.body.task_id}`)).status).toBe(409);
  });
});

describe('queue stats and status mapping (no worker)', () => {
  it('counts queued tasks as reserved, backing-off ones as scheduled, running ones as active; lists no worker without slots', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) ids.push((await idle.api('POST', `${BASE}/generate`, { prompt: `${PROMPT} ${i}` })).body.task_id);
    const stats = async () => (await idle.api('GET', `${BASE}/queue/stats`)).body;
    expect(await stats()).toEqual({ active_tasks: 0, reserved_tasks: 3, scheduled_tasks: 0, workers: [] });

    const [first, second] = ids as [string, string];
    await idle.darkroom.repo.update(first, 'queued', { runAfter: new Date(Date.now() + 60_000) });
    await idle.darkroom.repo.transition(second, ['queued'], 'running', { startedAt: new Date(), stage: 'submitting' });
    expect(await stats()).toEqual({ active_tasks: 1, reserved_tasks: 1, scheduled_tasks: 1, workers: [] });

    const status = async (id: string) => (await idle.api('GET', `${BASE}/status/${id}`)).body;
    expect(await status(first)).toEqual({ task_id: first, status: 'pending', result: null, error: null });
    expect(await status(second)).toEqual({ task_id: second, status: 'started', result: null, error: null });
    await idle.darkroom.repo.update(second, 'running', { stage: 'waiting_upstream', progress: 0.42 });
    expect(await status(second)).toEqual({ task_id: second, status: 'generating', result: { progress: 42 }, error: null });
  });

  it('a batch is pending until one starts, then generating with the share done; cancel stops every unfinished image', async () => {
    const started = await idle.api('POST', `${BASE}/generate/batch`, { prompts: ['a', 'b', 'c', 'd'] });
    const batchId = started.body.task_id as string;
    const status = async () => (await idle.api('GET', `${BASE}/status/${batchId}`)).body;
    expect(await status()).toEqual({ task_id: batchId, status: 'pending', result: null, error: null });

    const [a, b] = (await idle.darkroom.repo.listByBatch(batchId)).map((job) => job.id) as [string, string];
    await idle.darkroom.repo.transition(a, ['queued'], 'running', { startedAt: new Date() });
    expect((await status()).status).toBe('started');
    await idle.darkroom.repo.update(a, 'running', { progress: 0.5 });
    await idle.darkroom.repo.transition(b, ['queued'], 'failed', { error: { code: 'rejected', message: 'refused', retryable: false }, completedAt: new Date() });
    // (0.5 + 1 + 0 + 0) / 4
    expect(await status()).toEqual({ task_id: batchId, status: 'generating', result: { progress: 38, completed: 1, total: 4 }, error: null });

    const cancelled = await idle.api('DELETE', `${BASE}/cancel/${batchId}`);
    expect(cancelled.body).toEqual({ task_id: batchId, status: 'cancelled', message: 'Batch cancelled: 3 unfinished of 4 images stopped' });
    expect((await idle.darkroom.repo.listByBatch(batchId)).map((job) => job.status)).toEqual(['cancelled', 'failed', 'cancelled', 'cancelled']);
    expect(await status()).toEqual({ task_id: batchId, status: 'cancelled', result: null, error: null });
    expect((await idle.api('DELETE', `${BASE}/cancel/${batchId}`)).status).toBe(409);
  });

  it('a /test outcome is stored in the database: a restarted darkroom still answers it', async () => {
    const started = await idle.api('POST', `${BASE}/test`);
    const done = await pollTask(idle, started.body.task_id);
    expect(done.body.status).toBe('success');
    const { dataDir } = idle;
    await idle.close();
    idle = await startDarkroom({ AUTH: 'off', WORKER_CONCURRENCY: '0' }, { dataDir });
    expect((await idle.api('GET', `${BASE}/status/${started.body.task_id}`)).body).toEqual(done.body);
  }, 60_000);
});

describe('keys and guests (AUTH=optional)', () => {
  let keyA: { id: string; key: string };
  let keyB: { id: string; key: string };
  const as = (key: { key: string }) => ({ authorization: `Bearer ${key.key}` });

  beforeAll(async () => {
    const admin = { authorization: `Bearer ${ADMIN_KEY}` };
    keyA = (await shared.api('POST', '/api/v1/keys', { name: 'A' }, admin)).body;
    keyB = (await shared.api('POST', '/api/v1/keys', { name: 'B' }, admin)).body;
  });

  it('another key’s (or a guest’s) task does not exist: 404 on status and cancel', async () => {
    const single = await shared.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: 512, height: 512 }, as(keyA));
    const batch = await shared.api('POST', `${BASE}/generate/batch`, { prompts: ['a', 'b'], width: 512, height: 512 }, as(keyA));
    const test = await shared.api('POST', `${BASE}/test`, undefined, as(keyA));
    for (const taskId of [single.body.task_id, batch.body.task_id, test.body.task_id]) {
      for (const headers of [as(keyB), {}]) {
        expect(await shared.api('GET', `${BASE}/status/${taskId}`, undefined, headers)).toMatchObject({ status: 404, body: { detail: `Task ${taskId} not found` } });
        expect((await shared.api('DELETE', `${BASE}/cancel/${taskId}`, undefined, headers)).status).toBe(404);
      }
      expect((await shared.api('GET', `${BASE}/status/${taskId}`, undefined, as(keyA))).status).toBe(200);
    }

    // Queue stats: each key its own counts; worker names are not shown to a key without the admin scope.
    expect((await shared.api('GET', `${BASE}/queue/stats`, undefined, as(keyB))).body).toEqual({ active_tasks: 0, reserved_tasks: 0, scheduled_tasks: 0, workers: ['worker-1'] });
    const own = (await shared.api('GET', `${BASE}/queue/stats`, undefined, as(keyA))).body;
    expect(own.active_tasks + own.reserved_tasks).toBe(3);

    expect((await shared.api('DELETE', `${BASE}/cancel/${single.body.task_id}`, undefined, as(keyA))).status).toBe(200);
    expect((await shared.api('DELETE', `${BASE}/cancel/${batch.body.task_id}`, undefined, as(keyA))).status).toBe(200);

    // Logs: the dialect's component, the task id and the key's id, never the key.
    const created = logLines.find((line) => line.msg === 'task created' && line.taskId === single.body.task_id);
    expect(created).toMatchObject({ component: 'runpod-api', keyId: keyA.id });
    expect(logLines.find((line) => line.msg === 'task cancelled' && line.taskId === batch.body.task_id)).toMatchObject({ component: 'runpod-api', keyId: keyA.id, jobs: 2 });
    expect(logLines.find((line) => line.msg === 'request' && line.url === `${BASE}/generate`)).toMatchObject({ component: 'runpod-api' });
    expect(JSON.stringify(logLines)).not.toContain(keyA.key);
  });

  it('the generate rate limit answers 429 {detail} with Retry-After', async () => {
    const guest = {};
    const answers: ApiResponse[] = [];
    for (let i = 0; i < 4; i += 1) answers.push(await shared.api('POST', `${BASE}/generate`, { prompt: PROMPT, width: 512, height: 512 }, guest));
    expect(answers.slice(0, 3).map((answer) => answer.status)).toEqual([200, 200, 200]);
    const limited = answers[3] as ApiResponse;
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ detail: expect.stringMatching(/Rate limit exceeded: this IP address may make 3\/minute job-creating requests/) });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    for (const answer of answers.slice(0, 3)) await shared.api('DELETE', `${BASE}/cancel/${answer.body.task_id}`, undefined, guest);
  });
});
