import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { startTcpCutter, type TcpCutter } from './helpers/tcp-cutter.ts';

const redisUrl = process.env.TEST_REDIS_URL;

describe.skipIf(!redisUrl)('Redis going away mid-run (QUEUE=redis)', () => {
  let cutter: TcpCutter;
  let dr: TestDarkroom;
  beforeAll(async () => {
    const target = new URL(redisUrl as string);
    cutter = await startTcpCutter({ host: target.hostname, port: Number(target.port || 6379) });
    dr = await startDarkroom({
      QUEUE: 'redis',
      REDIS_URL: `redis://127.0.0.1:${cutter.port}`,
      QUEUE_NAME: `outage-${randomBytes(4).toString('hex')}`,
      MOCK_LATENCY_MS: '100-600',
      RECONCILE_INTERVAL_MS: '500',
      RECONCILE_STALE_MS: '3000',
    });
  });
  afterAll(async () => {
    await dr?.close({ removeData: true });
    await cutter?.close();
  });

  it('loses no job when every Redis connection drops and Redis is unreachable for a while', async () => {
    const created = await dr.api('POST', '/api/v1/jobs/batch', { prompts: Array.from({ length: 30 }, (_, i) => `outage ${i}`), width: 128, height: 128 });
    expect(created.status).toBe(202);
    const ids = (created.body.jobs as { id: string }[]).map((job) => job.id);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const outage = cutter.outage(1500);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // A job submitted while Redis is away is committed all the same, and finishes once it is back.
    const during = await dr.api('POST', '/api/v1/jobs', { prompt: 'submitted during the outage', width: 128, height: 128 });
    expect(during.status).toBe(202);
    ids.push(during.body.id);
    await outage;
    for (const id of ids) {
      const job = await dr.waitForJob(id, undefined, 60_000);
      expect(job.status).toBe('succeeded');
      expect(job.images).toHaveLength(1);
    }
  }, 90_000);
});
