import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeScriptedProvider } from './helpers/providers.ts';
import { makeDataDir, startDarkroom } from './helpers/darkroom.ts';
import { spawnDarkroom } from './helpers/processes.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

/** Stored objects; a write cut short by SIGKILL can leave a `*.tmp` file, which is never a stored object. */
const countFiles = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (sum, entry) => sum + (entry.isDirectory() ? countFiles(join(dir, entry.name)) : entry.name.endsWith('.tmp') ? 0 : 1),
    0,
  );

describe('restart', () => {
  it('a restarted darkroom polls the saved upstream jobs and never submits them again', async () => {
    const first = await startDarkroom({ MOCK_LATENCY_MS: '1500' }, { persist: true });
    const created = await first.api('POST', '/api/v1/jobs/batch', { jobs: [1, 2, 3].map((n) => ({ prompt: `resume ${n}`, numImages: n })) });
    const ids = (created.body.jobs as { id: string }[]).map((job) => job.id);
    for (const id of ids) {
      await first.waitForJob(id, ['running']);
      while (!(await first.api('GET', `/api/v1/jobs/${id}`)).body.providerJobId) await new Promise((r) => setTimeout(r, 10));
    }
    const before = await Promise.all(ids.map(async (id) => (await first.api('GET', `/api/v1/jobs/${id}`)).body));
    await first.darkroom.close();

    const scripted = makeScriptedProvider({});
    const second = await startDarkroom({}, { dataDir: first.dataDir, providers: [scripted.provider] });
    cleanups.push(() => second.close({ removeData: true }));
    for (const [index, id] of ids.entries()) {
      const job = await second.waitForJob(id);
      expect(job.status).toBe('succeeded');
      expect(job.providerJobId).toBe(before[index].providerJobId);
      expect(job.images).toHaveLength(index + 1);
    }
    expect(scripted.calls.submit).toBe(0);
  });

  it('after SIGKILL of `darkroom serve`, a new one finishes every job with exactly numImages images', async () => {
    const dataDir = makeDataDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const env = { DATA_DIR: dataDir, MOCK_LATENCY_MS: '200-1200', WORKER_CONCURRENCY: '3', LOG_LEVEL: 'info' };

    const first = await spawnDarkroom('serve', env);
    cleanups.push(async () => void (await first.stop('SIGKILL')));
    const prompts = Array.from({ length: 12 }, (_, i) => ({ prompt: `killed mid-run ${i}`, numImages: (i % 3) + 1, width: 256, height: 256 }));
    const created = (await (
      await fetch(`${first.url}/api/v1/jobs/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs: prompts }) })
    ).json()) as { jobs: { id: string }[] };
    const ids = created.jobs.map((job) => job.id);
    // Kill once some jobs are finished and others are in flight.
    for (;;) {
      const stats = (await (await fetch(`${first.url}/api/v1/queue/stats`)).json()) as { jobs: Record<string, number> };
      if ((stats.jobs.succeeded ?? 0) >= 2 && (stats.jobs.running ?? 0) >= 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');

    const second = await spawnDarkroom('serve', env);
    cleanups.push(async () => void (await second.stop('SIGKILL')));
    let total = 0;
    for (const [index, id] of ids.entries()) {
      let job: { status: string; images: unknown[] };
      for (;;) {
        job = (await (await fetch(`${second.url}/api/v1/jobs/${id}`)).json()) as typeof job;
        if (!['queued', 'running'].includes(job.status)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(job.status).toBe('succeeded');
      expect(job.images).toHaveLength(prompts[index]!.numImages);
      total += prompts[index]!.numImages;
    }
    // One original and one thumbnail per image, and not a file more.
    expect(countFiles(join(dataDir, 'objects'))).toBe(total * 2);
    expect(await second.stop('SIGTERM')).toBe(0);
  });
});
