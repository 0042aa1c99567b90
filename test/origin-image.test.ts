import { Writable } from 'node:stream';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type ApiResponse, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * The Fusion-service origin's own API (`/image`, NestJS): create an image, ask /image/get until it
 * answers a link instead of 202, list one's images page by page.
 *
 * - `dr`: AUTH=optional with two keys, a mock that takes 400 ms: the whole flow, isolation.
 * - `idle`: AUTH=required and no worker, so images stay `created` until a test moves them:
 *   202s, null thumbnails, failures, paging, bad input, 401s.
 */

const ADMIN_KEY = 'origin-image-admin-key-0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dr: TestDarkroom;
let idle: TestDarkroom;
let keyA: { id: string; key: string };
let keyB: { id: string; key: string };
const as = (key: { key: string }) => ({ authorization: `Bearer ${key.key}` });
const logLines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

beforeAll(async () => {
  // One at a time: booting several at once on a busy machine can outlast Fastify's plugin timeout.
  dr = await startDarkroom({ AUTH: 'optional', ADMIN_API_KEY: ADMIN_KEY, MOCK_LATENCY_MS: '400' }, { logger: pino({ level: 'info' }, sink) });
  idle = await startDarkroom({ AUTH: 'required', ADMIN_API_KEY: ADMIN_KEY, WORKER_CONCURRENCY: '0' }, { apiKey: ADMIN_KEY });
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  keyA = (await dr.api('POST', '/api/v1/keys', { name: 'A' }, admin)).body;
  keyB = (await dr.api('POST', '/api/v1/keys', { name: 'B' }, admin)).body;
}, 120_000);
afterAll(async () => {
  await Promise.all([dr?.close({ removeData: true }), idle?.close({ removeData: true })]);
}, 60_000);

/** NestJS's error shape with `statusCode`; `message` a sentence, or ValidationPipe's list. */
function expectError(response: ApiResponse, statusCode: number, message: RegExp): void {
  expect(response.status, JSON.stringify(response.body)).toBe(statusCode);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.body).toMatchObject({ statusCode, error: expect.any(String) });
  const messages: string[] = Array.isArray(response.body.message) ? response.body.message : [response.body.message];
  expect(messages.some((text) => message.test(text)), JSON.stringify(messages)).toBe(true);
}

async function download(url: string): Promise<{ contentType: string | null; width?: number; height?: number; format?: string }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  const { width, height, format } = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
  return { contentType: response.headers.get('content-type'), width, height, format };
}

async function imageCount(darkroom: TestDarkroom): Promise<number> {
  const { body } = await darkroom.api('GET', '/api/v1/queue/stats', undefined, { authorization: `Bearer ${ADMIN_KEY}` });
  return Object.values(body.jobs as Record<string, number>).reduce((sum, count) => sum + count, 0);
}

describe('create → get', () => {
  it('answers 201 {id}, then 202 while generating, then 200 with links: a 128×128 WebP thumbnail and the original at its size', async () => {
    const created = await dr.api('POST', '/image/create', { prompt: 'a lighthouse at dusk', style: 'ANIME', width: 768, height: 512 }, as(keyA));
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.stringMatching(UUID) });
    const { id } = created.body as { id: string };

    const first = await dr.api('GET', `/image/get?id=${id}&type=thumbnail`, undefined, as(keyA));
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ id, status: expect.stringMatching(/^(created|pending)$/), message: expect.any(String) });
    expect(first.headers.get('retry-after')).toBe('1');

    let answer = first;
    const statuses = new Set<string>();
    for (let i = 0; answer.status === 202 && i < 200; i += 1) {
      statuses.add(answer.body.status);
      await sleep(50);
      answer = await dr.api('GET', `/image/get?id=${id}&type=thumbnail`, undefined, as(keyA));
    }
    expect(statuses.has('pending')).toBe(true);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ id, type: 'thumbnail', url: expect.stringMatching(/^http:\/\//), expiresAt: expect.any(String), expiresIn: expect.any(Number) });
    // The service's TTL: an hour (SIGNED_URL_TTL's default), minted per 60-second step.
    expect(answer.body.expiresIn).toBeGreaterThan(3530);
    expect(answer.body.expiresIn).toBeLessThanOrEqual(3600);
    expect(Date.parse(answer.body.expiresAt) - Date.now()).toBeGreaterThan(3_530_000);
    expect(Date.parse(answer.body.expiresAt) - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect(await download(answer.body.url)).toEqual({ contentType: 'image/webp', width: 128, height: 128, format: 'webp' });

    const original = await dr.api('GET', `/image/get?id=${id}&type=original`, undefined, as(keyA));
    expect(original.body.type).toBe('original');
    expect(await download(original.body.url)).toMatchObject({ width: 768, height: 512, format: 'png' });
    // type defaults to original.
    expect((await dr.api('GET', `/image/get?id=${id}`, undefined, as(keyA))).body.type).toBe('original');

    // The style went into the job (and would pick Fusion Brain were it configured).
    const job = await dr.darkroom.repo.get(id);
    expect(job).toMatchObject({ dialect: 'images', provider: 'mock', request: { prompt: 'a lighthouse at dusk', style: 'ANIME', width: 768, height: 512 } });
  });

  it('the default size is Fusion Brain’s 1024×1024', async () => {
    const { body } = await dr.api('POST', '/image/create', { prompt: 'a red fox' }, as(keyA));
    expect((await dr.darkroom.repo.get(body.id))?.request).toMatchObject({ width: 1024, height: 1024 });
  });

  it('isolation: another key (or a guest) gets 404 for an image and sees only its own in get-all', async () => {
    const { body } = await dr.api('POST', '/image/create', { prompt: 'only for A' }, as(keyA));
    for (const headers of [as(keyB), {}]) {
      expectError(await dr.api('GET', `/image/get?id=${body.id}`, undefined, headers), 404, new RegExp(`Image ${body.id} not found`));
    }
    const guest = await dr.api('POST', '/image/create', { prompt: 'a guest’s' }, {});
    expect(guest.status).toBe(201);

    const mine = (await dr.api('GET', '/image/get-all?pageSize=100', undefined, as(keyA))).body as { id: string }[];
    expect(mine.map((image) => image.id)).toContain(body.id);
    expect(mine.map((image) => image.id)).not.toContain(guest.body.id);
    expect((await dr.api('GET', '/image/get-all', undefined, as(keyB))).body).toEqual([]);
    expect(((await dr.api('GET', '/image/get-all', undefined, {})).body as { id: string }[]).map((image) => image.id)).toEqual([guest.body.id]);
  });

  it('logs under component image-api with the image id and key id, never the key; an unknown route is a NestJS 404', async () => {
    const response = await dr.api('GET', '/image/nope', undefined, as(keyA));
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ statusCode: 404, message: 'Cannot GET /image/nope', error: 'Not Found' });

    const { body } = await dr.api('POST', '/image/create', { prompt: 'logged' }, as(keyA));
    expect(logLines.find((line) => line.msg === 'image created' && line.imageId === body.id)).toMatchObject({ component: 'image-api', keyId: keyA.id });
    expect(logLines.find((line) => line.msg === 'request' && line.url === '/image/create')).toMatchObject({ component: 'image-api', status: 201 });
    expect(logLines.find((line) => line.msg === 'request' && line.url === '/image/nope')).toMatchObject({ component: 'image-api', status: 404 });
    expect(JSON.stringify(logLines)).not.toContain(keyA.key);
  });
});

describe('no worker (AUTH=required)', () => {
  it('without a key every route is a 401 in NestJS’s shape', async () => {
    for (const [method, path] of [['POST', '/image/create'], ['GET', '/image/get?id=x'], ['GET', '/image/get-all']]) {
      const response = await fetch(`${idle.url}${path}`, { method });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ statusCode: 401, message: expect.stringMatching(/requires an API key/), error: 'Unauthorized' });
    }
  });

  it('get-all pages newest first, thumbnailUrl null until done; a failed image is a 422 with the reason', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push((await idle.api('POST', '/image/create', { prompt: `image ${i}`, width: 64, height: 64 })).body.id);
    const newest = [...ids].reverse();

    const page = async (query: string) => (await idle.api('GET', `/image/get-all${query}`)).body as { id: string; status: string; thumbnailUrl: string | null }[];
    const all = await page('');
    expect(all.map((image) => image.id)).toEqual(newest);
    expect(all.every((image) => image.thumbnailUrl === null && image.status === 'created')).toBe(true);
    expect((await page('?page=2&pageSize=2')).map((image) => image.id)).toEqual(newest.slice(2, 4));
    expect((await page('?page=3&pageSize=2')).map((image) => image.id)).toEqual(newest.slice(4));
    expect(await page('?page=4&pageSize=2')).toEqual([]);

    const [failed, running] = ids as [string, string];
    await idle.darkroom.repo.transition(failed, ['queued'], 'failed', { error: { code: 'rejected', message: 'prompt refused by content policy', retryable: false }, completedAt: new Date() });
    await idle.darkroom.repo.transition(running, ['queued'], 'running', { startedAt: new Date() });
    const answer = await idle.api('GET', `/image/get?id=${failed}&type=thumbnail`);
    expect(answer.status).toBe(422);
    expect(answer.body).toEqual({ statusCode: 422, message: `Image ${failed} could not be generated: prompt refused by content policy`, error: 'Unprocessable Entity', status: 'error' });
    expect(await idle.api('GET', `/image/get?id=${running}`)).toMatchObject({ status: 202, body: { id: running, status: 'pending' } });
    const listed = await page('');
    expect(listed.find((image) => image.id === failed)).toEqual({ id: failed, status: 'error', thumbnailUrl: null });
    expect(listed.find((image) => image.id === running)).toEqual({ id: running, status: 'pending', thumbnailUrl: null });
  });

  it('an unknown id, and a job of another dialect, are 404', async () => {
    const native = await idle.api('POST', '/api/v1/jobs', { prompt: 'native', width: 64, height: 64 });
    for (const id of ['0190a0a0-0000-7000-8000-000000000000', native.body.id]) {
      expectError(await idle.api('GET', `/image/get?id=${id}`), 404, /not found/);
    }
  });

  it.each([
    ['malformed JSON', '{"prompt": ', /JSON/],
    ['no body', undefined, /the request body must be a JSON object|prompt should not be empty/],
    ['no prompt', { style: 'ANIME' }, /^prompt should not be empty$/],
    ['an empty prompt', { prompt: '' }, /^prompt should not be empty$/],
    ['a blank prompt', { prompt: '  ' }, /^prompt should not be empty$/],
    ['a prompt that is a number', { prompt: 7 }, /^prompt must be a string$/],
    ['a prompt of 1001 characters', { prompt: 'x'.repeat(1001) }, /^prompt must be shorter than or equal to 1000 characters$/],
    ['a style that is not a string', { prompt: 'fox', style: 3 }, /^style must be a string$/],
    ['width not a multiple of 8', { prompt: 'fox', width: 100 }, /^width must be divisible by 8$/],
    ['width too large', { prompt: 'fox', width: 4096 }, /^width must not be greater than 2048$/],
  ])('create with %s → 400, nothing created', async (_name, body, message) => {
    const before = await imageCount(idle);
    expectError(await idle.api('POST', '/image/create', body), 400, message);
    expect(await imageCount(idle)).toBe(before);
  });

  it.each([
    ['/image/get', /^id should not be empty$/],
    ['/image/get?id=123', /^id must be a UUID$/],
    ['/image/get?id=urn:uuid:0190a0a0-0000-7000-8000-000000000000', /^id must be a UUID$/],
    ['/image/get?id=0190a0a0-0000-7000-8000-000000000000&type=preview', /^type must be one of the following values: original, thumbnail$/],
    ['/image/get-all?pageSize=101', /^pageSize must not be greater than 100$/],
    ['/image/get-all?pageSize=0', /^pageSize must not be less than 1$/],
    ['/image/get-all?page=0', /^page must not be less than 1$/],
    ['/image/get-all?page=two', /^page must be an integer number$/],
  ])('%s → 400', async (path, message) => {
    expectError(await idle.api('GET', path), 400, message);
  });

  it('a body that is not JSON is a 415', async () => {
    expectError(await idle.api('POST', '/image/create', 'prompt=fox', { 'content-type': 'text/plain', authorization: `Bearer ${ADMIN_KEY}` }), 415, /text\/plain/);
  });

  it('Idempotency-Key: a repeated create answers the same id', async () => {
    const headers = { 'idempotency-key': 'create-1', authorization: `Bearer ${ADMIN_KEY}` };
    const first = await idle.api('POST', '/image/create', { prompt: 'once' }, headers);
    const again = await idle.api('POST', '/image/create', { prompt: 'once' }, headers);
    expect(again).toMatchObject({ status: 201, body: first.body });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });
});
