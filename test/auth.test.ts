import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import sdk from 'civitai';
import { pino } from 'pino';
import runpodSdk from 'runpod-sdk';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyRequest } from 'fastify';
import { DIALECTS } from '../src/api/dialects/registry.ts';
import { readSse } from './helpers/sse.ts';
import { makeDataDir, startDarkroom, type ApiResponse, type TestDarkroom } from './helpers/darkroom.ts';
import { spawnDarkroom } from './helpers/processes.ts';

/**
 * Accounts: API keys, the three AUTH modes, isolation of every caller's jobs through every dialect,
 * caps and rate limits. All through HTTP, as a client sees it.
 */

const ADMIN = 'admin-key-for-the-auth-tests-0123';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const NONE = { authorization: '' };
const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../bin/darkroom.js', import.meta.url));

async function createKey(dr: TestDarkroom, body: Record<string, unknown> = { name: 'a client' }): Promise<{ id: string; key: string }> {
  const created = await dr.api('POST', '/api/v1/keys', body, bearer(ADMIN));
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

function expectProblem(answer: ApiResponse, status: number, detail?: RegExp): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  if (detail) expect(answer.body.detail).toMatch(detail);
}

/** A Fusion Brain run form, as its Python example builds it. */
function fusionForm(prompt: string): FormData {
  const form = new FormData();
  form.append('pipeline_id', '5b1e2c3d-8f4a-4e6b-9c7d-0a1b2c3d4e5f');
  const params = { type: 'GENERATE', numImages: 1, width: 256, height: 256, generateParams: { query: prompt } };
  form.append('params', new Blob([JSON.stringify(params)], { type: 'application/json' }));
  return form;
}

describe('API keys', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, WORKER_CONCURRENCY: '0' });
  });
  afterAll(() => dr?.close({ removeData: true }));

  it('creates a key shown once, lists keys without secrets, and revokes it so it stops working at once', async () => {
    const created = await dr.api('POST', '/api/v1/keys', { name: '  my app  ', maxActiveJobs: 5 }, bearer(ADMIN));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(String), name: 'my app', scopes: [], maxActiveJobs: 5, maxBatchSize: null, revokedAt: null });
    expect(created.body.key).toMatch(/^dk_[\w-]{43}$/);
    expect(created.body.key.startsWith(created.body.prefix)).toBe(true);

    const listed = await dr.api('GET', '/api/v1/keys', undefined, bearer(ADMIN));
    expect(listed.status).toBe(200);
    expect(listed.body.items).toContainEqual(expect.objectContaining({ id: created.body.id, name: 'my app', prefix: created.body.prefix }));
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
    expect(listed.body.items.every((item: Record<string, unknown>) => !('key' in item) && !('hash' in item))).toBe(true);

    const key = bearer(created.body.key);
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'before revoking' }, key)).status).toBe(202);
    expect((await dr.api('DELETE', `/api/v1/keys/${created.body.id}`, undefined, bearer(ADMIN))).status).toBe(204);
    expectProblem(await dr.api('GET', '/api/v1/jobs', undefined, key), 401, /not valid/);
    expectProblem(await dr.api('POST', '/api/v1/jobs', { prompt: 'after revoking' }, key), 401);
    const after = await dr.api('GET', '/api/v1/keys', undefined, bearer(ADMIN));
    expect(after.body.items.find((item: { id: string }) => item.id === created.body.id).revokedAt).toEqual(expect.any(String));
    // Revoking twice is still done; an unknown key is not.
    expect((await dr.api('DELETE', `/api/v1/keys/${created.body.id}`, undefined, bearer(ADMIN))).status).toBe(204);
    expectProblem(await dr.api('DELETE', '/api/v1/keys/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', undefined, bearer(ADMIN)), 404);
  });

  it('manages keys with the admin scope only: an admin-scoped key can, a plain key or a guest cannot', async () => {
    const plain = await createKey(dr);
    const admin = await createKey(dr, { name: 'operator', scopes: ['admin'] });
    expectProblem(await dr.api('GET', '/api/v1/keys', undefined, bearer(plain.key)), 403, /admin scope/);
    expectProblem(await dr.api('POST', '/api/v1/keys', { name: 'x' }, NONE), 403, /admin scope/);
    expectProblem(await dr.api('DELETE', `/api/v1/keys/${admin.id}`, undefined, bearer(plain.key)), 403);
    expect((await dr.api('GET', '/api/v1/keys', undefined, bearer(admin.key))).status).toBe(200);
    expect((await dr.api('POST', '/api/v1/keys', { name: 'made by an admin key' }, bearer(admin.key))).status).toBe(201);
  });

  it.each([
    ['no name', {}, /name/],
    ['an empty name', { name: '' }, /name/],
    ['a blank name', { name: '   ' }, /name/],
    ['an unknown scope', { name: 'x', scopes: ['root'] }, /scopes/],
    ['an unknown field', { name: 'x', owner: 'someone' }, /owner/],
    ['a batch cap over 100', { name: 'x', maxBatchSize: 101 }, /maxBatchSize/],
    ['a zero active cap', { name: 'x', maxActiveJobs: 0 }, /maxActiveJobs/],
  ])('refuses a key with %s, naming the field', async (_name, body, field) => {
    const before = (await dr.api('GET', '/api/v1/keys', undefined, bearer(ADMIN))).body.items.length;
    const answer = await dr.api('POST', '/api/v1/keys', body, bearer(ADMIN));
    expectProblem(answer, 400);
    expect(JSON.stringify(answer.body.errors)).toMatch(field);
    expect((await dr.api('GET', '/api/v1/keys', undefined, bearer(ADMIN))).body.items.length).toBe(before);
  });

  it('refuses malformed credentials and ids clearly', async () => {
    expectProblem(await dr.api('GET', '/api/v1/jobs', undefined, { authorization: 'Basic YTpi' }), 401, /Bearer/);
    expectProblem(await dr.api('GET', '/api/v1/jobs', undefined, { authorization: 'Bearer' }), 401, /Bearer/);
    expectProblem(await dr.api('GET', '/api/v1/jobs', undefined, bearer('dk_not-a-key')), 401, /not valid/);
    expectProblem(await dr.api('DELETE', '/api/v1/keys/not-a-uuid', undefined, bearer(ADMIN)), 400);
  });
});

describe('isolation: a key sees only its own jobs, through every dialect', () => {
  let dr: TestDarkroom;
  let a: Record<string, string>;
  let b: Record<string, string>;
  let aJob: Record<string, unknown>;

  beforeAll(async () => {
    dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, MOCK_LATENCY_MS: '0', SSE_HEARTBEAT_MS: '600000' });
    a = bearer((await createKey(dr, { name: 'A' })).key);
    b = bearer((await createKey(dr, { name: 'B' })).key);
    const created = await dr.api('POST', '/api/v1/jobs', { prompt: 'A’s fox', width: 256, height: 192 }, a);
    aJob = (await dr.api('GET', `/api/v1/jobs/${created.body.id}?wait=20`, undefined, a)).body;
    expect(aJob.status).toBe('succeeded');
  });
  afterAll(() => dr?.close({ removeData: true }));

  it('native API: B cannot get, list, cancel, download or follow A’s job; A can', async () => {
    const id = aJob.id as string;
    for (const [method, path] of [
      ['GET', `/api/v1/jobs/${id}`],
      ['GET', `/api/v1/jobs/${id}?wait=1`],
      ['POST', `/api/v1/jobs/${id}/cancel`],
      ['DELETE', `/api/v1/jobs/${id}`],
      ['GET', `/api/v1/jobs/${id}/images/0`],
      ['GET', `/api/v1/jobs/${id}/images/0?redirect=true`],
      ['GET', `/api/v1/jobs/${id}/events`],
      ['GET', `/api/v1/jobs/${id}/webhooks`],
      ['GET', `/api/v1/batches/${id}`],
    ] as const) {
      expectProblem(await dr.api(method, path, undefined, b), 404);
    }
    expect((await dr.api('GET', '/api/v1/jobs', undefined, b)).body.items).toEqual([]);
    expect((await dr.api('GET', '/api/v1/jobs?status=succeeded', undefined, NONE)).body.items).toEqual([]);

    const link = await dr.api('GET', `/api/v1/jobs/${id}/images/0`, undefined, a);
    expect(link.status).toBe(200);
    const image = await sharp(Buffer.from(await (await fetch(link.body.url)).arrayBuffer())).metadata();
    expect([image.width, image.height]).toEqual([256, 192]);
    expect((await dr.api('GET', '/api/v1/jobs', undefined, a)).body.items.map((job: { id: string }) => job.id)).toContain(id);
    // A's stats count A's job; B's count nothing, and neither sees the workers.
    const stats = await dr.api('GET', '/api/v1/queue/stats', undefined, b);
    expect(stats.body.jobs.succeeded).toBe(0);
    expect(stats.body.workers).toBeUndefined();
    expect((await dr.api('GET', '/api/v1/queue/stats', undefined, a)).body.jobs.succeeded).toBeGreaterThanOrEqual(1);
    expect((await dr.api('GET', '/api/v1/queue/stats', undefined, bearer(ADMIN))).body.workers).toEqual([expect.objectContaining({ concurrency: 4 })]);
  });

  it('a guest is one more caller: it sees neither key’s jobs, and keys do not see the guest’s', async () => {
    const guestJob = await dr.api('POST', '/api/v1/jobs', { prompt: 'a guest’s job' }, NONE);
    expect(guestJob.status).toBe(202);
    expectProblem(await dr.api('GET', `/api/v1/jobs/${aJob.id}`, undefined, NONE), 404);
    expectProblem(await dr.api('GET', `/api/v1/jobs/${guestJob.body.id}`, undefined, a), 404);
    expect((await dr.api('GET', `/api/v1/jobs/${guestJob.body.id}`, undefined, NONE)).status).toBe(200);
  });

  it('Civitai dialect: a job and its token are 404 to another key, and cannot be cancelled by it', async () => {
    const body = { $type: 'textToImage', model: 'urn:air:sdxl:checkpoint:civitai:101055@128078', params: { prompt: 'civitai fox', width: 256, height: 256 } };
    const created = await dr.api('POST', '/v1/consumer/jobs?wait=true', body, a);
    expect(created.status).toBe(200);
    const jobId = created.body.jobs[0].jobId as string;
    const token = encodeURIComponent(created.body.token);
    expect((await dr.api('GET', `/v1/consumer/jobs/${jobId}`, undefined, b)).status).toBe(404);
    expect((await dr.api('GET', `/v1/consumer/jobs?token=${token}`, undefined, b)).status).toBe(404);
    expect((await dr.api('DELETE', `/v1/consumer/jobs/${jobId}`, undefined, b)).status).toBe(404);
    expect((await dr.api('POST', '/v1/consumer/jobs/query', { properties: {} }, b)).body.jobs).toEqual([]);
    expect((await dr.api('GET', `/v1/consumer/jobs/${jobId}`, undefined, a)).status).toBe(200);
    // The native API sees the Civitai job as A's, and only as A's.
    expect((await dr.api('GET', `/api/v1/jobs/${jobId}`, undefined, a)).status).toBe(200);
    expect((await dr.api('GET', `/api/v1/jobs/${jobId}`, undefined, b)).status).toBe(404);
  });

  it('Civitai resources: the shared AIR catalogue is readable by anyone and changed by admins only', async () => {
    const air = 'urn:air:sdxl:lora:civitai:777@888';
    const resource = { air, size: 10, hashes: {}, downloadUrls: [] };
    for (const headers of [NONE, a]) {
      const refused = await dr.api('POST', '/v2/resources', resource, headers);
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ status: 403, detail: expect.stringMatching(/admin scope/) });
    }
    expect((await dr.api('POST', '/v2/resources', resource, bearer(ADMIN))).status).toBe(201);
    expect((await dr.api('GET', `/v2/resources/${air}`, undefined, NONE)).status).toBe(200);
    expect((await dr.api('DELETE', `/v2/resources/${air}`, undefined, b)).status).toBe(403);
    expect((await dr.api('PATCH', `/v2/resources/${air}`, { size: 11 }, NONE)).status).toBe(403);
    expect((await dr.api('GET', `/v2/resources/${air}`, undefined, a)).body.size).toBe(10);
  });

  it('RunPod dialect: status, cancel, retry and stream of another key’s job are 404', async () => {
    const created = await dr.api('POST', '/v2/ep-1/runsync', { input: { prompt: 'runpod fox', width: 256, height: 256 } }, a);
    expect(created.status).toBe(200);
    const { id } = created.body as { id: string };
    for (const [method, path] of [
      ['GET', `/v2/ep-1/status/${id}`],
      ['POST', `/v2/ep-1/cancel/${id}`],
      ['POST', `/v2/ep-1/retry/${id}`],
      ['GET', `/v2/ep-1/stream/${id}`],
    ] as const) {
      const answer = await dr.api(method, path, undefined, b);
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.body).toEqual({ error: expect.any(String) });
    }
    expect((await dr.api('GET', `/v2/ep-1/status/${id}`, undefined, a)).body.status).toBe('COMPLETED');
    expect((await dr.api('GET', '/v2/ep-1/health', undefined, b)).body.jobs.completed).toBe(0);
    expect((await dr.api('GET', '/v2/ep-1/health', undefined, a)).body.jobs.completed).toBe(1);
  });

  it('Fusion Brain dialect: a key in X-Key owns its generations; another key gets 404', async () => {
    const keyA = (a.authorization as string).replace('Bearer ', '');
    const keyB = (b.authorization as string).replace('Bearer ', '');
    const started = await fetch(`${dr.url}/key/api/v1/pipeline/run`, {
      method: 'POST',
      body: fusionForm('fusion fox'),
      headers: { 'X-Key': `Key ${keyA}`, 'X-Secret': 'Secret unused' },
    });
    expect(started.status).toBe(201);
    const { uuid } = (await started.json()) as { uuid: string };
    const asB = await fetch(`${dr.url}/key/api/v1/pipeline/status/${uuid}`, { headers: { 'X-Key': `Key ${keyB}`, 'X-Secret': 'Secret unused' } });
    expect(asB.status).toBe(404);
    expect(await asB.json()).toMatchObject({ status: 404, error: 'Not Found' });
    const asA = await fetch(`${dr.url}/key/api/v1/pipeline/status/${uuid}`, { headers: { 'X-Key': `Key ${keyA}` } });
    expect(asA.status).toBe(200);
  });

  it('the stream of every job carries only the caller’s own jobs', async () => {
    let foreign = '';
    let own = '';
    const read = readSse(`${dr.url}/api/v1/events`, {
      headers: b,
      onOpen: () => {
        void (async () => {
          foreign = (await dr.api('POST', '/api/v1/jobs', { prompt: 'A again' }, a)).body.id;
          own = (await dr.api('POST', '/api/v1/jobs', { prompt: 'B’s own' }, b)).body.id;
        })();
      },
      stop: (frames) => frames.some((frame) => (frame.data as { jobId: string }).jobId === own && (frame.data as { status: string }).status === 'succeeded'),
    });
    const { status, frames } = await read;
    expect(status).toBe(200);
    const jobIds = frames.map((frame) => (frame.data as { jobId: string }).jobId);
    expect(jobIds).toContain(own);
    expect(foreign).not.toBe('');
    expect(jobIds).not.toContain(foreign);
  });
});

/** Tokens of the services darkroom imitates, in their own formats: none of them is darkroom's. */
const CIVITAI_TOKEN = 'f3a9c1e27b5d48e6a0c4b2d19e7f6a35';
const RUNPOD_KEY = 'rpa_Q1W2E3R4T5Y6U7I8O9P0ASDFGHJKLZXCVBNM12345678';
const FUSION_BRAIN_KEY = '8C1D6F2A0B9E4D7C3A5F1E0B2D4C6A8E';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl';
/** darkroom's key format, but no key of this darkroom's. */
const UNKNOWN_KEY = `dk_${'x'.repeat(43)}`;

/** A request to one route of each dialect, and how its 401 looks in that dialect's own error shape. */
const REFUSALS: Record<string, { method: string; path: string; shape: (status: number, title: string) => unknown }> = {
  native: {
    method: 'GET',
    path: '/api/v1/jobs',
    shape: (status, title) => ({ type: `/problems/${status === 401 ? 'unauthorized' : 'forbidden'}`, title, status, code: status === 401 ? 'unauthorized' : 'forbidden' }),
  },
  civitai: {
    method: 'GET',
    path: '/v1/consumer/jobs/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    shape: (status, title) => ({ type: `https://tools.ietf.org/html/rfc9110#section-15.5.${status === 401 ? 2 : 4}`, title, status, traceId: expect.any(String) }),
  },
  fusionbrain: { method: 'GET', path: '/key/api/v1/pipelines', shape: (status, title) => ({ status, error: title, message: expect.any(String), path: '/key/api/v1/pipelines' }) },
  runpod: { method: 'GET', path: '/v2/ep/health', shape: () => ({ error: expect.any(String) }) },
  tasks: { method: 'GET', path: '/api/v1/runpod/queue/stats', shape: () => ({ detail: expect.any(String) }) },
  images: { method: 'GET', path: '/image/get-all', shape: (status, title) => ({ statusCode: status, message: expect.any(String), error: title }) },
  openai: {
    method: 'GET',
    path: '/v1/models',
    shape: (status) => ({ error: { message: expect.any(String), type: status === 401 ? 'authentication_error' : 'permission_error', param: null, code: expect.any(String) } }),
  },
  a1111: { method: 'GET', path: '/sdapi/v1/samplers', shape: () => ({ error: 'HTTPException', detail: expect.any(String), body: '', errors: expect.any(String) }) },
  comfyui: { method: 'GET', path: '/queue', shape: () => ({ error: { type: 'unauthorized', message: expect.any(String), details: '', extra_info: {} }, node_errors: [] }) },
};

async function finishedCivitaiJob(civitai: InstanceType<typeof sdk.Civitai>, token: string): Promise<{ jobId: string; scheduled: boolean; result: { available: boolean }[] }> {
  for (let tries = 0; tries < 400; tries += 1) {
    const job = (await civitai.jobs.getByToken(token)).jobs?.[0] as { jobId: string; scheduled: boolean; result: { available: boolean }[] } | undefined;
    if (job && !job.scheduled) return job;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the Civitai job did not finish');
}

describe('other services’ tokens (AUTH=optional, the default)', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, MOCK_LATENCY_MS: '50' });
    // Both SDKs log every request they make.
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await dr?.close({ removeData: true });
  });

  it('the civitai SDK works unchanged with a Civitai token: the caller is a guest, and the token is 401 on /api/v1', async () => {
    const civitai = new sdk.Civitai({ auth: CIVITAI_TOKEN });
    // The SDK's constructor pins the production URL into its exported OpenAPI config; that is the one knob.
    sdk.OpenAPI.BASE = dr.url;
    const created = await civitai.image.fromText({ model: 'urn:air:sdxl:checkpoint:civitai:101055@128078', params: { prompt: 'a guest with a Civitai token', width: 256, height: 256 } });
    const job = await finishedCivitaiJob(civitai, created.token);
    expect(job.result[0]?.available).toBe(true);
    expect((await civitai.jobs.getById(job.jobId)).jobId).toBe(job.jobId);
    // The job is the guest's: readable without any token, as the same client.
    expect((await dr.api('GET', `/api/v1/jobs/${job.jobId}`, undefined, NONE)).body).toMatchObject({ id: job.jobId, status: 'succeeded' });
    expectProblem(await dr.api('GET', `/api/v1/jobs/${job.jobId}`, undefined, bearer(CIVITAI_TOKEN)), 401, /not valid: darkroom's keys start with dk_/);
  });

  it('runpod-sdk works unchanged with a RunPod key: the caller is a guest, and the key is 401 on /api/v1', async () => {
    const endpoint = runpodSdk(RUNPOD_KEY, { baseUrl: `${dr.url}/v2` }).endpoint('ep-foreign');
    if (!endpoint) throw new Error('runpod-sdk made no endpoint');
    const done = await endpoint.runSync({ input: { prompt: 'a guest with a RunPod key', width: 256, height: 256 } });
    expect(done).toMatchObject({ status: 'COMPLETED' });
    expect(await endpoint.status(done.id)).toMatchObject({ id: done.id, status: 'COMPLETED' });
    expect((await endpoint.health()).jobs.completed).toBeGreaterThanOrEqual(1);
    expect((await dr.api('GET', `/api/v1/jobs/${done.id}`, undefined, NONE)).status).toBe(200);
    expectProblem(await dr.api('GET', `/api/v1/jobs/${done.id}`, undefined, bearer(RUNPOD_KEY)), 401, /not valid/);
    // RunPod also takes its key bare in Authorization; that is no darkroom credential either.
    expect((await dr.api('GET', '/v2/ep-foreign/health', undefined, { authorization: RUNPOD_KEY })).status).toBe(200);
    expectProblem(await dr.api('GET', '/api/v1/jobs', undefined, { authorization: RUNPOD_KEY }), 401, /Bearer/);
  });

  it('the Fusion Brain X-Key and the origin apps’ own tokens make guests too', async () => {
    const fusionHeaders = { 'X-Key': `Key ${FUSION_BRAIN_KEY}`, 'X-Secret': `Secret ${FUSION_BRAIN_KEY}` };
    const started = await fetch(`${dr.url}/key/api/v1/pipeline/run`, { method: 'POST', body: fusionForm('a guest with a Fusion Brain key'), headers: fusionHeaders });
    expect(started.status).toBe(201);
    const { uuid } = (await started.json()) as { uuid: string };
    expect((await fetch(`${dr.url}/key/api/v1/pipeline/status/${uuid}`, { headers: fusionHeaders })).status).toBe(200);
    expect((await dr.api('GET', '/api/v1/runpod/queue/stats', undefined, bearer(JWT))).status).toBe(200);
    const created = await dr.api('POST', '/image/create', { prompt: 'a guest with the origin app’s token' }, bearer(JWT));
    expect(created.status).toBe(201);
    expect((await dr.api('GET', `/api/v1/jobs/${created.body.id}`, undefined, NONE)).status).toBe(200);
    // A path no API serves is a 404 whoever asks.
    expect((await dr.api('GET', '/v2/ep-foreign/requests', undefined, bearer(RUNPOD_KEY))).status).toBe(404);
  });

  it('a darkroom key on a foreign dialect is that key, and ADMIN_API_KEY is the admin, whatever their format', async () => {
    const key = await createKey(dr, { name: 'runpod client with a darkroom key' });
    const created = await dr.api('POST', '/v2/ep/run', { input: { prompt: 'owned by a key' } }, bearer(key.key));
    expect(created.status).toBe(200);
    expect((await dr.api('GET', `/api/v1/jobs/${created.body.id}`, undefined, bearer(key.key))).status).toBe(200);
    expectProblem(await dr.api('GET', `/api/v1/jobs/${created.body.id}`, undefined, NONE), 404);
    const resource = await dr.api('POST', '/v2/resources', { air: 'urn:air:sdxl:lora:civitai:4242@1' }, bearer(ADMIN));
    expect(resource.status).toBe(201);
  });

  it('a token in darkroom’s format must be valid on every dialect: 401 in each dialect’s own shape', async () => {
    expect(Object.keys(REFUSALS).sort()).toEqual(DIALECTS.map((dialect) => dialect.name).sort());
    for (const [name, { method, path, shape }] of Object.entries(REFUSALS)) {
      const headers = name === 'fusionbrain' ? { 'X-Key': `Key ${UNKNOWN_KEY}` } : bearer(UNKNOWN_KEY);
      const answer = await dr.api(method, path, undefined, headers);
      expect(answer.status, name).toBe(401);
      expect(answer.body, name).toMatchObject(shape(401, 'Unauthorized') as object);
      expect(JSON.stringify(answer.body), name).toMatch(/not valid/);
    }
  });
});

describe('every dialect words the auth hook’s refusals in its own shape', () => {
  it('401 and 403 carry their reason, never a generic fallback', () => {
    for (const dialect of DIALECTS) {
      const request = { url: REFUSALS[dialect.name]?.path, id: 'req-1', method: 'GET', headers: {}, query: {}, params: {}, body: undefined } as unknown as FastifyRequest;
      for (const [status, code, reason] of [[401, 'unauthorized', 'Unauthorized'], [403, 'forbidden', 'Forbidden']] as const) {
        const answer = dialect.errors.format({ status, code, message: 'the reason, in words', fields: [], extra: {} }, request);
        const text = JSON.stringify(answer.body);
        expect(answer.status, dialect.name).toBe(status);
        expect(text, dialect.name).toContain('the reason, in words');
        expect(text, dialect.name).not.toMatch(/about:blank|"Error"/);
        const shape = REFUSALS[dialect.name]?.shape(status, reason);
        expect(answer.body, `${dialect.name} ${status}`).toMatchObject(shape as object);
      }
    }
  });

  it('a write to the Civitai catalogue without the admin scope is a 403 in the Civitai shape', async () => {
    const dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, WORKER_CONCURRENCY: '0' });
    try {
      const refused = await dr.api('POST', '/v2/resources', { air: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }, NONE);
      expect(refused.status).toBe(403);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.body).toEqual({
        type: 'https://tools.ietf.org/html/rfc9110#section-15.5.4',
        title: 'Forbidden',
        status: 403,
        detail: 'This needs an API key with the admin scope',
        instance: '/v2/resources',
        traceId: refused.headers.get('x-request-id'),
      });
    } finally {
      await dr.close({ removeData: true });
    }
  });
});

describe('AUTH=required and AUTH=off', () => {
  let required: TestDarkroom;
  let off: TestDarkroom;
  beforeAll(async () => {
    [required, off] = await Promise.all([
      startDarkroom({ AUTH: 'required', ADMIN_API_KEY: ADMIN, MOCK_LATENCY_MS: '0' }),
      startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '0' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([required?.close({ removeData: true }), off?.close({ removeData: true })]);
  });

  it('required: a missing key is a 401 in every dialect’s own shape; health, docs and signed links stay open', async () => {
    expectProblem(await required.api('GET', '/api/v1/jobs'), 401, /requires an API key/);
    expectProblem(await required.api('POST', '/api/v1/jobs', { prompt: 'x' }), 401);
    expectProblem(await required.api('GET', '/api/v1/queue/stats'), 401);
    const civitai = await required.api('GET', '/v1/consumer/jobs/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b');
    expect(civitai.status).toBe(401);
    expect(civitai.body).toMatchObject({ status: 401, title: expect.any(String), traceId: expect.any(String) });
    const runpod = await required.api('POST', '/v2/ep/run', { input: { prompt: 'x' } });
    expect([runpod.status, runpod.body]).toEqual([401, { error: expect.stringMatching(/API key/) }]);
    const fusion = await fetch(`${required.url}/key/api/v1/pipelines`);
    expect(fusion.status).toBe(401);
    expect(await fusion.json()).toMatchObject({ status: 401, error: 'Unauthorized', message: expect.stringMatching(/X-Key/) });

    expect((await required.api('GET', '/health')).status).toBe(200);
    expect((await required.api('GET', '/ready')).status).toBe(200);
    expect((await required.api('GET', '/openapi.json')).status).toBe(200);

    const key = await createKey(required);
    const created = await required.api('POST', '/api/v1/jobs', { prompt: 'with a key', width: 128, height: 128 }, bearer(key.key));
    expect(created.status).toBe(202);
    const job = await required.api('GET', `/api/v1/jobs/${created.body.id}?wait=20`, undefined, bearer(key.key));
    expect(job.body.status).toBe('succeeded');
    // The signed link is its own credential: no header needed.
    const image = await fetch(job.body.images[0].url);
    expect(image.status).toBe(200);
  });

  it('required: only darkroom’s keys pass, on every dialect; another service’s token is a 401 that says so', async () => {
    const civitai = await required.api('GET', '/v1/consumer/jobs/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', undefined, bearer(CIVITAI_TOKEN));
    expect(civitai.status).toBe(401);
    expect(civitai.body).toMatchObject({ title: 'Unauthorized', detail: expect.stringMatching(/only its own API keys \(dk_…\)/) });
    const runpod = await required.api('GET', '/v2/ep/health', undefined, bearer(RUNPOD_KEY));
    expect([runpod.status, runpod.body]).toEqual([401, { error: expect.stringMatching(/only its own API keys/) }]);
    expectProblem(await required.api('GET', '/api/v1/jobs', undefined, bearer(RUNPOD_KEY)), 401, /not valid/);
    const key = await createKey(required);
    expect((await required.api('GET', '/v2/ep/health', undefined, bearer(key.key))).status).toBe(200);
  });

  it('off: credentials are not looked at and everything is one shared space', async () => {
    const first = await off.api('POST', '/api/v1/jobs', { prompt: 'shared' }, bearer('anything at all'));
    expect(first.status).toBe(202);
    expect((await off.api('GET', `/api/v1/jobs/${first.body.id}`, undefined, { authorization: 'Basic whatever' })).status).toBe(200);
    expect((await off.api('GET', `/api/v1/jobs/${first.body.id}`)).status).toBe(200);
    expect((await off.api('GET', '/api/v1/queue/stats')).body.workers).toHaveLength(1);
  });
});

describe('caps', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, WORKER_CONCURRENCY: '0', MAX_ACTIVE_JOBS_PER_KEY: '3', MAX_BATCH_SIZE: '5' });
  });
  afterAll(() => dr?.close({ removeData: true }));

  const count = async (headers: Record<string, string>) => (await dr.api('GET', '/api/v1/jobs?limit=100', undefined, headers)).body.items.length as number;

  it('refuses a job over the active cap with 429 and a clear message; a batch over it creates nothing', async () => {
    const key = bearer((await createKey(dr)).key);
    const batch = await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['one', 'two'] }, key);
    expect(batch.status).toBe(202);
    const tooMany = await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['three', 'four'] }, key);
    expectProblem(tooMany, 429, /2 queued or running jobs and may have at most 3/);
    expect(await count(key)).toBe(2);
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'three' }, key)).status).toBe(202);
    expectProblem(await dr.api('POST', '/api/v1/jobs', { prompt: 'four' }, key), 429, /at most 3/);
    const runpod = await dr.api('POST', '/v2/ep/run', { input: { prompt: 'four, by RunPod' } }, key);
    expect(runpod.status).toBe(429);
    expect(await count(key)).toBe(3);

    // Another key has its own allowance; a finished job frees a slot.
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'other key' }, bearer((await createKey(dr)).key))).status).toBe(202);
    await dr.api('POST', `/api/v1/jobs/${batch.body.jobs[0].id}/cancel`, undefined, key);
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'four, at last' }, key)).status).toBe(202);
  });

  it('holds under concurrent requests: 12 at once against a cap of 3 create exactly 3', async () => {
    const key = bearer((await createKey(dr)).key);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, index) => dr.api('POST', '/api/v1/jobs', { prompt: `race ${index}` }, key)));
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(3);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(9);
    expect(await count(key)).toBe(3);
  });

  it('a key’s own caps narrow the defaults; a batch over the batch cap is a 400 and creates nothing', async () => {
    const key = bearer((await createKey(dr, { name: 'small', maxBatchSize: 2, maxActiveJobs: 1 })).key);
    const big = await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['a', 'b', 'c'] }, key);
    expectProblem(big, 400, /1 to 2 jobs for this caller/);
    const guest = await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['a', 'b', 'c', 'd', 'e', 'f'] }, NONE);
    expectProblem(guest, 400, /1 to 5 jobs/);
    expect(await count(key)).toBe(0);
    expect((await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['a', 'b'] }, key)).status).toBe(429);
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'one' }, key)).status).toBe(202);
    expect(await count(key)).toBe(1);
  });
});

describe('rate limits', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    // TRUST_PROXY lets the test be several guests (X-Forwarded-For) from one machine.
    dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, WORKER_CONCURRENCY: '0', RATE_LIMIT_GENERATE: '3/minute', RATE_LIMIT_READ: '5/second', TRUST_PROXY: 'true' });
  });
  afterAll(() => dr?.close({ removeData: true }));

  const guest = (ip: string) => ({ ...NONE, 'x-forwarded-for': ip });

  it('limits job creation per guest IP across every dialect, with Retry-After and RateLimit headers', async () => {
    const ip = guest('203.0.113.7');
    const answers: ApiResponse[] = [];
    answers.push(await dr.api('POST', '/api/v1/jobs', { prompt: 'one' }, ip));
    answers.push(await dr.api('POST', '/v2/ep/run', { input: { prompt: 'two' } }, ip));
    answers.push(await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['three'] }, ip));
    expect(answers.map((answer) => answer.status)).toEqual([202, 200, 202]);
    expect(answers[0]?.headers.get('ratelimit-limit')).toBe('3');
    expect(answers[2]?.headers.get('ratelimit-remaining')).toBe('0');

    const limited = await dr.api('POST', '/api/v1/jobs', { prompt: 'four' }, ip);
    expectProblem(limited, 429, /this IP address may make 3\/minute job-creating requests/);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(50);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const runpod = await dr.api('POST', '/v2/ep/run', { input: { prompt: 'five' } }, ip);
    expect([runpod.status, typeof runpod.body.error]).toEqual([429, 'string']);
    expect(runpod.headers.get('retry-after')).toEqual(expect.any(String));

    // Reads have their own budget; another IP and a key have their own generate budgets.
    expect((await dr.api('GET', '/api/v1/jobs', undefined, ip)).status).toBe(200);
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'another guest' }, guest('203.0.113.8'))).status).toBe(202);
    const key = bearer((await createKey(dr)).key);
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'a key' }, { ...key, 'x-forwarded-for': '203.0.113.7' })).status).toBe(202);
    const jobs = (await dr.api('GET', '/api/v1/jobs', undefined, ip)).body.items;
    expect(jobs).toHaveLength(3);
  });

  it('limits reads per second, and never limits health or signed links', async () => {
    const ip = guest('198.51.100.20');
    const statuses = [];
    for (let index = 0; index < 7; index += 1) statuses.push((await dr.api('GET', '/api/v1/providers', undefined, ip)).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    for (let index = 0; index < 10; index += 1) expect((await dr.api('GET', '/health', undefined, ip)).status).toBe(200);
  });
});

describe.skipIf(!process.env.TEST_REDIS_URL)('rate limits shared through Redis', () => {
  let first: TestDarkroom;
  let second: TestDarkroom;
  beforeAll(async () => {
    const env = { WORKER_CONCURRENCY: '0', RATE_LIMIT_GENERATE: '3/hour', TRUST_PROXY: 'true', REDIS_URL: process.env.TEST_REDIS_URL as string };
    [first, second] = await Promise.all([startDarkroom(env), startDarkroom(env)]);
  });
  afterAll(async () => {
    await Promise.all([first?.close({ removeData: true }), second?.close({ removeData: true })]);
  });

  it('counts one guest’s requests across two api processes', async () => {
    // A fresh address per run: counters live in Redis for the hour.
    const ip = { 'x-forwarded-for': `10.${randomBytes(3).join('.')}` };
    const statuses = [];
    for (const darkroom of [first, second, first, second]) statuses.push((await darkroom.api('POST', '/api/v1/jobs', { prompt: 'shared budget' }, ip)).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
  });
});

describe('logs', () => {
  it('carry the request id, the key id and the dialect’s component on every request, and never the key', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, MOCK_LATENCY_MS: '0' }, { logger: pino({ level: 'info' }, sink) });
    try {
      const key = await createKey(dr);
      const created = await dr.api('POST', '/v2/ep/runsync', { input: { prompt: 'logged' } }, { ...bearer(key.key), 'x-request-id': 'trace-me-1' });
      expect(created.status).toBe(200);
      await dr.api('GET', '/api/v1/jobs', undefined, bearer(key.key));
      await dr.api('GET', '/v1/consumer/jobs/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', undefined, bearer(key.key));

      const requests = lines.filter((line) => line.msg === 'request');
      expect(requests).toContainEqual(expect.objectContaining({ reqId: 'trace-me-1', keyId: key.id, component: 'runpod-serverless-api', url: '/v2/ep/runsync', status: 200 }));
      expect(requests).toContainEqual(expect.objectContaining({ keyId: key.id, component: 'api', url: '/api/v1/jobs' }));
      expect(requests).toContainEqual(expect.objectContaining({ keyId: key.id, component: 'civitai-api', status: 404 }));
      expect(requests).toContainEqual(expect.objectContaining({ keyId: 'admin', component: 'keys-api', url: '/api/v1/keys', status: 201 }));
      expect(lines).toContainEqual(expect.objectContaining({ component: 'jobs', jobId: created.body.id, owner: `key:${key.id}`, status: 'succeeded' }));
      const everything = lines.map((line) => JSON.stringify(line)).join('\n');
      expect(everything).not.toContain(key.key);
      expect(everything).not.toContain(ADMIN);
    } finally {
      await dr.close({ removeData: true });
    }
  });
});

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `darkroom …` with `env` over a clean client environment; resolves with how it ended, whatever the exit code. */
function cli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const clean = { DARKROOM_URL: '', DARKROOM_API_KEY: '', ADMIN_API_KEY: '', PUBLIC_URL: '', HOST: '', LOG_LEVEL: 'silent' };
  return run('node', [BIN, ...args], { env: { ...process.env, ...clean, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: CliRun) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

/** A TCP port nothing listens on at the time of asking. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('darkroom keys (the CLI)', () => {
  it('manages keys in the embedded database when no server runs; with one that cannot be reached, says so and changes nothing', async () => {
    const dataDir = makeDataDir();
    const env = { DATA_DIR: dataDir, PORT: String(await freePort()) };
    const created = await cli(['keys', 'create', '--name', 'cli key', '--json'], env);
    expect(created.stderr).toBe('');
    const key = JSON.parse(created.stdout) as { id: string; key: string; name: string };
    expect(key).toMatchObject({ name: 'cli key', scopes: [] });

    // A server on the same DATA_DIR, at another address than the CLI's configuration says.
    const server = await startDarkroom({ AUTH: 'required', MOCK_LATENCY_MS: '0' }, { dataDir });
    try {
      expect((await server.api('GET', '/api/v1/jobs', undefined, bearer(key.key))).status).toBe(200);
      const refused = await cli(['keys', 'revoke', key.id], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`in use by a running darkroom, and no darkroom answers at http://127\\.0\\.0\\.1:${env.PORT} \\(connect ECONNREFUSED`));
      expect(refused.stderr).toMatch(/Point --server or DARKROOM_URL at that darkroom/);
      expect(refused.stderr).not.toMatch(/\n\s+at /);
      // Nothing was changed: the key still works.
      expect((await server.api('GET', '/api/v1/jobs', undefined, bearer(key.key))).status).toBe(200);
    } finally {
      await server.close();
    }

    const revoked = await cli(['keys', 'revoke', key.id], env);
    expect(revoked.stdout).toMatch(/revoked key/);
    const listed = JSON.parse((await cli(['keys', 'list', '--json'], env)).stdout) as { items: { id: string; revokedAt: string | null }[] };
    expect(listed.items).toEqual([expect.objectContaining({ id: key.id, revokedAt: expect.any(String) })]);
    expect(JSON.stringify(listed)).not.toContain(key.key);

    const bad = await cli(['keys', 'create'], env);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/--name/)]);
  }, 60_000);

  it('while `darkroom serve` holds the database, works through its API with an admin credential; the keys it makes work at once', async () => {
    const dataDir = makeDataDir();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // What the server and the CLI share, as one .env would give both.
    const env = { DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', ADMIN_API_KEY: ADMIN };
    const server = await spawnDarkroom('serve', { ...env, MOCK_LATENCY_MS: '0', DARKROOM_URL: '', DARKROOM_API_KEY: '' });
    try {
      const created = await cli(['keys', 'create', '--name', 'operator', '--admin', '--json'], env);
      expect(created.code, created.stderr).toBe(0);
      expect(created.stderr).toBe(`The embedded database is in use by a running darkroom: managing keys through the API of darkroom at ${url}\n`);
      const admin = JSON.parse(created.stdout) as { id: string; key: string; scopes: string[] };
      expect(admin).toMatchObject({ scopes: ['admin'], key: expect.stringMatching(/^dk_/) });
      const plainRun = await cli(['keys', 'create', '--name', 'app', '--max-active-jobs', '3'], env);
      const plain = { id: /created key (\S+) \(app\)/.exec(plainRun.stdout)?.[1] ?? '', key: /^(dk_\S+)$/m.exec(plainRun.stdout)?.[1] ?? '' };
      expect(plain.key).toMatch(/^dk_/);

      // The new keys work at once: the admin key manages keys and writes the Civitai catalogue.
      const keys = await fetch(`${url}/api/v1/keys`, { headers: bearer(admin.key) });
      expect(((await keys.json()) as { items: { id: string }[] }).items.map((item) => item.id)).toEqual([admin.id, plain.id]);
      const resource = await fetch(`${url}/v2/resources`, {
        method: 'POST',
        headers: { ...bearer(admin.key), 'content-type': 'application/json' },
        body: JSON.stringify({ air: 'urn:air:sdxl:checkpoint:civitai:101055@128078' }),
      });
      expect(resource.status).toBe(201);
      expect((await fetch(`${url}/api/v1/jobs`, { headers: bearer(plain.key) })).status).toBe(200);

      // DARKROOM_API_KEY serves when it is an admin key; a plain key or none is refused, in words.
      const asAdminKey = await cli(['keys', 'list', '--json'], { ...env, ADMIN_API_KEY: '', DARKROOM_API_KEY: admin.key });
      expect(JSON.parse(asAdminKey.stdout).items).toHaveLength(2);
      const asPlainKey = await cli(['keys', 'list'], { ...env, ADMIN_API_KEY: '', DARKROOM_API_KEY: plain.key });
      expect([asPlainKey.code, asPlainKey.stdout]).toEqual([1, '']);
      expect(asPlainKey.stderr).toMatch(new RegExp(`darkroom at ${url} refused DARKROOM_API_KEY, which is not an admin credential there`));
      const withNone = await cli(['keys', 'list'], { ...env, ADMIN_API_KEY: '' });
      expect(withNone.code).toBe(1);
      expect(withNone.stderr).toMatch(/needs an admin credential to manage keys: set ADMIN_API_KEY \(as the server has it\), or DARKROOM_API_KEY/);
      const wrong = await cli(['keys', 'list'], { ...env, ADMIN_API_KEY: 'not-the-servers-admin-key' });
      expect(wrong.stderr).toMatch(new RegExp(`darkroom at ${url} did not accept ADMIN_API_KEY: `));

      // --server reaches a darkroom from anywhere, whatever the local database.
      const remote = await cli(['keys', 'revoke', plain.id, '--server', url], { ADMIN_API_KEY: ADMIN, DATA_DIR: makeDataDir() });
      expect(remote.stdout).toBe(`revoked key ${plain.id} (app)\n`);
      expect((await fetch(`${url}/api/v1/jobs`, { headers: bearer(plain.key) })).status).toBe(401);
      const unknown = await cli(['keys', 'revoke', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'], env);
      expect([unknown.code, unknown.stderr.split('\n').at(-2)]).toEqual([1, 'there is no key 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b']);

      const everything = [created, plainRun, asAdminKey, asPlainKey, withNone, wrong, remote, unknown].map((each) => each.stdout + each.stderr).join('\n') + server.output();
      expect(everything).not.toContain(ADMIN);
      expect(everything.replace(created.stdout, '').replace(plainRun.stdout, '')).not.toMatch(/dk_[\w-]{43}/);
    } finally {
      expect(await server.stop()).toBe(0);
    }

    // Stopped, the database is the CLI's again: both keys are there, the plain one revoked.
    const listed = JSON.parse((await cli(['keys', 'list', '--json'], env)).stdout) as { items: { name: string; revokedAt: string | null }[] };
    expect(listed.items.map((item) => [item.name, item.revokedAt !== null])).toEqual([
      ['operator', false],
      ['app', true],
    ]);
  }, 120_000);
});
