import { sql } from 'drizzle-orm';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerIdempotency } from '../src/api/http/idempotency.ts';
import { registerProblemHandlers } from '../src/api/http/problem.ts';
import { DarkroomError } from '../src/core/errors.ts';
import { makeIdempotencyRepository } from '../src/db/idempotency-repository.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';

/** One raw answer: the exact bytes, so replays can be compared byte for byte. */
interface Raw {
  status: number;
  headers: Headers;
  text: string;
}

let dr: TestDarkroom;
beforeAll(async () => {
  // No worker: jobs stay queued, so every answer is fixed at creation.
  dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
});
afterAll(() => dr.close({ removeData: true }));

async function send(path: string, key: string | undefined, body: RequestInit['body'], headers: Record<string, string> = {}): Promise<Raw> {
  const response = await fetch(`${dr.url}${path}`, {
    method: 'POST',
    body,
    headers: { ...(typeof body === 'string' ? { 'content-type': 'application/json' } : {}), ...(key === undefined ? {} : { 'idempotency-key': key }), ...headers },
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const json = (path: string, key: string | undefined, body: unknown) => send(path, key, JSON.stringify(body));
let keys = 0;
const newKey = () => `key-${Date.now()}-${(keys += 1)}`;

async function jobCount(): Promise<number> {
  const counts = (await dr.api('GET', '/api/v1/queue/stats')).body.jobs as Record<string, number>;
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

describe('Idempotency-Key on the native API', () => {
  it('replays the first answer byte for byte: same status, same job, no second job', async () => {
    const key = newKey();
    const before = await jobCount();
    const first = await json('/api/v1/jobs', key, { prompt: 'only once' });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await json('/api/v1/jobs', key, { prompt: 'only once' });
    expect(again.status).toBe(202);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await jobCount()).toBe(before + 1);
  });

  it('creates exactly one job for 20 concurrent duplicates, and all of them get its answer', async () => {
    const key = newKey();
    const before = await jobCount();
    const answers = await Promise.all(Array.from({ length: 20 }, () => json('/api/v1/jobs', key, { prompt: 'twenty at once' })));
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(202));
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
    expect(answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true')).toHaveLength(19);
    expect(await jobCount()).toBe(before + 1);
  });

  it('refuses the same key with another body (422), and with another route', async () => {
    const key = newKey();
    expect((await json('/api/v1/jobs', key, { prompt: 'the first body' })).status).toBe(202);
    const before = await jobCount();
    const other = await json('/api/v1/jobs', key, { prompt: 'another body' });
    expect(other.status).toBe(422);
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(other.text)).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
    const batch = await json('/api/v1/jobs/batch', key, { prompts: ['the first body'] });
    expect(batch.status).toBe(422);
    expect(await jobCount()).toBe(before);
  });

  it('replays a batch with the same batch and job ids', async () => {
    const key = newKey();
    const body = { prompts: ['a', 'b', 'c'], width: 256 };
    const first = await json('/api/v1/jobs/batch', key, body);
    expect(first.status).toBe(202);
    const again = await json('/api/v1/jobs/batch', key, body);
    expect(again.text).toBe(first.text);
    expect(JSON.parse(again.text).jobs).toHaveLength(3);
  });

  it('does not keep failed answers: the key is free again for a corrected request', async () => {
    const key = newKey();
    const bad = await json('/api/v1/jobs', key, { prompt: '' });
    expect(bad.status).toBe(400);
    expect((await json('/api/v1/jobs', key, { prompt: '' })).status).toBe(400);
    const unknownProvider = await json('/api/v1/jobs', key, { prompt: 'p', provider: 'nobody' });
    expect(unknownProvider.status).toBe(400);
    const good = await json('/api/v1/jobs', key, { prompt: 'now valid' });
    expect(good.status).toBe(202);
    expect((await json('/api/v1/jobs', key, { prompt: 'now valid' })).text).toBe(good.text);
  });

  it('forgets keys after 24 hours', async () => {
    const key = newKey();
    const first = await json('/api/v1/jobs', key, { prompt: 'a day old' });
    await dr.darkroom.database.db.execute(sql`update idempotency_keys set created_at = now() - interval '25 hours' where key = ${key}`);
    const later = await json('/api/v1/jobs', key, { prompt: 'a day old' });
    expect(later.status).toBe(202);
    expect(JSON.parse(later.text).id).not.toBe(JSON.parse(first.text).id);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
  });

  it('takes over a key left pending by a request that never finished', async () => {
    const key = newKey();
    await dr.darkroom.database.db.execute(
      sql`insert into idempotency_keys (scope, key, fingerprint, state, claim, created_at) values ('anonymous', ${key}, 'x', 'pending', 'gone', now() - interval '11 minutes')`,
    );
    expect((await json('/api/v1/jobs', key, { prompt: 'after a crash' })).status).toBe(202);
  });

  it('refuses malformed keys', async () => {
    for (const key of ['x'.repeat(256), 'has space', 'tab\tkey']) {
      const answer = await json('/api/v1/jobs', key, { prompt: 'p' });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text).errors).toEqual([{ in: 'headers', field: 'idempotency-key', message: 'must be 1 to 255 visible ASCII characters' }]);
    }
  });

  it('leaves requests without a key alone', async () => {
    const before = await jobCount();
    const [a, b] = [await json('/api/v1/jobs', undefined, { prompt: 'p' }), await json('/api/v1/jobs', undefined, { prompt: 'p' })];
    expect(JSON.parse(a.text).id).not.toBe(JSON.parse(b.text).id);
    expect(await jobCount()).toBe(before + 2);
  });
});

describe('Idempotency-Key on the other dialects', () => {
  it('civitai: POST /v1/consumer/jobs replays its token; another body is a 422 problem in the service format', async () => {
    const key = newKey();
    const body = { $type: 'textToImage', model: 'urn:air:sdxl:checkpoint:civitai:101055@128078', params: { prompt: 'civitai once', width: 512, height: 512 } };
    const first = await json('/v1/consumer/jobs', key, body);
    expect(first.status).toBe(200);
    const again = await json('/v1/consumer/jobs', key, body);
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    const other = await json('/v1/consumer/jobs', key, { ...body, params: { ...body.params, prompt: 'other' } });
    expect(other.status).toBe(422);
    expect(JSON.parse(other.text)).toMatchObject({ status: 422, title: 'Unprocessable Entity', traceId: expect.any(String) });
  });

  it('runpod: /run and /runsync replay; another body is a 422 {error}', async () => {
    for (const route of ['run', 'runsync?wait=1000']) {
      const key = newKey();
      const body = { input: { prompt: `runpod ${route}` } };
      const first = await json(`/v2/ep-idem/${route}`, key, body);
      expect(first.status).toBe(200);
      const again = await json(`/v2/ep-idem/${route}`, key, body);
      expect(again.text).toBe(first.text);
      const other = await json(`/v2/ep-idem/${route}`, key, { input: { prompt: 'something else' } });
      expect(other.status).toBe(422);
      expect(Object.keys(JSON.parse(other.text))).toEqual(['error']);
    }
  });

  it('fusionbrain: the same form sent twice (with different multipart boundaries) gets the same generation; another form is a 422', async () => {
    const key = newKey();
    const params = { type: 'GENERATE', numImages: 1, width: 512, height: 512, generateParams: { query: 'kandinsky once' } };
    const form = (query: string) => {
      const data = new FormData();
      data.append('pipeline_id', '5b1e2c3d-8f4a-4e6b-9c7d-0a1b2c3d4e5f');
      data.append('params', new Blob([JSON.stringify({ ...params, generateParams: { query } })], { type: 'application/json' }));
      return data;
    };
    const before = await jobCount();
    const first = await send('/key/api/v1/pipeline/run', key, form('kandinsky once'));
    expect(first.status).toBe(201);
    const again = await send('/key/api/v1/pipeline/run', key, form('kandinsky once'));
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(await jobCount()).toBe(before + 1);
    const other = await send('/key/api/v1/pipeline/run', key, form('another query'));
    expect(other.status).toBe(422);
    expect(JSON.parse(other.text)).toMatchObject({ status: 422, error: 'Unprocessable Entity', path: '/key/api/v1/pipeline/run' });
  });
});

describe('registerIdempotency', () => {
  /** A bare Fastify app with one idempotent route whose handler runs `handle`. */
  async function bareApp(handle: (made: number) => Promise<unknown>, options: { waitForFirstMs?: number } = {}) {
    const app = Fastify();
    registerProblemHandlers(app);
    registerIdempotency(app, {
      store: makeIdempotencyRepository(dr.darkroom.database.db, { ttlMs: 86_400_000, abandonedAfterMs: 600_000 }),
      bodyLimitBytes: 1024,
      scopeOf: () => 'one caller',
      ...options,
    });
    let made = 0;
    app.post('/make', { config: { idempotent: true } }, async () => handle((made += 1)));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/make`;
    const post = async (key: string) => {
      const response = await fetch(url, { method: 'POST', headers: { 'idempotency-key': key, 'content-type': 'application/json' }, body: '{}' });
      return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
    };
    return { app, post, made: () => made };
  }

  it('lets a waiting duplicate run the request itself when the first attempt failed', async () => {
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const { app, post, made } = await bareApp(async (attempt) => {
      if (attempt === 1) {
        await gate;
        throw new DarkroomError(503, 'unavailable', 'the first attempt fails');
      }
      return { attempt };
    });
    try {
      const first = post('fails-first');
      // The duplicate is sent once the first one holds the key (its handler has started).
      await expect.poll(made, { timeout: 10_000 }).toBe(1);
      const second = post('fails-first');
      openGate();
      expect((await first).status).toBe(503);
      expect(await second).toMatchObject({ status: 200, body: { attempt: 2 } });
      expect(await post('fails-first')).toMatchObject({ status: 200, body: { attempt: 2 } });
    } finally {
      openGate();
      await app.close();
    }
  });

  it('answers 409 with Retry-After to a duplicate that waited too long for the first', async () => {
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const { app, post, made } = await bareApp(
      async (attempt) => {
        await gate;
        return { attempt };
      },
      { waitForFirstMs: 50 },
    );
    try {
      const first = post('slow-first');
      await expect.poll(made, { timeout: 10_000 }).toBe(1);
      const second = await post('slow-first');
      expect(second.status).toBe(409);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(second.body).toMatchObject({ code: 'idempotency_key_in_use' });
      openGate();
      expect((await first).body).toEqual({ attempt: 1 });
      expect(made()).toBe(1);
    } finally {
      openGate();
      await app.close();
    }
  });

  it('keeps keys apart per caller (scope)', async () => {
    // As in darkroom's app: the server's body limit is the one idempotency remembers bodies up to.
    const app = Fastify({ bodyLimit: 1024 });
    registerProblemHandlers(app);
    registerIdempotency(app, {
      store: makeIdempotencyRepository(dr.darkroom.database.db, { ttlMs: 86_400_000, abandonedAfterMs: 600_000 }),
      bodyLimitBytes: 1024,
      scopeOf: (request) => String(request.headers['x-caller']),
    });
    let made = 0;
    app.post('/make', { config: { idempotent: true } }, async () => ({ made: (made += 1) }));
    const call = async (caller: string) =>
      (await app.inject({ method: 'POST', url: '/make', headers: { 'x-caller': caller, 'idempotency-key': 'shared', 'content-type': 'application/json' }, payload: '{}' })).json();
    try {
      expect(await call('alice')).toEqual({ made: 1 });
      expect(await call('bob')).toEqual({ made: 2 });
      expect(await call('alice')).toEqual({ made: 1 });
      const tooBig = await app.inject({
        method: 'POST',
        url: '/make',
        headers: { 'x-caller': 'carol', 'idempotency-key': 'big', 'content-type': 'application/json' },
        payload: JSON.stringify({ padding: 'x'.repeat(2000) }),
      });
      expect(tooBig.statusCode).toBe(413);
      expect(made).toBe(2);
    } finally {
      await app.close();
    }
  });
});

describe.skipIf(!testDatabaseUrl)('Idempotency-Key on Postgres, across two darkrooms', () => {
  it('20 concurrent duplicates split over two processes sharing one database create one job', async () => {
    const database = await createTestDatabase();
    const darkrooms: TestDarkroom[] = [];
    try {
      darkrooms.push(await startDarkroom({ DATABASE_URL: database.url, WORKER_CONCURRENCY: '0' }));
      darkrooms.push(await startDarkroom({ DATABASE_URL: database.url, WORKER_CONCURRENCY: '0' }));
      const body = JSON.stringify({ prompt: 'one job across processes' });
      const answers = await Promise.all(
        Array.from({ length: 20 }, async (_, index) => {
          const response = await fetch(`${darkrooms[index % 2]?.url}/api/v1/jobs`, {
            method: 'POST',
            body,
            headers: { 'content-type': 'application/json', 'idempotency-key': 'across' },
          });
          return { status: response.status, text: await response.text() };
        }),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(202));
      expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
      const listed = await darkrooms[0]?.api('GET', '/api/v1/jobs');
      expect(listed?.body.items).toHaveLength(1);
    } finally {
      for (const darkroom of darkrooms) await darkroom.close({ removeData: true });
      await database.drop();
    }
  });
});
