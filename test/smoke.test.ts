import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

describe('embedded darkroom, end to end', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom();
  });
  afterAll(() => dr.close({ removeData: true }));

  it('takes a job to succeeded and serves a PNG original and a 128×128 WebP thumbnail', async () => {
    const created = await dr.api('POST', '/api/v1/jobs', { prompt: 'a lighthouse at dusk', width: 640, height: 384, numImages: 2, seed: 11 });
    expect(created.status).toBe(202);
    expect(created.body.status).toBe('queued');
    const job = await dr.waitForJob(created.body.id);
    expect(job.status).toBe('succeeded');
    const images = job.images as { url: string; thumbnailUrl: string; seed: number; width: number; height: number }[];
    expect(images.map((image) => image.seed)).toEqual([11, 12]);

    const original = await fetch(images[0]!.url);
    expect(original.headers.get('content-type')).toBe('image/png');
    const originalMeta = await sharp(Buffer.from(await original.arrayBuffer())).metadata();
    expect([originalMeta.format, originalMeta.width, originalMeta.height]).toEqual(['png', 640, 384]);

    const thumbnail = await fetch(images[0]!.thumbnailUrl);
    expect(thumbnail.headers.get('content-type')).toBe('image/webp');
    const thumbnailMeta = await sharp(Buffer.from(await thumbnail.arrayBuffer())).metadata();
    expect([thumbnailMeta.format, thumbnailMeta.width, thumbnailMeta.height]).toEqual(['webp', 128, 128]);
  });
});

describe('providers', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom();
  });
  afterAll(() => dr.close({ removeData: true }));

  it('lists the configured providers with their health', async () => {
    const { status, body } = await dr.api('GET', '/api/v1/providers');
    expect(status).toBe(200);
    expect(body.items).toEqual([
      {
        name: 'mock',
        default: true,
        healthy: true,
        detail: 'The mock provider runs in-process',
        latencyMs: expect.any(Number),
        circuit: { state: 'closed', openedAt: null, retryAt: null, consecutiveFailures: 0, pausedUntil: null },
        fallback: [],
        recent: { calls: 0, errorRate: null, p50LatencyMs: null },
        queued: 0,
      },
    ]);
  });

  it('tests one provider, and answers 404 for one that is not configured', async () => {
    expect((await dr.api('POST', '/api/v1/providers/mock/test')).body).toMatchObject({ name: 'mock', healthy: true });
    const missing = await dr.api('POST', '/api/v1/providers/civitai/test');
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toBe('Provider civitai is not configured (available: mock)');
    expect((await dr.api('POST', '/api/v1/providers/Bad%20Name/test')).status).toBe(400);
  });
});

describe('batches', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom();
  });
  afterAll(() => dr.close({ removeData: true }));

  it('applies shared options to every entry of `jobs` unless the entry sets its own', async () => {
    const { status, body } = await dr.api('POST', '/api/v1/jobs/batch', {
      width: 256,
      height: 320,
      numImages: 2,
      jobs: [{ prompt: 'shared size' }, { prompt: 'own size', width: 128, numImages: 1 }],
    });
    expect(status).toBe(202);
    const [shared, own] = body.jobs as { request: { width: number; height: number; numImages: number } }[];
    expect(shared!.request).toMatchObject({ width: 256, height: 320, numImages: 2 });
    expect(own!.request).toMatchObject({ width: 128, height: 320, numImages: 1 });
    const batch = await dr.api('GET', `/api/v1/batches/${body.batchId}`);
    expect(batch.body.total).toBe(2);
  });
});
