import { createHash } from 'node:crypto';
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
  upstreamJobId?: (providerJobId: string) => string;
  /**
   * Input images the provider sends upstream, each switching on its case: an init image changed by
   * strength (`imageToImage`), and an init image with a mask (`inpainting`). The cases expect the
   * service to carry the images and the strength unchanged (the upstream darkroom stores the very
   * bytes darkroom was given, and its job has the same strength), and the picture to be the one the
   * upstream's mock renders from them; a service that re-encodes an image on the way (a mask turned
   * into an alpha channel) needs its own comparison.
   */
  inputs?: { imageToImage?: boolean; inpainting?: boolean };
  /**
   * For a service whose answers carry no job id (OpenAI's synchronous calls): finds the upstream
   * darkroom's native job id for the job darkroom saved as `providerJobId`.
   */
  findUpstreamJob?: (providerJobId: string, upstream: TestDarkroom) => Promise<string>;
  /** How the service refuses a prompt on content grounds; the job must fail at once with `content_filtered`. */
  contentRefusal?: { status: number; body: string };
  /** Whether the provider takes an init image and a mask: then the upstream must receive both, and keep the image where the mask is black. */
  inpainting?: boolean;
  /**
   * How many jobs the upstream has made, for a service whose answer comes only on the request that
   * asked (A1111): a restarted provider sends that request again under its idempotency key, so the
   * restart test counts upstream jobs instead of submit requests.
   */
  upstreamJobs?: (upstream: TestDarkroom) => Promise<number>;
}

/** An init image (a solid colour) and darkroom's mask for it: white (change) on the left half, black (keep) on the right. */
async function inpaintingInputs(width: number, height: number) {
  const init = await sharp({ create: { width, height, channels: 3, background: '#c81e1e' } }).png().toBuffer();
  const pixels = Buffer.alloc(width * height);
  for (let y = 0; y < height; y += 1) pixels.fill(255, y * width, y * width + width / 2);
  const mask = await sharp(pixels, { raw: { width, height, channels: 1 } }).png().toBuffer();
  return { init, mask, maskPixels: pixels };
}

interface StoredInput {
  role: string;
  sha256: string;
  width: number;
  height: number;
  url: string;
}

/** A picture with structure (a gradient and shapes), so that what the mock does with it shows in its pixels. */
async function initPicture(width: number, height: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g"><stop offset="0" stop-color="#2a7"/><stop offset="1" stop-color="#a27"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/><circle cx="${width / 4}" cy="${height / 2}" r="${height / 5}" fill="#fe3"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Black (keep) on the left half, white (repaint) on the right. */
async function rightHalfMask(width: number, height: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#000"/><rect x="${width / 2}" width="${width / 2}" height="100%" fill="#fff"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const download = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());

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
    const upstreamJob = async (providerJobId: string) => {
      const id = spec.findUpstreamJob ? await spec.findUpstreamJob(providerJobId, upstream) : spec.upstreamJobId ? spec.upstreamJobId(providerJobId) : providerJobId;
      return (await upstream.api('GET', `/api/v1/jobs/${id}`)).body;
    };

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

    it.runIf(spec.contentRefusal !== undefined)('fails at once with content_filtered when the service refuses the content', async () => {
      const before = submits();
      const refusal = spec.contentRefusal as { status: number; body: string };
      proxy.inject({ match: spec.isSubmit, times: 1, respond: refusal });
      const job = await darkroom.waitForJob(await create());
      expect(job.status).toBe('failed');
      expect(job.attempts).toBe(1);
      expect(job.error).toMatchObject({ code: 'content_filtered', retryable: false });
      expect(submits() - before).toBe(1);
    });

    it.runIf(spec.inpainting === true)('sends an init image and its mask: the upstream receives both and keeps the image where the mask is black', async () => {
      const { width, height } = spec.request;
      const { init, mask, maskPixels } = await inpaintingInputs(width, height);
      const id = await create({
        images: [
          { role: 'init', data: init.toString('base64') },
          { role: 'mask', data: `data:image/png;base64,${mask.toString('base64')}` },
        ],
      });
      const job = await darkroom.waitForJob(id);
      expect(job.status).toBe('succeeded');
      const far = await upstreamJob(job.providerJobId as string);
      expect(far.inputs.map((input: { role: string }) => input.role)).toEqual(['init', 'mask']);
      // The init image arrives byte for byte; the mask may travel in the service's own convention, but means the same pixels.
      expect(far.inputs[0].sha256).toBe(createHash('sha256').update(init).digest('hex'));
      const farMask = Buffer.from(await (await fetch(far.inputs[1].url)).arrayBuffer());
      const farPixels = await sharp(farMask).toColourspace('b-w').raw().toBuffer();
      expect(farPixels.equals(maskPixels)).toBe(true);
      const result = Buffer.from(await (await fetch((job.images as { url: string }[])[0]!.url)).arrayBuffer());
      const { data } = await sharp(result).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const at = (x: number, y: number) => [...data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3)];
      expect(at(width - 10, height / 2)).toEqual([200, 30, 30]);
      expect(at(10, height / 2)).not.toEqual([200, 30, 30]);
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

    /**
     * Runs `images` through the provider and checks the far side: the upstream job stored exactly
     * these bytes, and the picture is the one the upstream's mock renders from them when asked
     * directly (darkroom's own API on the upstream, no provider in between). Returns the output's
     * raw pixels and the init image's, at the requested size.
     */
    async function runWithInputs(images: { role: string; bytes: Buffer }[], strength: number) {
      const { width, height } = spec.request;
      const job = await darkroom.waitForJob(
        await create({ seed: 4321, strength, images: images.map(({ role, bytes }) => ({ role, data: bytes.toString('base64') })) }),
      );
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      const upstreamView = await upstreamJob(job.providerJobId as string);
      const stored = upstreamView.inputs as StoredInput[];
      expect(stored.map((input) => [input.role, input.sha256])).toEqual(images.map(({ role, bytes }) => [role, sha256(bytes)]));
      for (const [index, input] of stored.entries()) expect((await download(input.url)).equals(images[index]!.bytes)).toBe(true);
      expect(upstreamView.request).toMatchObject({ strength });

      const output = await download((job.images as { url: string }[])[0]!.url);
      const direct = await upstream.api('POST', '/api/v1/jobs', {
        prompt: 'a lighthouse in a storm',
        width,
        height,
        seed: 4321,
        strength,
        provider: 'mock',
        images: images.map(({ role, bytes }) => ({ role, data: bytes.toString('base64') })),
      });
      expect(direct.status, JSON.stringify(direct.body)).toBe(202);
      const rendered = await upstream.waitForJob(direct.body.id as string);
      const expected = await download((rendered.images as { url: string }[])[0]!.url);
      expect(output.equals(expected)).toBe(true);

      const pixels = (bytes: Buffer) => sharp(bytes).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();
      return { output: await pixels(output), init: await pixels(images[0]!.bytes) };
    }

    /** Largest per-channel difference between two raw RGB pictures over the columns [from, to). */
    function difference(a: Buffer, b: Buffer, from: number, to: number): number {
      const { width } = spec.request;
      let largest = 0;
      for (let offset = 0; offset < a.length; offset += 3) {
        const column = (offset / 3) % width;
        if (column < from || column >= to) continue;
        for (let channel = 0; channel < 3; channel += 1) largest = Math.max(largest, Math.abs(a[offset + channel]! - b[offset + channel]!));
      }
      return largest;
    }

    it.runIf(spec.inputs?.imageToImage)('sends an init image upstream byte for byte; strength 0 gives it back', async () => {
      const { width, height } = spec.request;
      const init = await initPicture(width, height);
      const kept = await runWithInputs([{ role: 'init', bytes: init }], 0);
      expect(difference(kept.output, kept.init, 0, width)).toBeLessThanOrEqual(2);
      const changed = await runWithInputs([{ role: 'init', bytes: init }], 0.6);
      expect(difference(changed.output, changed.init, 0, width)).toBeGreaterThan(10);
    });

    it.runIf(spec.inputs?.inpainting)('sends an init image and a mask upstream byte for byte; only the white half changes', async () => {
      const { width, height } = spec.request;
      const [init, mask] = await Promise.all([initPicture(width, height), rightHalfMask(width, height)]);
      const { output, init: initPixels } = await runWithInputs(
        [
          { role: 'init', bytes: init },
          { role: 'mask', bytes: mask },
        ],
        0.8,
      );
      // A few columns either side of the mask's edge are left out, for resampling.
      expect(difference(output, initPixels, 0, width / 2 - 4)).toBeLessThanOrEqual(2);
      expect(difference(output, initPixels, width / 2 + 4, width)).toBeGreaterThan(10);
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
