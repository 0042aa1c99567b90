import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';

/**
 * Fair scheduling through darkroom's public interface: tenant A queues 500 jobs (five batches of
 * 100), then tenant B queues 5 (one POST each). One worker slot and an instant mock, so every job
 * runs whole in its first turn and A's backlog drains one job at a time while B arrives.
 *
 * How it is measured: from the API, each job's `createdAt` and `startedAt` (server clock, the same
 * process). B's arrival is the `createdAt` of B's first job; B is done waiting when the last of B's
 * jobs has a `startedAt`. The count is A's jobs whose `startedAt` falls between the two. Without
 * fairness B would wait behind A's whole remaining backlog, so the test also checks that the
 * backlog was there: at least 100 of A's jobs had not started when B's first job arrived. (In a
 * first-in-first-out queue all of them start while B waits; here about one per B job does.)
 */

const ADMIN = 'admin-key-for-the-fairness-tests';
const A_JOBS = 500;
const B_JOBS = 5;

interface Timed {
  id: string;
  createdAt: string;
  startedAt: string | null;
}

async function allJobs(dr: TestDarkroom, auth: Record<string, string>): Promise<Timed[]> {
  const jobs: Timed[] = [];
  let cursor: string | null = null;
  do {
    const page = await dr.api('GET', `/api/v1/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`, undefined, auth);
    expect(page.status).toBe(200);
    jobs.push(...(page.body.items as Timed[]));
    cursor = page.body.nextCursor as string | null;
  } while (cursor);
  return jobs;
}

async function tenantsTakeTurns(env: Record<string, string>): Promise<void> {
  const dr = await startDarkroom({ ...env, ADMIN_API_KEY: ADMIN, WORKER_CONCURRENCY: '1', MOCK_LATENCY_MS: '0' });
  try {
    const tenant = async (name: string) => {
      const created = await dr.api('POST', '/api/v1/keys', { name }, { authorization: `Bearer ${ADMIN}` });
      expect(created.status).toBe(201);
      return { authorization: `Bearer ${created.body.key}` };
    };
    const a = await tenant('tenant-a');
    const b = await tenant('tenant-b');

    for (let batch = 0; batch < A_JOBS / 100; batch += 1) {
      const prompts = Array.from({ length: 100 }, (_, index) => `a's backlog ${batch * 100 + index}`);
      const created = await dr.api('POST', '/api/v1/jobs/batch', { prompts, width: 64, height: 64 }, a);
      expect(created.status).toBe(202);
    }
    for (let index = 0; index < B_JOBS; index += 1) {
      const created = await dr.api('POST', '/api/v1/jobs', { prompt: `b's job ${index}`, width: 64, height: 64 }, b);
      expect(created.status).toBe(202);
    }
    let bJobs = await allJobs(dr, b);
    while (bJobs.some((job) => job.startedAt === null)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      bJobs = await allJobs(dr, b);
    }
    const aJobs = await allJobs(dr, a);
    expect(aJobs).toHaveLength(A_JOBS);
    const bArrived = Math.min(...bJobs.map((job) => Date.parse(job.createdAt)));
    const bLastStarted = Math.max(...bJobs.map((job) => Date.parse(job.startedAt as string)));
    const aStarted = aJobs.filter((job) => job.startedAt !== null).map((job) => Date.parse(job.startedAt as string));
    const aStartedMeanwhile = aStarted.filter((at) => at > bArrived && at <= bLastStarted).length;
    const aBacklogWhenBArrived = A_JOBS - aStarted.filter((at) => at <= bArrived).length;

    // The premise: B arrived behind a backlog that first-in-first-out would have made it wait for.
    expect(aBacklogWhenBArrived).toBeGreaterThanOrEqual(100);
    expect(aStartedMeanwhile).toBeLessThan(A_JOBS / 10);
  } finally {
    await dr.close({ removeData: true });
  }
}

// Submitting 500 jobs takes seconds on a loaded machine; the measure does not depend on it.
describe('fair scheduling across tenants', { timeout: 180_000 }, () => {
  it('starts all of B\'s 5 jobs before A starts 50 more of its 500, on the embedded queue', async () => {
    await tenantsTakeTurns({});
  });

  const redisUrl = process.env.TEST_REDIS_URL;
  it.skipIf(!redisUrl)('does the same on BullMQ over Redis', async () => {
    const queueName = `darkroom-fairness-${randomUUID()}`;
    try {
      await tenantsTakeTurns({ QUEUE: 'redis', REDIS_URL: redisUrl as string, QUEUE_NAME: queueName });
    } finally {
      const queue = new Queue(queueName, { connection: { url: redisUrl } });
      await queue.obliterate({ force: true });
      await queue.close();
      // The held jobs of A's unfinished backlog are kept beside the queue, in keys of darkroom's own.
      const redis = new Redis(redisUrl as string);
      const keys = await redis.keys(`bull:${queueName}:darkroom-fair:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });

  it.skipIf(!testDatabaseUrl)('does the same on BullMQ over Postgres', async () => {
    const database = await createTestDatabase();
    try {
      await tenantsTakeTurns({ QUEUE: 'postgres', DATABASE_URL: database.url });
    } finally {
      await database.drop();
    }
  });
});
