import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobEventMessage } from '../src/core/ports/events.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

describe('job events and waiting (one process)', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ MOCK_LATENCY_MS: '300' });
  });
  afterAll(() => dr.close({ removeData: true }));

  it('publishes every event row, in order, ending with the terminal status', async () => {
    const heard: JobEventMessage[] = [];
    const unsubscribe = dr.darkroom.events.subscribe((message) => heard.push(message));
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'listen', numImages: 2 });
    await dr.waitForJob(body.id);
    unsubscribe();
    const mine = heard.filter((message) => message.jobId === body.id);
    const stored = (await dr.api('GET', `/api/v1/jobs/${body.id}/events`)).body.items as { id: number; type: string; status: string }[];
    expect(mine.map((message) => [message.id, message.type, message.status])).toEqual(stored.map((event) => [event.id, event.type, event.status]));
    expect(mine[0]).toMatchObject({ type: 'created', status: 'queued' });
    expect(mine.filter((message) => message.type === 'image')).toHaveLength(2);
    expect(mine.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
  });

  it('GET /api/v1/jobs/{id}?wait= answers when the job finishes', async () => {
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'wait for me' });
    const waited = await dr.api('GET', `/api/v1/jobs/${body.id}?wait=20`);
    expect(waited.status).toBe(200);
    expect(waited.body.status).toBe('succeeded');
    expect(waited.body.images).toHaveLength(1);
  });

  it('answers the current state when the wait ends, and refuses bad waits', async () => {
    const slow = await startDarkroom({ MOCK_LATENCY_MS: '60000' });
    try {
      const { body } = await slow.api('POST', '/api/v1/jobs', { prompt: 'slow' });
      const waited = await slow.api('GET', `/api/v1/jobs/${body.id}?wait=1`);
      expect(waited.status).toBe(200);
      expect(['queued', 'running']).toContain(waited.body.status);
    } finally {
      await slow.close({ removeData: true });
    }
    expect((await dr.api('GET', '/api/v1/jobs/0190a7a2-7b7e-7000-8000-000000000000?wait=1')).status).toBe(404);
    const tooLong = await dr.api('GET', '/api/v1/jobs/0190a7a2-7b7e-7000-8000-000000000000?wait=61');
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors).toEqual([{ in: 'querystring', field: 'wait', message: 'must be <= 60' }]);
  });
});

describe.skipIf(!testDatabaseUrl)('job events across processes (Postgres LISTEN/NOTIFY)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()?.();
  });

  it('a job finished by another darkroom wakes a waiter on this one', async () => {
    const database = await createTestDatabase();
    cleanups.push(database.drop);
    const api = await startDarkroom({ DATABASE_URL: database.url, WORKER_CONCURRENCY: '0' });
    cleanups.push(() => api.close({ removeData: true }));
    expect(api.darkroom.events.kind).toBe('postgres');

    const { body } = await api.api('POST', '/api/v1/jobs', { prompt: 'made here, finished there' });
    const waiting = api.api('GET', `/api/v1/jobs/${body.id}?wait=30`);
    // The second darkroom shares the database; it resumes the unfinished job and runs it.
    const worker = await startDarkroom({ DATABASE_URL: database.url, MOCK_LATENCY_MS: '200' });
    cleanups.push(() => worker.close({ removeData: true }));
    const answer = await waiting;
    expect(answer.body.status).toBe('succeeded');
    expect(answer.body.images).toHaveLength(1);
  });
});
