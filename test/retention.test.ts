import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { count, sql } from 'drizzle-orm';
import pg from 'pg';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { makeRetention } from '../src/core/retention.ts';
import type { ObjectStorage } from '../src/core/ports/storage.ts';
import { makeExclusiveLock } from '../src/db/exclusive-lock.ts';
import { idempotencyKeys } from '../src/db/schema.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
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

  it('RETAIN_UPLOADS and idempotency keys: expired uploads go, with their bytes unless a job uses them; expired keys go; both counted', async () => {
    const token = 'scraper-token-for-the-retention-test';
    const dr = await startDarkroom({ RETAIN_UPLOADS: '2s', RECONCILE_INTERVAL_MS: '100', METRICS_TOKEN: token });
    try {
      const picture = (background: string) => sharp({ create: { width: 64, height: 64, channels: 3, background } }).png().toBuffer();
      const [kept, dropped] = await Promise.all([picture('#aa3300'), picture('#0033aa')]);
      const uploads = await Promise.all(
        [kept, dropped].map(async (bytes) => {
          const response = await fetch(`${dr.url}/api/v1/uploads`, { method: 'POST', body: new Uint8Array(bytes), headers: { 'content-type': 'image/png' } });
          expect(response.status).toBe(201);
          return (await response.json()) as { id: string; expiresAt: string };
        }),
      );
      const [used, unused] = uploads as [{ id: string; expiresAt: string }, { id: string; expiresAt: string }];
      expect(Date.parse(unused.expiresAt) - Date.now()).toBeLessThanOrEqual(2000);
      const paths = [kept, dropped].map((bytes) => join(dr.dataDir, 'objects', 'inputs', `${createHash('sha256').update(bytes).digest('hex')}.png`));
      expect(paths.every((path) => existsSync(path))).toBe(true);
      const job = await succeeded(dr, { images: [{ role: 'init', uploadId: used.id }], strength: 0 });

      const keyed = await dr.api('POST', '/api/v1/jobs', { prompt: 'once', width: 64, height: 64 }, { 'idempotency-key': 'a-day-old-key' });
      expect(keyed.status).toBe(202);
      const keys = async () => (await dr.darkroom.database.db.select({ n: count() }).from(idempotencyKeys))[0];
      expect(await keys()).toEqual({ n: 1 });
      // A key made more than a day ago (IDEMPOTENCY_TTL) has expired.
      await dr.darkroom.database.db.execute(sql`update idempotency_keys set created_at = created_at - interval '25 hours'`);

      await expect.poll(() => existsSync(paths[1] as string), { timeout: 10_000 }).toBe(false);
      expect((await dr.api('GET', `/api/v1/uploads/${unused.id}`)).status).toBe(404);
      expect((await dr.api('GET', `/api/v1/uploads/${used.id}`)).status).toBe(404);
      // The job's input image stays with the job.
      expect(existsSync(paths[0] as string)).toBe(true);
      expect((await fetch((await dr.api('GET', `/api/v1/jobs/${job.id}`)).body.inputs[0].url)).status).toBe(200);
      await expect.poll(keys).toEqual({ n: 0 });
      // The two uploads expire within milliseconds of each other, so they may go in two sweeps.
      const metrics = async () => (await fetch(`${dr.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      await expect.poll(metrics).toContain('darkroom_retention_removed_total{kind="uploads"} 2');
      expect(await metrics()).toContain('darkroom_retention_removed_total{kind="idempotency_keys"} 1');
    } finally {
      await dr.close();
    }
  });

  it.skipIf(!testDatabaseUrl)('one process sweeps at a time: another skips while the lock is held, and takes it once its holder is gone', async () => {
    const database = await createTestDatabase();
    const dr = await startDarkroom({ DATABASE_URL: database.url, RECONCILE_INTERVAL_MS: '3600000' });
    // Two more "processes": each a pool of its own, so a session of its own on the server.
    const pools = [new pg.Pool({ connectionString: database.url }), new pg.Pool({ connectionString: database.url })] as const;
    try {
      const job = await succeeded(dr);
      const deps = {
        repo: dr.darkroom.repo,
        storage: dr.darkroom.storage,
        deleteUnusedInputs: async () => undefined,
        pruneDeliveries: async () => 0,
        sweepUploads: async () => 0,
        pruneIdempotencyKeys: async () => 0,
        logger: silent,
      };
      const [first, second] = pools.map((pool) => makeRetention({ imagesMs: 1000 }, { ...deps, exclusive: makeExclusiveLock({ name: 'darkroom:retention', pool, logger: silent }) }));
      const later = new Date(Date.now() + 60_000);

      // A task that holds the first process's lock until let go.
      const holder = makeExclusiveLock({ name: 'darkroom:retention', pool: pools[0], logger: silent });
      let letGo = () => undefined as void;
      let holding = () => undefined as void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const holds = holder(() => new Promise<void>((resolve) => ((letGo = resolve), holding())));
      await held;
      expect(await second!.sweep(later)).toMatchObject({ swept: false, removed: { images: 0 } });
      expect(await first!.sweep(later)).toMatchObject({ swept: false });
      expect((await dr.api('GET', `/api/v1/jobs/${job.id}`)).body.images).toHaveLength(1);
      letGo();
      expect(await holds).toBe(true);
      expect(await second!.sweep(later)).toMatchObject({ swept: true, removed: { images: 1 } });

      // A holder whose session dies (as when its process is killed) leaves no lock behind.
      let release = () => undefined as void;
      let acquired = () => undefined as void;
      const isHeld = new Promise<void>((resolve) => (acquired = resolve));
      // Tried until it holds: a try that meets the sweep above still finishing is refused, as it should be.
      const stuck = (async () => {
        for (;;) {
          const ran = await holder(() => new Promise<void>((resolve) => ((release = resolve), acquired())));
          if (ran) return ran;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      await isHeld;
      expect((await second!.sweep(later)).swept).toBe(false);
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      const killed = await admin.query(
        `select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database()) and pid <> pg_backend_pid()`,
      );
      await admin.end();
      expect(killed.rowCount).toBe(1);
      await expect.poll(async () => (await second!.sweep(later)).swept).toBe(true);
      release();
      expect(await stuck).toBe(true);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
      await dr.close();
      await database.drop();
    }
  });

  it('a sweep that stops half-way leaves a consistent state that the next sweep finishes', async () => {
    const dr = await startDarkroom({ RECONCILE_INTERVAL_MS: '3600000' });
    try {
      const job = await succeeded(dr);
      const paths = [job.images[0].url, job.images[0].thumbnailUrl].map((url: string) => objectPath(dr, url));
      const storage = dr.darkroom.storage;
      const crashing: ObjectStorage = { ...storage, delete: async () => Promise.reject(new Error('killed mid-sweep')) };
      const deps = {
        repo: dr.darkroom.repo,
        deleteUnusedInputs: async () => undefined,
        pruneDeliveries: async () => 0,
        sweepUploads: async () => 0,
        pruneIdempotencyKeys: async () => 0,
        exclusive: async (task: () => Promise<void>) => (await task(), true),
        logger: silent,
      };
      const none = { images: 0, jobs: 0, deliveries: 0, uploads: 0, idempotency_keys: 0 };
      const later = new Date(Date.now() + 60_000);

      await expect(makeRetention({ imagesMs: 1000 }, { ...deps, storage: crashing }).sweep(later)).rejects.toThrow('killed mid-sweep');
      // Marked, files and rows still there: the job shows no image, and no row lost its file.
      const marked = (await dr.api('GET', `/api/v1/jobs/${job.id}`)).body;
      expect(marked.imagesExpiredAt).not.toBeNull();
      expect(marked.images).toEqual([]);
      expect(await dr.darkroom.repo.listImages([job.id])).toHaveLength(1);
      expect(paths.every((path) => existsSync(path))).toBe(true);

      expect(await makeRetention({ imagesMs: 1000 }, { ...deps, storage }).sweep(later)).toEqual({ swept: true, removed: { ...none, images: 1 } });
      expect(await dr.darkroom.repo.listImages([job.id])).toEqual([]);
      expect(paths.some((path) => existsSync(path))).toBe(false);
      // Idempotent: nothing more to do.
      expect(await makeRetention({ imagesMs: 1000 }, { ...deps, storage }).sweep(later)).toEqual({ swept: true, removed: none });
    } finally {
      await dr.close();
    }
  });
});
