import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMockImage } from '../../src/providers/mock/image.ts';
import { startFaultProxy, type FaultProxy, type FaultRule } from './fault-proxy.ts';
import { startDarkroom, type TestDarkroom } from './darkroom.ts';

type Match = FaultRule['match'];

export interface ProviderContractSpec {
  /** The provider under test, as named in DEFAULT_PROVIDER. */
  provider: string;
  /** Environment that points the provider at `baseUrl` (the proxy in front of the upstream dialect). */
  env: (baseUrl: string) => Record<string, string>;
  /** Environment of the upstream darkroom that serves the dialect (keys the dialect requires, …). */
  upstreamEnv?: Record<string, string>;
  /** The key the test reads the upstream darkroom with, when upstreamEnv requires one (the provider's key). */
  upstreamKey?: string;
  /** Recognises the provider's submit request and its status polls, as the proxy sees them. */
  isSubmit: Match;
  isPoll: Match;
  /** Largest numImages one upstream job can produce (Fusion Brain: 1). */
  maxImages: number;
  /** A request the upstream accepts (sizes within its limits). */
  request: { width: number; height: number };
  /** Whether the upstream service can cancel a job (Fusion Brain cannot). */
  cancelsUpstream: boolean;
  /** Whether the service takes a seed and reports it back (default true; Fusion Brain does neither). */
  seeds?: boolean;
  /** Upstream's id for a job, as darkroom saved it, mapped to the upstream darkroom's native job id. */
  upstreamJobId?: (providerJobId: string, upstream: TestDarkroom) => string | Promise<string>;
  /**
   * How many jobs the upstream has made, for a service whose answer comes only on the request that
   * asked (A1111): a restarted provider sends that request again under its idempotency key, so the
   * restart test counts upstream jobs instead of submit requests.
   */
  upstreamJobs?: (upstream: TestDarkroom) => Promise<number>;
}

/**
 * The one suite every HTTP provider passes: the provider drives a second, in-process darkroom that
 * serves the service's dialect with the mock provider, through a proxy that injects faults.
 */
export function providerContract(spec: ProviderContractSpec): void {
  describe(`provider contract: ${spec.provider}`, () => {
    let upstream: TestDarkroom;
    let proxy: FaultProxy;
    let darkroom: TestDarkroom;

    const start = (dataDir?: string) =>
      startDarkroom(
        { DEFAULT_PROVIDER: spec.provider, PROVIDER_TIMEOUT_MS: '1500', RETRY_BASE_DELAY_MS: '20', RETRY_MAX_DELAY_MS: '200', ...spec.env(proxy.url) },
        // On disk: one test restarts it on the same DATA_DIR.
        dataDir ? { dataDir } : { persist: true },
      );

    beforeAll(async () => {
      upstream = await startDarkroom({ MOCK_LATENCY_MS: '400', AUTH: 'off', ...spec.upstreamEnv }, { apiKey: spec.upstreamKey });
      proxy = await startFaultProxy(upstream.url);
      darkroom = await start();
    });
    afterAll(async () => {
      await darkroom?.close({ removeData: true });
      await proxy?.close();
      await upstream?.close({ removeData: true });
    });

    const submits = () => proxy.count(spec.isSubmit);
    const create = async (extra: Record<string, unknown> = {}) => {
      const { status, body } = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'a lighthouse in a storm', ...spec.request, ...extra });
      expect(status).toBe(202);
      expect(body.provider).toBe(spec.provider);
      return body.id as string;
    };
    const upstreamJob = async (providerJobId: string) =>
      (await upstream.api('GET', `/api/v1/jobs/${spec.upstreamJobId ? await spec.upstreamJobId(providerJobId, upstream) : providerJobId}`)).body;

    it('stores exactly the bytes the mock renders for the same prompt, seed and size', async () => {
      const before = submits();
      const id = await create({ seed: 1234 });
      const job = await darkroom.waitForJob(id);
      expect(job.status).toBe('succeeded');
      expect(submits() - before).toBe(1);
      const image = (job.images as { url: string; seed: number | null; thumbnailUrl: string }[])[0]!;
      const bytes = Buffer.from(await (await fetch(image.url)).arrayBuffer());
      // A service without seeds renders with one of its own: the upstream job says which.
      const seeds = spec.seeds ?? true;
      const seed = seeds ? 1234 : ((await upstreamJob(job.providerJobId as string)).images[0].seed as number);
      const expected = await renderMockImage('a lighthouse in a storm', seed, spec.request.width, spec.request.height);
      expect(bytes.equals(expected)).toBe(true);
      expect(image.seed).toBe(seeds ? 1234 : null);
      const thumbnail = await sharp(Buffer.from(await (await fetch(image.thumbnailUrl)).arrayBuffer())).metadata();
      expect([thumbnail.format, thumbnail.width, thumbnail.height]).toEqual(['webp', 128, 128]);
    });

    it('returns several images', async () => {
      const count = Math.min(3, spec.maxImages);
      const job = await darkroom.waitForJob(await create({ numImages: count, seed: 77 }));
      expect(job.status).toBe('succeeded');
      expect((job.images as unknown[]).length).toBe(count);
    });

    it('retries after an upstream 5xx and then succeeds', async () => {
      proxy.inject({ match: spec.isSubmit, times: 1, respond: { status: 503, body: '{"error":"overloaded"}' } });
      const job = await darkroom.waitForJob(await create());
      expect(job.status).toBe('succeeded');
      expect(job.attempts).toBe(2);
    });

    it('honours 429 with Retry-After', async () => {
      proxy.inject({ match: spec.isSubmit, times: 1, respond: { status: 429, headers: { 'retry-after': '1' }, body: '{"error":"slow down"}' } });
      const id = await create();
      const job = await darkroom.waitForJob(id);
      expect(job.status).toBe('succeeded');
      const events = (await darkroom.api('GET', `/api/v1/jobs/${id}/events`)).body.items as { status: string; data: { retryInMs?: number } }[];
      const retry = events.find((event) => event.status === 'queued' && event.data.retryInMs !== undefined);
      expect(retry?.data.retryInMs).toBeGreaterThanOrEqual(1000);
    });

    it('treats an upstream that does not answer in time as retryable', async () => {
      proxy.inject({ match: spec.isPoll, times: 1, delayMs: 2500 });
      const job = await darkroom.waitForJob(await create(), undefined, 30_000);
      expect(job.status).toBe('succeeded');
    });

    it('fails at once on a permanent 4xx, with the upstream message', async () => {
      const before = submits();
      proxy.inject({ match: spec.isSubmit, times: 1, respond: { status: 400, body: '{"error":"invalid request: bad things","detail":"invalid request: bad things","message":"invalid request: bad things"}' } });
      const job = await darkroom.waitForJob(await create());
      expect(job.status).toBe('failed');
      expect(job.attempts).toBe(1);
      expect(job.error).toMatchObject({ retryable: false });
      expect((job.error as { message: string }).message).toContain('bad things');
      expect(submits() - before).toBe(1);
    });

    it('cancels mid-run, upstream too where the service can', async () => {
      const id = await create();
      let providerJobId: string | null = null;
      while (!providerJobId) {
        providerJobId = (await darkroom.api('GET', `/api/v1/jobs/${id}`)).body.providerJobId;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const cancelled = await darkroom.api('POST', `/api/v1/jobs/${id}/cancel`);
      expect(cancelled.status).toBe(200);
      if (spec.cancelsUpstream) {
        const upstreamView = await upstreamJob(providerJobId);
        expect(upstreamView.status).toBe('cancelled');
      }
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await darkroom.api('GET', `/api/v1/jobs/${id}`)).body.status).toBe('cancelled');
    });

    it('after a restart mid-poll, polls the same upstream job and never submits again', async () => {
      const submissions = () => (spec.upstreamJobs ? spec.upstreamJobs(upstream) : Promise.resolve(submits()));
      const before = await submissions();
      const id = await create();
      await darkroom.waitForJob(id, ['running']);
      while (!(await darkroom.api('GET', `/api/v1/jobs/${id}`)).body.providerJobId) await new Promise((resolve) => setTimeout(resolve, 10));
      const dataDir = darkroom.dataDir;
      await darkroom.close();
      darkroom = await start(dataDir);
      const job = await darkroom.waitForJob(id);
      expect(job.status).toBe('succeeded');
      expect((await submissions()) - before).toBe(1);
    });
  });
}
