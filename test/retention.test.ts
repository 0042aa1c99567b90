import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { makeRetention } from '../src/core/retention.ts';
import type { ObjectStorage } from '../src/core/ports/storage.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { startReceiver } from './helpers/receiver.ts';
import { startS3rver } from './helpers/s3rver.ts';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silent } as never;

async function succeeded(dr: TestDarkroom, body: Record<string, unknown> = {}) {
  const created = await dr.api('POST', '/api/v1/jobs', { prompt: 'kept for a while', width: 64, height: 64, ...body });
  expect(created.status).toBe(202);
  expect((await dr.waitForJob(created.body.id as string)).status).toBe('succeeded');
  return (await dr.api('GET', `/api/v1/jobs/${created.body.id}`)).body;
}

const objectPath = (dr: TestDarkroom, url: string) => join(dr.dataDir, 'objects', decodeURIComponent(new URL(url).pathname.replace(/^\/files\//, '')));

describe('retention', () => {
  it('RETAIN_IMAGES: removes the files of old jobs, their links answer 410 and the job says when; newer jobs keep theirs', async () => {
    const dr = await startDarkroom({ RETAIN_IMAGES: '3s', RECONCILE_INTERVAL_MS: '100' });
    try {
      const old = await succeeded(dr);
      const link = old.images[0].url as string;
      expect((await fetch(link)).status).toBe(200);
      expect(existsSync(objectPath(dr, link))).toBe(true);

      await expect.poll(async () => (await dr.api('GET', `/api/v1/jobs/${old.id}`)).body.imagesExpiredAt, { timeout: 10_000 }).not.toBeNull();
      // Nothing early: a job that finished a moment ago keeps its image.
      const fresh = await succeeded(dr);
      expect(fresh.images).toHaveLength(1);
      expect((await fetch(fresh.images[0].url)).status).toBe(200);
      const after = (await dr.api('GET', `/api/v1/jobs/${old.id}`)).body;
      expect(after.status).toBe('succeeded');
      expect(after.images).toEqual([]);
      expect(Date.parse(after.imagesExpiredAt)).toBeGreaterThan(Date.parse(old.completedAt));
      await expect.poll(() => existsSync(objectPath(dr, link))).toBe(false);
      expect(existsSync(objectPath(dr, old.images[0].thumbnailUrl))).toBe(false);

      const gone = await fetch(link);
      expect(gone.status).toBe(410);
      expect(((await gone.json()) as { code: string }).code).toBe('images_expired');
      const endpoint = await dr.api('GET', `/api/v1/jobs/${old.id}/images/0`);
      expect(endpoint.status).toBe(410);
      expect(endpoint.body.detail).toMatch(/RETAIN_IMAGES/);
    } finally {
      await dr.close();
    }
  });

  it('RETAIN_JOBS and RETAIN_DELIVERIES: old jobs go with their events, images and unused inputs; deliveries go', async () => {
    const receiver = await startReceiver();
    const dr = await startDarkroom({ RETAIN_JOBS: '2s', RETAIN_DELIVERIES: '2s', RECONCILE_INTERVAL_MS: '100', WEBHOOK_ALLOW_PRIVATE: 'true' });
    try {
      const init = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3366cc' } }).png().toBuffer();
      const old = await succeeded(dr, { images: [{ role: 'init', data: init.toString('base64') }], webhook: receiver.url });
      await expect.poll(() => receiver.received.length).toBe(1);
      const files = [old.images[0].url, old.images[0].thumbnailUrl, old.inputs[0].url].map((url: string) => objectPath(dr, url));
      expect(files.every((path) => existsSync(path))).toBe(true);
      expect((await dr.api('GET', `/api/v1/jobs/${old.id}/webhooks`)).body.items).toHaveLength(1);

      await expect.poll(async () => (await dr.api('GET', `/api/v1/jobs/${old.id}`)).status, { timeout: 10_000 }).toBe(404);
      expect((await dr.api('GET', `/api/v1/jobs/${old.id}/events`)).status).toBe(404);
      expect(await dr.darkroom.repo.listEvents(old.id)).toEqual([]);
      await expect.poll(() => files.filter((path) => existsSync(path))).toEqual([]);
    } finally {
      await dr.close();
      await receiver.close();
    }
  });

  it('RETAIN_IMAGES on S3: the objects are deleted from the bucket and darkroom answers 410 for them', async () => {
    const s3 = await startS3rver();
    const dr = await startDarkroom({ ...s3.env('retention'), RETAIN_IMAGES: '2s', RECONCILE_INTERVAL_MS: '100' });
    try {
      const job = await succeeded(dr);
      const keys = (await dr.darkroom.repo.listImages([job.id])).flatMap((image) => [image.originalKey, image.thumbnailKey]);
      expect(await Promise.all(keys.map(async (key) => (await dr.darkroom.storage.get(key)) !== null))).toEqual([true, true]);
      await expect.poll(async () => (await dr.api('GET', `/api/v1/jobs/${job.id}`)).body.imagesExpiredAt, { timeout: 10_000 }).not.toBeNull();
      await expect.poll(async () => Promise.all(keys.map(async (key) => (await dr.darkroom.storage.get(key)) !== null))).toEqual([false, false]);
      expect((await dr.api('GET', `/api/v1/jobs/${job.id}/images/0?type=thumbnail`)).status).toBe(410);
      expect((await fetch(job.images[0].url as string)).status).toBe(404);
    } finally {
      await dr.close();
      await s3.close();
    }
  });

  it('a sweep that stops half-way leaves a consistent state that the next sweep finishes', async () => {
    const dr = await startDarkroom({ RECONCILE_INTERVAL_MS: '3600000' });
    try {
      const job = await succeeded(dr);
      const paths = [job.images[0].url, job.images[0].thumbnailUrl].map((url: string) => objectPath(dr, url));
      const storage = dr.darkroom.storage;
      const crashing: ObjectStorage = { ...storage, delete: async () => Promise.reject(new Error('killed mid-sweep')) };
      const deps = { repo: dr.darkroom.repo, deleteUnusedInputs: async () => undefined, pruneDeliveries: async () => 0, logger: silent };
      const later = new Date(Date.now() + 60_000);

      await expect(makeRetention({ imagesMs: 1000 }, { ...deps, storage: crashing }).sweep(later)).rejects.toThrow('killed mid-sweep');
      // Marked, files and rows still there: the job shows no image, and no row lost its file.
      const marked = (await dr.api('GET', `/api/v1/jobs/${job.id}`)).body;
      expect(marked.imagesExpiredAt).not.toBeNull();
      expect(marked.images).toEqual([]);
      expect(await dr.darkroom.repo.listImages([job.id])).toHaveLength(1);
      expect(paths.every((path) => existsSync(path))).toBe(true);

      expect(await makeRetention({ imagesMs: 1000 }, { ...deps, storage }).sweep(later)).toEqual({ images: 1, jobs: 0, deliveries: 0 });
      expect(await dr.darkroom.repo.listImages([job.id])).toEqual([]);
      expect(paths.some((path) => existsSync(path))).toBe(false);
      // Idempotent: nothing more to do.
      expect(await makeRetention({ imagesMs: 1000 }, { ...deps, storage }).sweep(later)).toEqual({ images: 0, jobs: 0, deliveries: 0 });
    } finally {
      await dr.close();
    }
  });
});
