import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type ApiResponse, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * Bad input, route by route, over real HTTP. Two darkrooms:
 * - `dr` runs the instant mock. Its only jobs are the ones made in beforeAll; every request the tests
 *   send it is refused, so its job count and those jobs must never change (checked at the end).
 * - `idle` has no worker (WORKER_CONCURRENCY 0): its jobs stay queued, which gives unfinished jobs to
 *   cancel and to ask images of, and a place where requests at the limits may be accepted.
 */

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
};

const UNKNOWN_ID = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const MALFORMED_IDS = ['abc', '12345', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5', '0190a1b2c3d47e5f8a9b0c1d2e3f4a5b', 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'];

/** Asserts an RFC 9457 problem: media type, every member, and the given status and code. */
function expectProblem(response: ApiResponse, status: number, code: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
  expect(response.body).toMatchObject({ type: `/problems/${code}`, title: TITLES[status], status, code });
  expect(typeof response.body.detail).toBe('string');
  expect(response.body.detail.length).toBeGreaterThan(5);
}

/** The distinct bad fields a validation problem names, sorted. */
function fieldsOf(response: ApiResponse): string[] {
  const errors = response.body.errors as { in: string; field: string; message: string }[] | undefined;
  expect(Array.isArray(errors), `no errors list in ${JSON.stringify(response.body)}`).toBe(true);
  for (const error of errors ?? []) {
    expect(typeof error.message).toBe('string');
    expect(error.message.length).toBeGreaterThan(0);
  }
  return [...new Set((errors ?? []).map((error) => error.field))].sort();
}

/** Where (body, params, querystring) each listed error is. */
function placesOf(response: ApiResponse): string[] {
  return [...new Set((response.body.errors as { in: string }[]).map((error) => error.in))].sort();
}

/** Every job id, through GET /api/v1/jobs page by page. */
async function allJobIds(darkroom: TestDarkroom): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const page = await darkroom.api('GET', `/api/v1/jobs?limit=100${query}`);
    expect(page.status).toBe(200);
    ids.push(...(page.body.items as { id: string }[]).map((item) => item.id));
    cursor = page.body.nextCursor as string | null;
  } while (cursor !== null);
  return ids.sort();
}

/** A job's body with the parts that change on every read (link expiry and signature) taken out. */
function stable(job: Record<string, unknown>): unknown {
  return JSON.parse(
    JSON.stringify(job)
      .replace(/expires=\d+&signature=[\w-]+/g, 'expires=E&signature=S')
      .replace(/"expiresAt":"[^"]+"/g, '"expiresAt":"E"'),
  );
}

const valid = { prompt: 'a red kite over the dunes' };

let dr: TestDarkroom;
let idle: TestDarkroom;
/** A finished job on `dr` with two images; nothing the tests send may change it. */
let sentinel: Record<string, unknown>;
let sentinelId: string;
let sentinelEvents: unknown;
let initialJobIds: string[];

beforeAll(async () => {
  [dr, idle] = await Promise.all([startDarkroom(), startDarkroom({ WORKER_CONCURRENCY: '0' })]);
  const created = await dr.api('POST', '/api/v1/jobs', { prompt: 'the sentinel', width: 256, height: 192, numImages: 2, seed: 7, metadata: { tag: 'sentinel' } });
  expect(created.status).toBe(202);
  sentinelId = created.body.id;
  sentinel = await dr.waitForJob(sentinelId);
  expect(sentinel.status).toBe('succeeded');
  sentinelEvents = (await dr.api('GET', `/api/v1/jobs/${sentinelId}/events`)).body;
  initialJobIds = await allJobIds(dr);
  expect(initialJobIds).toEqual([sentinelId]);
});

afterAll(async () => {
  await Promise.all([dr?.close({ removeData: true }), idle?.close({ removeData: true })]);
});

/** Sends a request that must be refused, and checks it created no job. */
async function refused(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse> {
  const response = await dr.api(method, path, body, headers);
  expect(response.status).toBeGreaterThanOrEqual(400);
  return response;
}

describe('POST /api/v1/jobs', () => {
  it.each([
    ['a truncated object', '{"prompt":'],
    ['single quotes', "{'prompt':'a'}"],
    ['bare text', 'not json at all'],
    ['a trailing comma', '{"prompt":"a",}'],
  ])('refuses malformed JSON (%s) with 400 malformed_json', async (_name, text) => {
    const response = await refused('POST', '/api/v1/jobs', text);
    expectProblem(response, 400, 'malformed_json');
    expect(response.body.detail).toMatch(/not valid JSON/);
  });

  it('lists every field of the wrong type in one answer', async () => {
    const response = await refused('POST', '/api/v1/jobs', { prompt: 5, width: '512', numImages: 1.5 });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['numImages', 'prompt', 'width']);
    expect(placesOf(response)).toEqual(['body']);
    expect(response.body.detail).toContain('prompt must be string');
    expect(response.body.detail).toContain('width must be integer');
    expect(response.body.detail).toContain('numImages must be integer');
  });

  it.each([
    ['prompt', null],
    ['prompt', ['a']],
    ['negativePrompt', 5],
    ['width', '512'],
    ['height', true],
    ['steps', '20'],
    ['steps', 20.5],
    ['cfgScale', '7'],
    ['seed', '42'],
    ['seed', 1.25],
    ['numImages', 1.5],
    ['priority', '1'],
    ['provider', 1],
    ['deadline', 1893456000],
    ['deadline', 'tomorrow'],
    ['metadata', 'a string'],
    ['metadata', [1, 2]],
    ['additionalNetworks', ['urn:air:sd1:lora:civitai:1@1']],
    ['model', {}],
  ])('refuses %s = %j with 400 naming that field', async (field, value) => {
    const response = await refused('POST', '/api/v1/jobs', { ...valid, [field]: value });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual([field]);
  });

  it.each([
    ['width', 63],
    ['width', 2056],
    ['width', 100],
    ['width', 0],
    ['height', -512],
    ['height', 4096],
    ['steps', 0],
    ['steps', 151],
    ['cfgScale', 0.99],
    ['cfgScale', 30.5],
    ['seed', -2],
    ['seed', 4294967296],
    ['seed', 1e20],
    ['numImages', 0],
    ['numImages', 11],
    ['priority', -101],
    ['priority', 101],
  ])('refuses out-of-range %s = %d with 400 naming that field', async (field, value) => {
    const response = await refused('POST', '/api/v1/jobs', { ...valid, [field]: value });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual([field]);
  });

  it('names every bad field when several are wrong at once', async () => {
    const response = await refused('POST', '/api/v1/jobs', {
      prompt: '',
      width: 7,
      height: 'tall',
      steps: 500,
      cfgScale: 'high',
      priority: 1000,
      colour: 'blue',
    });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['cfgScale', 'colour', 'height', 'priority', 'prompt', 'steps', 'width']);
    const colour = (response.body.errors as { field: string; message: string }[]).find((error) => error.field === 'colour');
    expect(colour?.message).toBe('is not a known field');
  });

  it('refuses oversized and empty strings', async () => {
    const long = await refused('POST', '/api/v1/jobs', { prompt: 'p'.repeat(4001) });
    expectProblem(long, 400, 'validation_failed');
    expect(fieldsOf(long)).toEqual(['prompt']);
    expect(long.body.errors[0].message).toContain('4000');

    const negative = await refused('POST', '/api/v1/jobs', { ...valid, negativePrompt: 'n'.repeat(4001) });
    expect(fieldsOf(negative)).toEqual(['negativePrompt']);

    const empty = await refused('POST', '/api/v1/jobs', { prompt: '' });
    expectProblem(empty, 400, 'validation_failed');
    expect(fieldsOf(empty)).toEqual(['prompt']);

    const scheduler = await refused('POST', '/api/v1/jobs', { ...valid, scheduler: 's'.repeat(65) });
    expect(fieldsOf(scheduler)).toEqual(['scheduler']);
  });

  it('refuses a missing prompt and a body that is not an object', async () => {
    const missing = await refused('POST', '/api/v1/jobs', { width: 512 });
    expectProblem(missing, 400, 'validation_failed');
    expect(missing.body.errors).toEqual([{ in: 'body', field: 'prompt', message: 'is required' }]);

    for (const body of ['[]', 'null', '"a prompt"', '42']) {
      const response = await refused('POST', '/api/v1/jobs', body);
      expectProblem(response, 400, 'validation_failed');
      expect(fieldsOf(response)).toEqual(['body']);
    }

    const none = await refused('POST', '/api/v1/jobs');
    expectProblem(none, 400, 'validation_failed');
    const blank = await refused('POST', '/api/v1/jobs', '', { 'content-type': 'application/json' });
    expectProblem(blank, 400, 'validation_failed');
  });

  it('refuses a body larger than one base64 input image and the request (28 MiB by default) with 413', async () => {
    const response = await refused('POST', '/api/v1/jobs', JSON.stringify({ prompt: 'x'.repeat(29 * 1024 * 1024) }));
    expectProblem(response, 413, 'body_too_large');
  });

  it('refuses unknown fields, at the top and nested, naming them', async () => {
    const top = await refused('POST', '/api/v1/jobs', { ...valid, sampler: 'euler' });
    expectProblem(top, 400, 'validation_failed');
    expect(top.body.errors).toEqual([{ in: 'body', field: 'sampler', message: 'is not a known field' }]);

    const nested = await refused('POST', '/api/v1/jobs', { ...valid, additionalNetworks: { 'urn:air:sd1:lora:civitai:1@1': { type: 'lora', weight: 1 } } });
    expectProblem(nested, 400, 'validation_failed');
    expect(fieldsOf(nested)).toEqual(['additionalNetworks.urn:air:sd1:lora:civitai:1@1.weight']);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x'])(
    'refuses content type %s with 415',
    async (contentType) => {
      const response = await refused('POST', '/api/v1/jobs', JSON.stringify(valid), { 'content-type': contentType });
      expectProblem(response, 415, 'unsupported_media_type');
    },
  );

  it('refuses an unknown provider, naming it', async () => {
    const response = await refused('POST', '/api/v1/jobs', { ...valid, provider: 'dall-e-9' });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['provider']);
    expect(response.body.detail).toContain('"dall-e-9"');
    expect(response.body.errors[0].message).toContain('"dall-e-9"');
    expect(response.body.errors[0].message).toContain('mock');
  });

  it('refuses a deadline in the past', async () => {
    const response = await refused('POST', '/api/v1/jobs', { ...valid, deadline: '2001-01-01T00:00:00Z' });
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toEqual([{ in: 'body', field: 'deadline', message: 'must be a date-time in the future' }]);
  });

  it('refuses metadata over 16 KiB and with too many keys', async () => {
    const large = await refused('POST', '/api/v1/jobs', { ...valid, metadata: { notes: 'm'.repeat(17 * 1024) } });
    expectProblem(large, 400, 'validation_failed');
    expect(fieldsOf(large)).toEqual(['metadata']);
    expect(large.body.errors[0].message).toContain('16384');

    const many = Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`k${index}`, index]));
    const wide = await refused('POST', '/api/v1/jobs', { ...valid, metadata: many });
    expectProblem(wide, 400, 'validation_failed');
    expect(fieldsOf(wide)).toEqual(['metadata']);
  });

  it('accepts requests exactly at the limits', async () => {
    const atLimits = await idle.api('POST', '/api/v1/jobs', {
      prompt: 'p'.repeat(4000),
      width: 2048,
      height: 64,
      steps: 150,
      cfgScale: 30,
      seed: 4294967295,
      numImages: 10,
      priority: -100,
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
      metadata: { notes: 'm'.repeat(16 * 1024 - 20) },
    });
    expect(atLimits.status, JSON.stringify(atLimits.body)).toBe(202);
    expect(atLimits.body.status).toBe('queued');
    expect(atLimits.body.request).toMatchObject({ width: 2048, height: 64, steps: 150, cfgScale: 30, seed: 4294967295, numImages: 10, priority: -100 });

    const atLowerLimits = await idle.api('POST', '/api/v1/jobs', { prompt: 'p', width: 64, height: 2048, steps: 1, cfgScale: 1, seed: -1, numImages: 1, priority: 100 });
    expect(atLowerLimits.status, JSON.stringify(atLowerLimits.body)).toBe(202);
    expect(atLowerLimits.body.request.seed).toBeUndefined();
    expect(atLowerLimits.body.priority).toBe(100);
  });
});

describe('POST /api/v1/jobs/batch', () => {
  /** Every batch test checks the whole refusal left no job behind. */
  async function refusedBatch(body: unknown): Promise<ApiResponse> {
    const before = await allJobIds(dr);
    const response = await refused('POST', '/api/v1/jobs/batch', body);
    expect(await allJobIds(dr)).toEqual(before);
    return response;
  }

  it('refuses both prompts and jobs', async () => {
    const response = await refusedBatch({ prompts: ['a', 'b'], jobs: [{ prompt: 'c' }] });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['prompts']);
    expect(response.body.detail).toContain('exactly one of `prompts` or `jobs`');
  });

  it('refuses neither prompts nor jobs', async () => {
    const response = await refusedBatch({ width: 512 });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['prompts']);
  });

  it('refuses 101 prompts and 101 jobs', async () => {
    const prompts = await refusedBatch({ prompts: Array.from({ length: 101 }, (_, index) => `prompt ${index}`) });
    expectProblem(prompts, 400, 'validation_failed');
    expect(prompts.body.errors).toEqual([{ in: 'body', field: 'prompts', message: 'must NOT have more than 100 items' }]);

    const jobs = await refusedBatch({ jobs: Array.from({ length: 101 }, (_, index) => ({ prompt: `prompt ${index}` })) });
    expectProblem(jobs, 400, 'validation_failed');
    expect(fieldsOf(jobs)).toEqual(['jobs']);
  });

  it('refuses empty arrays', async () => {
    const prompts = await refusedBatch({ prompts: [] });
    expectProblem(prompts, 400, 'validation_failed');
    expect(fieldsOf(prompts)).toEqual(['prompts']);

    const jobs = await refusedBatch({ jobs: [] });
    expectProblem(jobs, 400, 'validation_failed');
    expect(fieldsOf(jobs)).toEqual(['jobs']);
  });

  it('refuses the whole batch when one job fails validation, naming its position', async () => {
    const response = await refusedBatch({ jobs: [{ prompt: 'one' }, { prompt: 'two', width: 7 }, { prompt: 'three' }] });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['jobs.1.width']);
  });

  it('refuses the whole batch when one job names an unknown provider (checked after the schema)', async () => {
    const response = await refusedBatch({ jobs: [{ prompt: 'one' }, { prompt: 'two' }, { prompt: 'three', provider: 'nowhere' }] });
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['jobs.2.provider']);
    expect(response.body.detail).toContain('"nowhere"');
  });

  it('refuses the whole batch when one job has a past deadline or oversized metadata', async () => {
    const deadline = await refusedBatch({ jobs: [{ prompt: 'one' }, { prompt: 'two', deadline: '2001-01-01T00:00:00Z' }] });
    expectProblem(deadline, 400, 'validation_failed');
    expect(fieldsOf(deadline)).toEqual(['jobs.1.deadline']);

    const metadata = await refusedBatch({ jobs: [{ prompt: 'one', metadata: { notes: 'm'.repeat(17 * 1024) } }, { prompt: 'two' }] });
    expectProblem(metadata, 400, 'validation_failed');
    expect(fieldsOf(metadata)).toEqual(['jobs.0.metadata']);
  });

  it('refuses the whole batch when one prompt is oversized or not a string', async () => {
    const long = await refusedBatch({ prompts: ['one', 'two', 'three', 'x'.repeat(4001)] });
    expectProblem(long, 400, 'validation_failed');
    expect(fieldsOf(long)).toEqual(['prompts.3']);

    const typed = await refusedBatch({ prompts: ['one', 2, ''] });
    expectProblem(typed, 400, 'validation_failed');
    expect(fieldsOf(typed)).toEqual(['prompts.1', 'prompts.2']);
  });

  it('refuses bad shared options and unknown fields, top-level and per job', async () => {
    const shared = await refusedBatch({ prompts: ['one', 'two'], width: '512', steps: 0 });
    expectProblem(shared, 400, 'validation_failed');
    expect(fieldsOf(shared)).toEqual(['steps', 'width']);

    const unknownTop = await refusedBatch({ prompts: ['one'], mode: 'fast' });
    expect(fieldsOf(unknownTop)).toEqual(['mode']);

    const unknownJob = await refusedBatch({ jobs: [{ prompt: 'one' }, { prompt: 'two', mode: 'fast' }] });
    expectProblem(unknownJob, 400, 'validation_failed');
    expect(fieldsOf(unknownJob)).toEqual(['jobs.1.mode']);

    const sharedProvider = await refusedBatch({ prompts: ['one', 'two'], provider: 'nowhere' });
    expectProblem(sharedProvider, 400, 'validation_failed');
    expect(sharedProvider.body.detail).toContain('"nowhere"');
    expect(fieldsOf(sharedProvider)).toEqual(['provider']);
  });

  it('refuses malformed JSON, a non-JSON body and a body over the limit', async () => {
    expectProblem(await refusedBatch('{"prompts":["a"'), 400, 'malformed_json');
    const before = await allJobIds(dr);
    const plain = await refused('POST', '/api/v1/jobs/batch', JSON.stringify({ prompts: ['a'] }), { 'content-type': 'text/plain' });
    expectProblem(plain, 415, 'unsupported_media_type');
    expectProblem(await refusedBatch(JSON.stringify({ prompts: ['x'.repeat(29 * 1024 * 1024)] })), 413, 'body_too_large');
    expect(await allJobIds(dr)).toEqual(before);
  });
});

describe('GET /api/v1/batches/{id}', () => {
  it('answers 404 for an unknown batch', async () => {
    const response = await dr.api('GET', `/api/v1/batches/${UNKNOWN_ID}`);
    expectProblem(response, 404, 'not_found');
    expect(response.body.detail).toContain(UNKNOWN_ID);
  });

  it.each(MALFORMED_IDS)('answers 400 for the malformed id %s', async (id) => {
    const response = await dr.api('GET', `/api/v1/batches/${id}`);
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toEqual([{ in: 'params', field: 'id', message: 'must match format "uuid"' }]);
  });

  it('answers 404 for a job id that is not a batch id', async () => {
    expectProblem(await dr.api('GET', `/api/v1/batches/${sentinelId}`), 404, 'not_found');
  });
});

describe('GET /api/v1/jobs/{id} and /events', () => {
  it.each(['', '/events'])('answers 404 for an unknown job (%s)', async (suffix) => {
    const response = await dr.api('GET', `/api/v1/jobs/${UNKNOWN_ID}${suffix}`);
    expectProblem(response, 404, 'not_found');
    expect(response.body.detail).toBe(`Job ${UNKNOWN_ID} does not exist`);
    expect(response.body.instance).toBe(`/api/v1/jobs/${UNKNOWN_ID}${suffix}`);
  });

  it.each(MALFORMED_IDS.flatMap((id) => [[id, ''], [id, '/events']]))('answers 400 for the malformed id %s (%s)', async (id, suffix) => {
    const response = await dr.api('GET', `/api/v1/jobs/${id}${suffix}`);
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['id']);
    expect(placesOf(response)).toEqual(['params']);
  });

  it("lists a real job's events, starting with its creation", async () => {
    const response = await dr.api('GET', `/api/v1/jobs/${sentinelId}/events`);
    expect(response.status).toBe(200);
    const types = (response.body.items as { type: string }[]).map((event) => event.type);
    expect(types[0]).toBe('created');
    expect(response.body.items.at(-1).status).toBe('succeeded');
  });
});

describe('GET /api/v1/jobs (list)', () => {
  it.each([
    ['limit=0', 'limit', 'must be >= 1'],
    ['limit=101', 'limit', 'must be <= 100'],
    ['limit=-5', 'limit', 'must be >= 1'],
    ['limit=ten', 'limit', 'must be integer'],
    ['limit=2.5', 'limit', 'must be integer'],
    ['limit=', 'limit', 'must be integer'],
    ['status=finished', 'status', 'must be equal to one of the allowed values'],
    ['status=SUCCEEDED', 'status', 'must be equal to one of the allowed values'],
    ['cursor=', 'cursor', 'must NOT have fewer than 1 characters'],
    ['sort=asc', 'sort', 'is not a known field'],
  ])('refuses ?%s with 400 naming %s', async (query, field, message) => {
    const response = await dr.api('GET', `/api/v1/jobs?${query}`);
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toEqual([{ in: 'querystring', field, message }]);
  });

  it('names every bad query parameter at once', async () => {
    const response = await dr.api('GET', '/api/v1/jobs?limit=0&status=bogus');
    expectProblem(response, 400, 'validation_failed');
    expect(fieldsOf(response)).toEqual(['limit', 'status']);
  });

  it.each([
    ['not base64 of a job id', 'zzz'],
    ['base64 of other text', Buffer.from('hello, world').toString('base64url')],
    ['base64 of an id with a trailing character', Buffer.from(`${UNKNOWN_ID}x`).toString('base64url')],
    ['a raw job id', UNKNOWN_ID],
  ])('refuses a malformed cursor (%s) with 400', async (_name, cursor) => {
    const response = await dr.api('GET', `/api/v1/jobs?cursor=${encodeURIComponent(cursor)}`);
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toEqual([{ in: 'querystring', field: 'cursor', message: 'is malformed' }]);
  });

  it('accepts a cursor it handed out, and a status filter', async () => {
    for (const prompt of ['page one', 'page two']) expect((await idle.api('POST', '/api/v1/jobs', { prompt })).status).toBe(202);
    const first = await idle.api('GET', '/api/v1/jobs?limit=1');
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(1);
    expect(typeof first.body.nextCursor).toBe('string');
    const second = await idle.api('GET', `/api/v1/jobs?limit=1&cursor=${first.body.nextCursor}`);
    expect(second.status).toBe(200);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.items[0].id).not.toBe(first.body.items[0].id);

    const succeeded = await dr.api('GET', '/api/v1/jobs?status=succeeded&limit=5');
    expect((succeeded.body.items as { id: string }[]).map((item) => item.id)).toEqual([sentinelId]);
    const queued = await dr.api('GET', '/api/v1/jobs?status=queued');
    expect(queued.body).toEqual({ items: [], nextCursor: null });
  });
});

describe('POST /api/v1/jobs/{id}/cancel and DELETE /api/v1/jobs/{id}', () => {
  const routes: [string, (id: string) => string][] = [
    ['POST', (id) => `/api/v1/jobs/${id}/cancel`],
    ['DELETE', (id) => `/api/v1/jobs/${id}`],
  ];

  it.each(routes)('%s answers 404 for an unknown job', async (method, path) => {
    const response = await dr.api(method, path(UNKNOWN_ID));
    expectProblem(response, 404, 'not_found');
    expect(response.body.detail).toContain(UNKNOWN_ID);
  });

  it.each(routes)('%s answers 400 for a malformed id', async (method, path) => {
    for (const id of MALFORMED_IDS) {
      const response = await dr.api(method, path(id));
      expectProblem(response, 400, 'validation_failed');
      expect(fieldsOf(response)).toEqual(['id']);
    }
  });

  it.each(routes)('%s of a finished job is 409, and the job stays succeeded with its images', async (method, path) => {
    const response = await dr.api(method, path(sentinelId));
    expectProblem(response, 409, 'conflict');
    expect(response.body.detail).toContain('succeeded');
    const after = await dr.api('GET', `/api/v1/jobs/${sentinelId}`);
    expect(after.body.status).toBe('succeeded');
    expect(after.body.completedAt).toBe(sentinel.completedAt);
    expect(after.body.images).toHaveLength(2);
    const original = await fetch(after.body.images[1].url);
    expect(original.status).toBe(200);
    expect(original.headers.get('content-type')).toBe('image/png');
  });

  it.each(routes)('%s of a queued job answers 200 cancelled; a second cancel is 409', async (method, path) => {
    const created = await idle.api('POST', '/api/v1/jobs', valid);
    expect(created.status).toBe(202);
    expect(created.body.status).toBe('queued');
    const cancelled = await idle.api(method, path(created.body.id));
    expect(cancelled.status).toBe(200);
    expect(cancelled.headers.get('content-type')).toMatch(/^application\/json\b/);
    expect(cancelled.body).toMatchObject({ id: created.body.id, status: 'cancelled', images: [] });
    expect(typeof cancelled.body.completedAt).toBe('string');
    expect((await idle.api('GET', `/api/v1/jobs/${created.body.id}`)).body.status).toBe('cancelled');

    const again = await idle.api(method, path(created.body.id));
    expectProblem(again, 409, 'conflict');
    expect(again.body.detail).toContain('cancelled');
  });
});

describe('GET /api/v1/jobs/{id}/images/{index}', () => {
  const image = (id: string, rest: string) => `/api/v1/jobs/${id}/images/${rest}`;

  it('answers 404 for an unknown job and 400 for a malformed id', async () => {
    expectProblem(await dr.api('GET', image(UNKNOWN_ID, '0')), 404, 'not_found');
    const malformed = await dr.api('GET', image('not-a-uuid', '0'));
    expectProblem(malformed, 400, 'validation_failed');
    expect(fieldsOf(malformed)).toEqual(['id']);
  });

  it.each(['-1', 'first', '1.5', '100'])('answers 400 for the index %s', async (index) => {
    const response = await dr.api('GET', image(sentinelId, index));
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors.map((error: { in: string; field: string }) => `${error.in}:${error.field}`)).toEqual(['params:index']);
  });

  it('answers 404 for an index beyond numImages', async () => {
    const response = await dr.api('GET', image(sentinelId, '2'));
    expectProblem(response, 404, 'not_found');
    expect(response.body.detail).toBe(`Image 2 of job ${sentinelId} does not exist`);
  });

  it.each([
    ['type=bogus', 'type'],
    ['type=ORIGINAL', 'type'],
    ['redirect=maybe', 'redirect'],
    ['size=large', 'size'],
  ])('answers 400 for ?%s', async (query, field) => {
    const response = await dr.api('GET', image(sentinelId, `0?${query}`));
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toHaveLength(1);
    expect(response.body.errors[0]).toMatchObject({ in: 'querystring', field });
  });

  it('answers 409 job_unfinished for a queued and for a cancelled job', async () => {
    const created = await idle.api('POST', '/api/v1/jobs', valid);
    const queued = await idle.api('GET', image(created.body.id, '0'));
    expectProblem(queued, 409, 'job_unfinished');
    expect(queued.body.detail).toContain('queued');

    await idle.api('POST', `/api/v1/jobs/${created.body.id}/cancel`);
    const cancelled = await idle.api('GET', image(created.body.id, '0?redirect=true'));
    expectProblem(cancelled, 409, 'job_unfinished');
    expect(cancelled.body.detail).toContain('cancelled');
  });

  it('gives a link to the original and the thumbnail', async () => {
    const original = await dr.api('GET', image(sentinelId, '1'));
    expect(original.status).toBe(200);
    expect(original.body).toMatchObject({ width: 256, height: 192, contentType: 'image/png' });
    expect(new URL(original.body.url).pathname).toBe(`/files/jobs/${sentinelId}/1-original.png`);
    const thumbnail = await dr.api('GET', image(sentinelId, '1?type=thumbnail'));
    expect(thumbnail.body).toMatchObject({ width: 128, height: 128, contentType: 'image/webp' });
    expect(new URL(thumbnail.body.url).pathname).toBe(`/files/jobs/${sentinelId}/1-thumbnail.webp`);
  });

  it.each([
    ['original', 'image/png', '0-original.png'],
    ['thumbnail', 'image/webp', '0-thumbnail.webp'],
  ])('redirect=true answers 302 to a working link to the %s', async (type, contentType, file) => {
    const response = await dr.api('GET', image(sentinelId, `0?type=${type}&redirect=true`));
    expect(response.status).toBe(302);
    const location = response.headers.get('location') ?? '';
    const link = new URL(location);
    expect(`${link.origin}${link.pathname}`).toBe(`${dr.url}/files/jobs/${sentinelId}/${file}`);
    expect(link.searchParams.get('expires')).toMatch(/^\d+$/);
    expect(link.searchParams.get('signature')).toMatch(/^[\w-]{43}$/);
    const followed = await fetch(location);
    expect(followed.status).toBe(200);
    expect(followed.headers.get('content-type')).toBe(contentType);
    const expected = (sentinel.images as { sha256: string; bytes: number }[])[0]!;
    if (type === 'original') expect(Number(followed.headers.get('content-length'))).toBe(expected.bytes);
    expect((await followed.arrayBuffer()).byteLength).toBeGreaterThan(100);
  });
});

describe('operations and documentation routes', () => {
  it('GET /api/v1/queue/stats counts the jobs', async () => {
    const response = await dr.api('GET', '/api/v1/queue/stats');
    expect(response.status).toBe(200);
    expect(response.body.queue).toBe('embedded');
    expect(response.body.jobs).toEqual({ queued: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0, expired: 0 });
    expect(response.body.pending).toEqual({ waiting: 0, delayed: 0, active: 0 });
  });

  it('GET /api/v1/providers lists the mock, healthy and default', async () => {
    const response = await dr.api('GET', '/api/v1/providers');
    expect(response.status).toBe(200);
    expect(response.body.items).toHaveLength(1);
    expect(response.body.items[0]).toMatchObject({ name: 'mock', default: true, healthy: true });
  });

  it('POST /api/v1/providers/{name}/test answers 404 for an unknown provider and 400 for a malformed name', async () => {
    const ok = await dr.api('POST', '/api/v1/providers/mock/test');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ name: 'mock', healthy: true });

    const unknown = await dr.api('POST', '/api/v1/providers/dall-e-9/test');
    expectProblem(unknown, 404, 'not_found');
    expect(unknown.body.detail).toContain('dall-e-9');

    for (const name of ['Mock', 'mo%20ck', 'm'.repeat(65)]) {
      const malformed = await dr.api('POST', `/api/v1/providers/${name}/test`);
      expectProblem(malformed, 400, 'validation_failed');
      expect(malformed.body.errors).toEqual([expect.objectContaining({ in: 'params', field: 'name' })]);
    }
  });

  it('GET /health and /ready answer', async () => {
    const health = await dr.api('GET', '/health');
    expect([health.status, health.body]).toEqual([200, { status: 'ok' }]);
    const ready = await dr.api('GET', '/ready');
    expect([ready.status, ready.body]).toEqual([200, { status: 'ready', checks: { database: 'ok', queue: 'ok', storage: 'ok', providers: 'ok' }, providersDown: [] }]);
  });

  it('GET /openapi.json describes the API as OpenAPI 3.1.0', async () => {
    const response = await dr.api('GET', '/openapi.json');
    expect(response.status).toBe(200);
    expect(response.body.openapi).toBe('3.1.0');
    const paths = response.body.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths['/api/v1/jobs'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(paths['/api/v1/jobs/{id}'] ?? {}).sort()).toEqual(['delete', 'get']);
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/api/v1/jobs/batch', '/api/v1/jobs/{id}/images/{index}', '/api/v1/batches/{id}']));
    expect(Object.keys(paths).filter((path) => path.startsWith('/files'))).toEqual([]);
  });

  it('GET /docs and /redoc serve HTML', async () => {
    const docs = await fetch(`${dr.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await docs.text()).toContain('Swagger UI');
    const redoc = await fetch(`${dr.url}/redoc`);
    expect(redoc.status).toBe(200);
    expect(redoc.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await redoc.text()).toContain('<redoc spec-url="/openapi.json">');
  });

  it.each([
    ['GET', '/api/v1/nothing-here'],
    ['GET', '/api/v2/jobs'],
    ['GET', `/api/v1/jobs/${UNKNOWN_ID}/images`],
  ])('%s %s is a 404 problem', async (method, path) => {
    const response = await dr.api(method, path);
    expectProblem(response, 404, 'route_not_found');
    expect(response.body.detail).toBe(`No route ${method} ${path}`);
    expect(response.body.instance).toBe(path);
  });

  it.each([
    ['PUT', '/api/v1/jobs', 'GET, HEAD, POST'],
    ['POST', '/health', 'GET, HEAD'],
    ['PATCH', `/api/v1/jobs/${UNKNOWN_ID}`, 'GET, HEAD, DELETE'],
  ])('%s %s is a 405 problem listing the methods the path has', async (method, path, allow) => {
    const response = await dr.api(method, path);
    expectProblem(response, 405, 'method_not_allowed');
    expect(response.headers.get('allow')).toBe(allow);
    expect(response.body.detail).toBe(`${method} is not allowed on ${path}; it answers ${allow}`);
    expect(response.body.instance).toBe(path);
  });
});

// Runs last (vitest keeps the order of a file): everything above sent `dr` only requests it refused.
describe('after all the bad requests', () => {
  it('no job was created and the first job is unchanged', async () => {
    expect(await allJobIds(dr)).toEqual(initialJobIds);
    const now = await dr.api('GET', `/api/v1/jobs/${sentinelId}`);
    expect(now.status).toBe(200);
    expect(stable(now.body)).toEqual(stable(sentinel));
    expect(now.body.images).toHaveLength(2);
    expect((await dr.api('GET', `/api/v1/jobs/${sentinelId}/events`)).body).toEqual(sentinelEvents);
  });
});
