import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';

const redisUrl = process.env.TEST_REDIS_URL;

describe.skipIf(!redisUrl)('darkroom on BullMQ over Redis', () => {
  const queueName = `darkroom-test-${randomUUID()}`;
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({
      QUEUE: 'redis',
      REDIS_URL: redisUrl as string,
      QUEUE_NAME: queueName,
      // Long enough that jobs are polled, so turns go back to BullMQ's delayed set and return.
      MOCK_LATENCY_MS: '50-200',
      // The mock provider gets a queue of its own, limited across workers.
      PROVIDER_CONCURRENCY: 'mock=3',
    });
  });
  afterAll(async () => {
    await dr.close({ removeData: true });
    // Leaves nothing behind in the shared Redis: the main queue and the mock provider's.
    for (const name of [queueName, `${queueName}-mock`]) {
      const queue = new Queue(name, { connection: { url: redisUrl } });
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('takes 20 jobs to succeeded through the Redis queue', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 20; index += 1) {
      const created = await dr.api('POST', '/api/v1/jobs', { prompt: `a lighthouse, take ${index}`, priority: index % 5 });
      expect(created.status).toBe(202);
      ids.push(created.body.id);
    }
    const jobs = await Promise.all(ids.map((id) => dr.waitForJob(id)));
    expect(jobs.map((job) => job.status)).toEqual(ids.map(() => 'succeeded'));

    const stats = await dr.api('GET', '/api/v1/queue/stats');
    expect(stats.body.queue).toBe('redis');
    expect(stats.body.jobs.succeeded).toBe(20);
    const ready = await dr.api('GET', '/ready');
    expect(ready.body.checks.queue).toBe('ok');
  });
});

describe.skipIf(!testDatabaseUrl)('darkroom on BullMQ over Postgres (QUEUE=postgres)', () => {
  let dr: TestDarkroom;
  let dropDatabase: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    // A database of its own: darkroom's tables and BullMQ's `bullmq` schema see only this test's jobs.
    const database = await createTestDatabase();
    dropDatabase = database.drop;
    dr = await startDarkroom({ QUEUE: 'postgres', DATABASE_URL: database.url, MOCK_LATENCY_MS: '50-200', PROVIDER_CONCURRENCY: 'mock=2' });
  });
  afterAll(async () => {
    await dr?.close({ removeData: true });
    await dropDatabase();
  });

  it('takes jobs to succeeded, cancels one, and reports the postgres queue', async () => {
    const created = await dr.api('POST', '/api/v1/jobs/batch', { prompts: Array.from({ length: 12 }, (_, i) => `postgres queue ${i}`), numImages: 2 });
    expect(created.status).toBe(202);
    const slow = await dr.api('POST', '/api/v1/jobs', { prompt: 'cancel me', deadline: new Date(Date.now() + 60_000).toISOString(), priority: -100 });
    const cancelled = await dr.api('POST', `/api/v1/jobs/${slow.body.id}/cancel`);
    expect([200, 409]).toContain(cancelled.status);
    for (const { id } of created.body.jobs as { id: string }[]) {
      const job = await dr.waitForJob(id);
      expect(job.status).toBe('succeeded');
      expect(job.images).toHaveLength(2);
    }
    const stats = await dr.api('GET', '/api/v1/queue/stats');
    expect(stats.body.queue).toBe('postgres');
    expect(stats.body.jobs.succeeded).toBeGreaterThanOrEqual(12);
    expect((await dr.api('GET', '/ready')).body.checks.queue).toBe('ok');
  });
});
