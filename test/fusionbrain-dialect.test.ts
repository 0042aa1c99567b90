import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * The Fusion Brain dialect, driven the way the service's docs drive the real API (their Python
 * example): list pipelines, run with a multipart form, poll the status until DONE. Two darkrooms:
 * `dr` requires keys (AUTH=required) and runs a quick mock; `idle` takes guests and has no worker,
 * so its jobs stay queued for as long as a test needs.
 */

const ADMIN_KEY = 'fusion-brain-admin-key-0123456789';
/** A darkroom key in the service's own headers; X-Secret is sent as clients do, and not needed. */
let KEYS: Record<string, string>;
/** The same key for darkroom's own API: the jobs it sees are the ones the Fusion Brain client made. */
let asClient: Record<string, string>;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const valid = { type: 'GENERATE', numImages: 1, width: 512, height: 768, generateParams: { query: 'a red fox in the snow' } };

interface Answer {
  status: number;
  // Tests inspect arbitrary JSON shapes; each assertion narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

let dr: TestDarkroom;
let idle: TestDarkroom;
let pipelineId: string;

async function call(darkroom: TestDarkroom, method: string, path: string, init: { body?: RequestInit['body']; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${darkroom.url}/key/api/v1/${path}`, { method, body: init.body, headers: init.headers ?? (darkroom === dr ? KEYS : {}) });
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  return { status: response.status, body: await response.json() };
}

/** The form the docs build: a text part `pipeline_id` and a JSON part `params` with its own content type. */
function runForm(params: unknown, pipeline = pipelineId): FormData {
  const form = new FormData();
  form.append('pipeline_id', pipeline);
  form.append('params', new Blob([typeof params === 'string' ? params : JSON.stringify(params)], { type: 'application/json' }));
  return form;
}

const run = (params: unknown, pipeline?: string, darkroom = dr) =>
  call(darkroom, 'POST', 'pipeline/run', { body: runForm(params, pipeline), headers: darkroom === dr ? KEYS : {} });

/** Asserts the service's own error shape (never problem+json) with `status`. */
function expectError(answer: Answer, status: number, message?: RegExp): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.body).toMatchObject({ status, error: expect.any(String), message: expect.any(String), path: expect.stringMatching(/^\/key\/api\/v1\//) });
  expect(Number.isNaN(Date.parse(answer.body.timestamp))).toBe(false);
  if (message) expect(answer.body.message).toMatch(message);
}

async function pollUntilFinished(uuid: string, darkroom = dr): Promise<Answer> {
  const until = Date.now() + 15_000;
  for (;;) {
    const answer = await call(darkroom, 'GET', `pipeline/status/${uuid}`);
    expect(answer.status).toBe(200);
    if (!['INITIAL', 'PROCESSING'].includes(answer.body.status)) return answer;
    if (Date.now() > until) throw new Error(`generation ${uuid} is still ${answer.body.status}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The darkroom job behind a generation uuid (the uuid is the job id with its version digit set to 4). */
const jobIdOf = (uuid: string) => `${uuid.slice(0, 14)}7${uuid.slice(15)}`;

async function jobCount(darkroom: TestDarkroom): Promise<number> {
  const { body } = await darkroom.api('GET', '/api/v1/queue/stats');
  return Object.values(body.jobs as Record<string, number>).reduce((sum, count) => sum + count, 0);
}

beforeAll(async () => {
  [dr, idle] = await Promise.all([
    startDarkroom({ AUTH: 'required', ADMIN_API_KEY: ADMIN_KEY, MOCK_LATENCY_MS: '30' }, { apiKey: ADMIN_KEY }),
    startDarkroom({ WORKER_CONCURRENCY: '0' }),
  ]);
  const created = await dr.api('POST', '/api/v1/keys', { name: 'fusion brain client' });
  KEYS = { 'X-Key': `Key ${created.body.key}`, 'X-Secret': 'Secret anything' };
  asClient = { authorization: `Bearer ${created.body.key}` };
  const pipelines = await call(dr, 'GET', 'pipelines');
  pipelineId = pipelines.body[0].id;
});
afterAll(async () => {
  await Promise.all([dr?.close({ removeData: true }), idle?.close({ removeData: true })]);
});

describe('Fusion Brain dialect: a generation from start to finish', () => {
  it('lists one ACTIVE TEXT2IMAGE pipeline with a stable id, and says it is available either way clients read it', async () => {
    const pipelines = await call(dr, 'GET', 'pipelines');
    expect(pipelines.status).toBe(200);
    expect(pipelines.body).toEqual([expect.objectContaining({ name: 'Kandinsky', status: 'ACTIVE', type: 'TEXT2IMAGE', version: expect.any(Number) })]);
    expect(pipelines.body[0].id).toMatch(UUID_V4);
    expect((await call(idle, 'GET', 'pipelines')).body[0].id).toBe(pipelineId);
    expect((await call(dr, 'GET', 'pipelines?type=TEXT2IMAGE')).body).toHaveLength(1);
    expect((await call(dr, 'GET', 'pipelines?type=TEXT2VIDEO')).body).toEqual([]);

    const availability = await call(dr, 'GET', `pipeline/${pipelineId}/availability`);
    expect(availability).toEqual({ status: 200, body: { status: 'ACTIVE', pipeline_status: 'ACTIVE' } });
  });

  it('runs, reports progress, answers DONE with a base64 PNG of the requested size once, then 404', async () => {
    const started = await run({ ...valid, style: 'ANIME', negativePromptDecoder: 'blurry' });
    expect(started.status).toBe(201);
    expect(started.body).toEqual({ uuid: expect.stringMatching(UUID_V4), status: 'INITIAL', status_time: expect.any(Number) });
    const { uuid } = started.body as { uuid: string };

    const done = await pollUntilFinished(uuid);
    expect(done.body).toEqual({ uuid, status: 'DONE', result: { files: [expect.any(String)], censored: false }, generationTime: expect.any(Number) });
    const image = await sharp(Buffer.from(done.body.result.files[0], 'base64')).metadata();
    expect([image.format, image.width, image.height]).toEqual(['png', 512, 768]);

    expectError(await call(dr, 'GET', `pipeline/status/${uuid}`), 404, /already read/);

    // The job is an ordinary darkroom job: the style and negative prompt went into its request.
    const job = (await dr.api('GET', `/api/v1/jobs/${jobIdOf(uuid)}`, undefined, asClient)).body;
    expect(job.status).toBe('succeeded');
    expect(job.request).toMatchObject({ prompt: 'a red fox in the snow', style: 'ANIME', negativePrompt: 'blurry', width: 512, height: 768, numImages: 1 });
  });

  it('takes params as a text part with its own content type, as Python requests sends it, with the default size', async () => {
    const boundary = 'darkroom-boundary-1234';
    const body = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="pipeline_id"',
      '',
      pipelineId,
      `--${boundary}`,
      'Content-Disposition: form-data; name="params"',
      'Content-Type: application/json',
      '',
      JSON.stringify({ type: 'GENERATE', generateParams: { query: 'a lighthouse' } }),
      `--${boundary}--`,
      '',
    ].join('\r\n');
    const started = await call(dr, 'POST', 'pipeline/run', { body, headers: { ...KEYS, 'content-type': `multipart/form-data; boundary=${boundary}` } });
    expect(started.status).toBe(201);
    const job = (await dr.api('GET', `/api/v1/jobs/${jobIdOf(started.body.uuid)}`, undefined, asClient)).body;
    expect(job.request).toMatchObject({ prompt: 'a lighthouse', width: 1024, height: 1024 });
  });

  it('answers FAIL with a description for a job that ended without images, also only once', async () => {
    const started = await run(valid, undefined, idle);
    expect(started.status).toBe(201);
    const { uuid } = started.body as { uuid: string };
    expect((await call(idle, 'GET', `pipeline/status/${uuid}`)).body).toEqual({ uuid, status: 'INITIAL' });
    expect((await idle.api('POST', `/api/v1/jobs/${jobIdOf(uuid)}/cancel`)).status).toBe(200);
    expect((await call(idle, 'GET', `pipeline/status/${uuid}`)).body).toEqual({ uuid, status: 'FAIL', errorDescription: 'The generation was cancelled' });
    expectError(await call(idle, 'GET', `pipeline/status/${uuid}`), 404);
  });
});

describe('Fusion Brain dialect: refusals, in the service’s own error shape', () => {
  it.each([
    ['no keys', {}, /X-Key/],
    ['a wrong key', { 'X-Key': 'Key dk_nope', 'X-Secret': 'Secret anything' }, /not valid/],
    ['the key in X-Secret only', { 'X-Secret': 'Secret dk_nope' }, /X-Key/],
  ])('refuses %s with 401 on every route', async (_name, headers, message) => {
    for (const [method, path] of [['GET', 'pipelines'], ['GET', `pipeline/${pipelineId}/availability`], ['GET', 'pipeline/status/x']]) {
      expectError(await call(dr, method as string, path as string, { headers }), 401, message);
    }
    expectError(await call(dr, 'POST', 'pipeline/run', { body: runForm(valid), headers }), 401);
  });

  it('accepts the key without its Key prefix, and needs none when guests are allowed', async () => {
    expect((await call(dr, 'GET', 'pipelines', { headers: { 'X-Key': (KEYS['X-Key'] as string).replace('Key ', '') } })).status).toBe(200);
    expect((await call(idle, 'GET', 'pipelines', { headers: {} })).status).toBe(200);
  });

  it('refuses bad input without creating a job', async () => {
    const before = await jobCount(dr);

    const textParams = new FormData();
    textParams.append('pipeline_id', pipelineId);
    textParams.append('params', JSON.stringify(valid));
    expectError(await call(dr, 'POST', 'pipeline/run', { body: textParams }), 415, /application\/json/);

    const jsonBody = await call(dr, 'POST', 'pipeline/run', { body: JSON.stringify({ pipeline_id: pipelineId, params: valid }), headers: { ...KEYS, 'content-type': 'application/json' } });
    expectError(jsonBody, 415, /multipart/);
    expectError(await call(dr, 'POST', 'pipeline/run', { body: 'hello', headers: { ...KEYS, 'content-type': 'text/plain' } }), 415);

    const noParams = new FormData();
    noParams.append('pipeline_id', pipelineId);
    expectError(await call(dr, 'POST', 'pipeline/run', { body: noParams }), 400, /params/);
    const noPipeline = new FormData();
    noPipeline.append('params', new Blob([JSON.stringify(valid)], { type: 'application/json' }));
    expectError(await call(dr, 'POST', 'pipeline/run', { body: noPipeline }), 400, /pipeline_id/);

    expectError(await run(valid, '00000000-0000-4000-8000-000000000000'), 404, /Pipeline/);
    expectError(await run('{"type":"GENERATE",'), 400, /not valid JSON/);

    expect(await jobCount(dr)).toBe(before);
  });

  it.each([
    ['width not a multiple of 64', { width: 1000 }, /width/],
    ['width above 1024', { width: 2048 }, /width/],
    ['height 0', { height: 0 }, /height/],
    ['width as a string', { width: '512' }, /width/],
    ['type other than GENERATE', { type: 'EDIT' }, /type/],
    ['two images', { numImages: 2 }, /numImages/],
    ['no query', { generateParams: {} }, /query/],
    ['a blank query', { generateParams: { query: '   ' } }, /query/],
    ['a query of 1001 characters', { generateParams: { query: 'x'.repeat(1001) } }, /query/],
    ['a style of 65 characters', { style: 'S'.repeat(65) }, /style/],
    ['a negative prompt that is not text', { negativePromptDecoder: 5 }, /negativePromptDecoder/],
  ])('refuses params with %s with 400', async (_name, change, message) => {
    expectError(await run({ ...valid, ...change }), 400, message);
  });

  it('refuses input images, in params or as a part of their own, without creating a job', async () => {
    const before = await jobCount(dr);
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer();
    expectError(await run({ ...valid, image: png.toString('base64') }), 400, /image is not supported: Fusion Brain generates from text only/);
    const form = runForm(valid);
    form.append('image', new Blob([png], { type: 'image/png' }), 'init.png');
    expectError(await call(dr, 'POST', 'pipeline/run', { body: form }), 400, /The image part is an image, but Fusion Brain generates from text only/);
    expect(await jobCount(dr)).toBe(before);
  });

  it('lists every bad param in one answer, and refuses params that are not an object', async () => {
    const answer = await run({ type: 'GENERATE', width: 100, height: 4096, generateParams: {} });
    expectError(answer, 400);
    expect(answer.body.message).toMatch(/width.*height.*query/);
    expectError(await run([valid]), 400, /JSON object/);
  });

  it.each([
    ['garbage after the boundary', 'multipart/form-data; boundary=abc', 'this is not multipart at all'],
    ['a truncated part', 'multipart/form-data; boundary=abc', '--abc\r\nContent-Disposition: form-data; name="params"\r\nContent-Type: application/json\r\n\r\n{"type":'],
    ['no boundary', 'multipart/form-data', '--abc\r\n\r\n--abc--'],
    ['a part without a name', 'multipart/form-data; boundary=abc', '--abc\r\nContent-Type: application/json\r\n\r\n{}\r\n--abc--\r\n'],
  ])('answers malformed multipart (%s) with a 4xx, never a 500', async (_name, contentType, body) => {
    const answer = await call(dr, 'POST', 'pipeline/run', { body, headers: { ...KEYS, 'content-type': contentType } });
    expect(answer.status, JSON.stringify(answer.body)).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    expectError(answer, answer.status);
  });

  it('answers 404 for unknown generations, pipelines and routes', async () => {
    expectError(await call(dr, 'GET', 'pipeline/status/0190a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b'), 404, /not found/);
    expectError(await call(dr, 'GET', 'pipeline/status/not-a-uuid'), 404);
    expectError(await call(dr, 'GET', 'pipeline/nope/availability'), 404, /Pipeline nope/);
    expectError(await call(dr, 'GET', 'models'), 404);
  });

  it('does not show jobs other dialects created', async () => {
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'native job' }, asClient);
    const asGeneration = `${(body.id as string).slice(0, 14)}4${(body.id as string).slice(15)}`;
    expectError(await call(dr, 'GET', `pipeline/status/${asGeneration}`), 404);
  });
});
