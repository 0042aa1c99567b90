import { afterEach, describe, expect, it } from 'vitest';
import { makeCachedJobStore } from '../src/core/job-cache.ts';
import type { JobStore } from '../src/core/ports/job-store.ts';
import type { EventBus } from '../src/core/ports/events.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';

const ADMIN = 'cache-admin-key-0123456789';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ORDER = ['queued', 'running', 'succeeded'];

/** A bus that never delivers another process's messages: a LISTEN connection that lost them all. */
const deaf = (bus: EventBus): EventBus => ({
  ...bus,
  subscribe: (listener) => bus.subscribe((message, origin) => origin === 'this-process' && listener(message, origin)),
});

/** Runs `action` while `store.get` is held at its gate; answers what the held read returned once released. */
function gatedGets(store: JobStore) {
  let held: { release: () => void } | undefined;
  const gated: JobStore = {
    ...store,
    async get(id) {
      const row = await store.get(id);
      if (held) await new Promise<void>((resolve) => (held = { release: resolve }));
      return row;
    },
  };
  return {
    store: gated,
    hold: () => (held = { release: () => undefined }),
    release: () => {
      const gate = held;
      held = undefined;
      gate?.release();
    },
  };
}

describe('job cache in one process', () => {
  let dr: TestDarkroom | undefined;
  afterEach(async () => {
    await dr?.close({ removeData: true });
    dr = undefined;
  });

  it('answers a change at once to the next read: cancel, then GET', async () => {
    dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
    const { body: job } = await dr.api('POST', '/api/v1/jobs', { prompt: 'cached' });
    // Read twice: the second read is served from memory.
    expect((await dr.api('GET', `/api/v1/jobs/${job.id}`)).body.status).toBe('queued');
    expect((await dr.api('GET', `/api/v1/jobs/${job.id}`)).body.status).toBe('queued');
    expect((await dr.api('POST', `/api/v1/jobs/${job.id}/cancel`)).body.status).toBe('cancelled');
    const read = await dr.api('GET', `/api/v1/jobs/${job.id}`);
    expect(read.body).toMatchObject({ status: 'cancelled', completedAt: expect.any(String) });
  });

  it('never shows a reader an older status than one it has seen while the worker changes the job', async () => {
    dr = await startDarkroom({ MOCK_LATENCY_MS: '200' });
    const { body } = await dr.api('POST', '/api/v1/jobs/batch', { jobs: Array.from({ length: 4 }, (_, index) => ({ prompt: `watched ${index}` })) });
    const ids = (body.jobs as { id: string }[]).map((job) => job.id);
    const server = dr;
    const watch = async (id: string): Promise<string[]> => {
      const seen: string[] = [];
      for (;;) {
        const { body: job } = await server.api('GET', `/api/v1/jobs/${id}`);
        if (seen.at(-1) !== job.status) seen.push(job.status);
        if (job.status === 'succeeded') return seen;
      }
    };
    // Two readers per job, reading as fast as the server answers.
    const histories = await Promise.all([...ids, ...ids].map(watch));
    for (const seen of histories) {
      expect(seen.map((status) => ORDER.indexOf(status))).toEqual([...seen.map((status) => ORDER.indexOf(status))].sort());
      expect(seen.at(-1)).toBe('succeeded');
    }
    // The images the worker stored are in the answer the moment the job says succeeded.
    for (const id of ids) expect((await dr.api('GET', `/api/v1/jobs/${id}`)).body.images).toHaveLength(1);
  });

  it('answers readers that miss together with one query, and later readers from memory', async () => {
    dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
    const { body: job } = await dr.api('POST', '/api/v1/jobs', { prompt: 'popular' });
    const { repo } = dr.darkroom;
    let queries = 0;
    const counted = makeCachedJobStore(
      {
        ...repo,
        get: (id) => {
          queries += 1;
          return repo.get(id);
        },
      },
      { ttlMs: 60_000, maxEntries: 10 },
    );
    const rows = await Promise.all(Array.from({ length: 20 }, () => counted.get(job.id)));
    expect(rows.map((row) => row?.id)).toEqual(Array.from({ length: 20 }, () => job.id));
    expect((await counted.get(job.id))?.status).toBe('queued');
    expect(queries).toBe(1);
  });

  it('does not keep a row read before a write that finished while the read was under way', async () => {
    dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
    const { body: job } = await dr.api('POST', '/api/v1/jobs', { prompt: 'raced' });
    const gate = gatedGets(dr.darkroom.repo);
    const cached = makeCachedJobStore(gate.store, { ttlMs: 60_000, maxEntries: 10 });
    cached.invalidate(job.id);
    gate.hold();
    const staleRead = cached.get(job.id);
    await sleep(50);
    const cancelled = await cached.transition(job.id, ['queued'], 'cancelled', { completedAt: new Date() });
    expect(cancelled?.status).toBe('cancelled');
    gate.release();
    // The read began before the cancel and answers the row it read; it must not be remembered.
    expect((await staleRead)?.status).toBe('queued');
    expect((await cached.get(job.id))?.status).toBe('cancelled');
  });
});

describe.skipIf(!testDatabaseUrl)('job and key caches across processes (Postgres)', () => {
  const running: TestDarkroom[] = [];
  const drops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((dr) => dr.close({ removeData: true })));
    await Promise.all(drops.splice(0).map((drop) => drop()));
  });

  async function twoApis(second: Parameters<typeof startDarkroom>[1] = {}): Promise<[TestDarkroom, TestDarkroom]> {
    const database = await createTestDatabase();
    drops.push(database.drop);
    const env = { DATABASE_URL: database.url, WORKER_CONCURRENCY: '0', ADMIN_API_KEY: ADMIN, AUTH: 'optional' };
    const a = await startDarkroom(env);
    running.push(a);
    const b = await startDarkroom(env, second);
    running.push(b);
    return [a, b];
  }

  it('a change made by one process reaches the other through the event bus, long before its cache would expire', async () => {
    const [a, b] = await twoApis({ cacheTtlMs: 600_000 });
    const { body: job } = await a.api('POST', '/api/v1/jobs', { prompt: 'shared' });
    expect((await b.api('GET', `/api/v1/jobs/${job.id}`)).body.status).toBe('queued');
    expect((await a.api('POST', `/api/v1/jobs/${job.id}/cancel`)).body.status).toBe('cancelled');
    // With a ten-minute TTL only the bus can make b read the row again.
    const seen = await b.waitForJob(job.id, ['cancelled'], 10_000);
    expect(seen.status).toBe('cancelled');
  });

  it('a change whose message was lost shows in the other process once the cache entry is a second old', async () => {
    const [a, b] = await twoApis({ wrapEvents: deaf });
    const { body: job } = await a.api('POST', '/api/v1/jobs', { prompt: 'unheard' });
    expect((await b.api('GET', `/api/v1/jobs/${job.id}`)).body.status).toBe('queued');
    expect((await a.api('POST', `/api/v1/jobs/${job.id}/cancel`)).body.status).toBe('cancelled');
    await sleep(1100);
    expect((await b.api('GET', `/api/v1/jobs/${job.id}`)).body.status).toBe('cancelled');
  });

  it('a key revoked in one process is refused at once there and within a second in the other', async () => {
    const [a, b] = await twoApis();
    const { body: key } = await a.api('POST', '/api/v1/keys', { name: 'revoked soon' }, bearer(ADMIN));
    // Both processes have verified (and cached) the key.
    expect((await a.api('GET', '/api/v1/jobs', undefined, bearer(key.key))).status).toBe(200);
    expect((await b.api('GET', '/api/v1/jobs', undefined, bearer(key.key))).status).toBe(200);
    expect((await a.api('DELETE', `/api/v1/keys/${key.id}`, undefined, bearer(ADMIN))).status).toBe(204);
    expect((await a.api('GET', '/api/v1/jobs', undefined, bearer(key.key))).status).toBe(401);
    await sleep(1100);
    expect((await b.api('GET', '/api/v1/jobs', undefined, bearer(key.key))).status).toBe(401);
  });
});
