import { existsSync, readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { makeDataDir } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
import { apiCaller, spawnDarkroom, type DarkroomProcess } from './helpers/processes.ts';

const ADMIN = 'retention-crash-admin-key-0123456';
const JOBS = 60;
const IMAGES_PER_JOB = 10;

/** Every file under `dir`, as a key relative to it. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
}

/**
 * A darkroom process SIGKILLed in the middle of a retention sweep (the moment the first image file
 * disappears from storage), then another process started on the same database and storage: what
 * the first left is consistent, and the second finishes the sweep.
 */
describe.skipIf(!testDatabaseUrl)('retention killed mid-sweep (real processes, Postgres, fs storage)', () => {
  it('leaves no file without its row and no shown image without its file; the next process finishes; no job is deleted early', async () => {
    const database = await createTestDatabase();
    const dataDir = makeDataDir();
    const objects = join(dataDir, 'objects');
    const env = { DATABASE_URL: database.url, DATA_DIR: dataDir, ADMIN_API_KEY: ADMIN, MOCK_LATENCY_MS: '0' };
    const sql = new pg.Pool({ connectionString: database.url });
    const processes: DarkroomProcess[] = [];
    const watchers: { close(): void }[] = [];
    try {
      // 1. A first process makes the images, with no retention.
      const maker = await spawnDarkroom('serve', { ...env, WORKER_CONCURRENCY: '8' });
      processes.push(maker);
      const api = apiCaller(maker.url as string, ADMIN);
      const batch = await api('POST', '/api/v1/jobs/batch', { prompts: Array.from({ length: JOBS }, (_, index) => `kept for a moment ${index}`), width: 64, height: 64, numImages: IMAGES_PER_JOB });
      expect(batch.status).toBe(202);
      const succeeded = async () => (await sql.query<{ n: number }>(`select count(*)::int as n from jobs where status = 'succeeded'`)).rows[0]?.n;
      await expect.poll(succeeded, { timeout: 120_000, interval: 250 }).toBe(JOBS);
      const [sample] = (await sql.query<{ id: string }>('select id from jobs order by id limit 1')).rows;
      const sampleView = (await api('GET', `/api/v1/jobs/${sample?.id}`)).body as { images: { url: string; thumbnailUrl: string }[] };
      expect(sampleView.images).toHaveLength(IMAGES_PER_JOB);
      const links = [sampleView.images[0]?.url, sampleView.images[0]?.thumbnailUrl].map((link) => new URL(link as string));
      expect(filesUnder(join(objects, 'jobs'))).toHaveLength(JOBS * IMAGES_PER_JOB * 2);
      expect(await maker.stop('SIGTERM')).toBe(0);

      // 2. A process with a short RETAIN_IMAGES, killed the moment its sweep deletes the first file.
      const retained = { ...env, RETAIN_IMAGES: '1s', RETAIN_JOBS: '1h', WORKER_CONCURRENCY: '0' };
      let sweeper: DarkroomProcess | undefined;
      let deletionSeen = false;
      const killed = new Promise<void>((resolve) => {
        const kill = () => {
          if (sweeper?.child.kill('SIGKILL')) resolve();
        };
        for (const dir of readdirSync(join(objects, 'jobs'))) {
          const watcher = watch(join(objects, 'jobs', dir), (event, name) => {
            if (deletionSeen || event !== 'rename' || !name || existsSync(join(objects, 'jobs', dir, name))) return;
            deletionSeen = true;
            kill();
          });
          watchers.push(watcher);
        }
        // The first sweep starts a second after the process says it runs, so the watchers normally
        // see the deletion with `sweeper` known; if not, it is killed as soon as it is.
        void spawnDarkroom('serve', { ...retained, RECONCILE_INTERVAL_MS: '1000' }).then((started) => {
          sweeper = started;
          processes.push(started);
          if (deletionSeen) kill();
        });
      });
      await killed;
      for (const watcher of watchers) watcher.close();
      expect(await sweeper?.stop()).toBe('SIGKILL');

      // What the killed process left: it was mid-sweep (some files gone, some rows left) and consistent.
      const rows = (
        await sql.query<{ original_key: string; thumbnail_key: string; images_expired_at: Date | null }>(
          'select i.original_key, i.thumbnail_key, j.images_expired_at from images i join jobs j on j.id = i.job_id',
        )
      ).rows;
      const files = new Set(filesUnder(objects).filter((key) => key.startsWith('jobs/')));
      expect(files.size).toBeLessThan(JOBS * IMAGES_PER_JOB * 2);
      expect(rows.length).toBeGreaterThan(0);
      const keysOfRows = new Set(rows.flatMap((row) => [row.original_key, row.thumbnail_key]));
      // A file never exists without its row…
      expect([...files].filter((key) => !keysOfRows.has(key))).toEqual([]);
      // …and a row whose job is not marked expired (so its views show it) still has its files.
      expect(rows.filter((row) => row.images_expired_at === null && !(files.has(row.original_key) && files.has(row.thumbnail_key)))).toEqual([]);
      expect((await sql.query<{ n: number }>('select count(*)::int as n from jobs')).rows[0]?.n).toBe(JOBS);

      // 3. The next process finishes the sweep (the killed one's lock went with its connection).
      const finisher = await spawnDarkroom('serve', { ...retained, RECONCILE_INTERVAL_MS: '100' });
      processes.push(finisher);
      await expect.poll(async () => (await sql.query<{ n: number }>('select count(*)::int as n from images')).rows[0]?.n, { timeout: 60_000, interval: 200 }).toBe(0);
      expect(filesUnder(join(objects, 'jobs'))).toEqual([]);
      const jobs = (await sql.query<{ status: string; images_expired_at: Date | null }>('select status, images_expired_at from jobs')).rows;
      expect(jobs).toHaveLength(JOBS);
      expect(jobs.every((job) => job.status === 'succeeded' && job.images_expired_at !== null)).toBe(true);

      // Links handed out before answer 410 now; so does the API.
      const origin = new URL(finisher.url as string);
      for (const link of links) {
        link.host = origin.host;
        const gone = await fetch(link);
        expect(gone.status).toBe(410);
        expect(((await gone.json()) as { code: string }).code).toBe('images_expired');
      }
      const later = apiCaller(finisher.url as string, ADMIN);
      expect((await later('GET', `/api/v1/jobs/${sample?.id}/images/0`)).status).toBe(410);
      expect((await later('GET', `/api/v1/jobs/${sample?.id}`)).body).toMatchObject({ status: 'succeeded', images: [] });
      expect(await finisher.stop('SIGTERM')).toBe(0);
    } finally {
      for (const watcher of watchers) watcher.close();
      for (const process of processes) await process.stop('SIGKILL');
      await sql.end();
      await database.drop();
    }
  }, 240_000);
});
