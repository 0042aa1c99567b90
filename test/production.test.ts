import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { makeDataDir, startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
import { apiCaller, spawnDarkroom, type DarkroomProcess } from './helpers/processes.ts';
import { startS3rver, type TestS3 } from './helpers/s3rver.ts';

const redisUrl = process.env.TEST_REDIS_URL;
const JOBS = 200;

/**
 * Production shape, for real: one `darkroom api` and two `darkroom worker` processes on Postgres,
 * BullMQ on Redis and S3 storage, driving another darkroom's RunPod dialect (the upstream) through a
 * proxy that counts what it receives. One worker is SIGKILLed mid-run.
 */
const ADMIN_KEY = 'production-admin-key-0123456789';

describe.skipIf(!testDatabaseUrl || !redisUrl)('production mode: api + two workers, Postgres, Redis, S3', () => {
  let upstream: TestDarkroom;
  let proxy: FaultProxy;
  let s3: TestS3;
  let dropDatabase: () => Promise<void> = async () => undefined;
  const processes: DarkroomProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    upstream = await startDarkroom({ MOCK_LATENCY_MS: '150-900', WORKER_CONCURRENCY: '16', AUTH: 'off' });
    proxy = await startFaultProxy(upstream.url);
    s3 = await startS3rver();
    const database = await createTestDatabase();
    dropDatabase = database.drop;
    env = {
      DATABASE_URL: database.url,
      QUEUE: 'redis',
      REDIS_URL: redisUrl as string,
      QUEUE_NAME: `production-${randomBytes(4).toString('hex')}`,
      ...s3.env('darkroom-production'),
      DATA_DIR: makeDataDir(),
      ADMIN_API_KEY: ADMIN_KEY,
      DEFAULT_PROVIDER: 'runpod',
      RUNPOD_API_URL: `${proxy.url}/v2`,
      RUNPOD_API_KEY: 'test-key',
      RUNPOD_ENDPOINT_ID: 'ep-production',
      RUNPOD_INPUT_FORMAT: 'sdxl',
      WORKER_CONCURRENCY: '6',
      RETRY_BASE_DELAY_MS: '50',
      RECONCILE_INTERVAL_MS: '1000',
      RECONCILE_STALE_MS: '8000',
      SHUTDOWN_GRACE_MS: '3000',
    };
    processes.push(await spawnDarkroom('api', env));
    processes.push(await spawnDarkroom('worker', env), await spawnDarkroom('worker', env));
  }, 90_000);

  afterAll(async () => {
    for (const process of processes) await process.stop('SIGKILL');
    await proxy?.close();
    await upstream?.close({ removeData: true });
    await s3?.close();
    await dropDatabase();
  });

  const isRun = (request: { method: string; path: string }) => request.method === 'POST' && request.path.endsWith('/run');

  it(`finishes ${JOBS} jobs with their images while a worker is killed, and the upstream sees each job once`, async () => {
    const api = processes[0]!.url as string;
    // The admin sees every job and the live workers in the queue stats.
    const call = apiCaller(api, ADMIN_KEY);

    const batches: string[] = [];
    for (let half = 0; half < 2; half += 1) {
      const prompts = Array.from({ length: JOBS / 2 }, (_, i) => `production ${half}-${i}`);
      const created = await call('POST', '/api/v1/jobs/batch', { prompts, width: 256, height: 256, seed: 42 });
      expect(created.status).toBe(202);
      batches.push(created.body.batchId as string);
    }
    const counts = async () => {
      const totals: Record<string, number> = {};
      for (const batch of batches) {
        const { body } = await call('GET', `/api/v1/batches/${batch}`);
        for (const [status, count] of Object.entries(body.counts as Record<string, number>)) totals[status] = (totals[status] ?? 0) + count;
      }
      return totals;
    };

    // Kill a worker mid-run, at a moment when no submission is between the upstream's answer and
    // darkroom's record of it (the one window no orchestrator can close without upstream idempotency).
    for (;;) {
      const now = await counts();
      if ((now.succeeded ?? 0) >= JOBS / 4 && (now.running ?? 0) > 0 && proxy.inFlight(isRun) === 0 && Date.now() - proxy.lastAnsweredAt(isRun) > 100) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await processes[1]!.stop('SIGKILL')).toBe('SIGKILL');

    const deadline = Date.now() + 150_000;
    for (;;) {
      const now = await counts();
      if ((now.succeeded ?? 0) + (now.failed ?? 0) + (now.cancelled ?? 0) + (now.expired ?? 0) === JOBS) break;
      if (Date.now() > deadline) throw new Error(`jobs still unfinished: ${JSON.stringify(now)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(await counts()).toMatchObject({ succeeded: JOBS });

    const jobs: { id: string; providerJobId: string; images: { url: string; width: number }[] }[] = [];
    for (const batch of batches) jobs.push(...((await call('GET', `/api/v1/batches/${batch}`)).body.jobs as typeof jobs));
    expect(jobs).toHaveLength(JOBS);
    for (const job of jobs) expect(job.images).toHaveLength(1);
    expect(new Set(jobs.map((job) => job.providerJobId)).size).toBe(JOBS);

    // The upstream received exactly one submission per job, and holds exactly those jobs.
    expect(proxy.count(isRun)).toBe(JOBS);
    const upstreamStats = (await upstream.api('GET', '/api/v1/queue/stats')).body;
    expect(upstreamStats.jobs.succeeded).toBe(JOBS);

    // Links point into S3 and serve the stored PNG.
    const sample = jobs[JOBS - 1]!.images[0]!;
    expect(sample.url.startsWith(s3.endpoint)).toBe(true);
    const png = await sharp(Buffer.from(await (await fetch(sample.url)).arrayBuffer())).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 256, 256]);

    const stats = (await call('GET', '/api/v1/queue/stats')).body as { queue: string; workers: { pid: number }[] };
    expect(stats.queue).toBe('redis');
    expect(stats.workers.map((worker) => worker.pid)).toContain(processes[2]!.child.pid);
  }, 240_000);
});
