import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import type { Job } from '../src/core/job.ts';
import { ActiveCapExceeded, type NewJob } from '../src/core/ports/job-store.ts';
import { makeDataDir, startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { spawnDarkroom, type DarkroomProcess } from './helpers/processes.ts';

/** A new job row like `model`, under another id (and owner, when given). */
function like(model: Job, changes: Partial<NewJob> = {}): NewJob {
  const { stage, progress, queuePosition, providerJobId, attempts, error, timings, runAfter, cost, ...rest } = model;
  return { ...rest, stage, progress, queuePosition, providerJobId, attempts, error, timings, runAfter, cost, id: uuidv7(), ...changes };
}

describe('group commit of concurrent submissions', () => {
  let dr: TestDarkroom | undefined;
  afterEach(async () => {
    await dr?.close({ removeData: true });
    dr = undefined;
  });

  async function modelJob(server: TestDarkroom): Promise<Job> {
    const { body } = await server.api('POST', '/api/v1/jobs', { prompt: 'model row' });
    const job = await server.darkroom.repo.get(body.id);
    if (!job) throw new Error('the model job is missing');
    return job;
  }

  it('stores every submission of a group with its created event, and refuses only the one that breaks a constraint', async () => {
    dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
    const { repo } = dr.darkroom;
    const model = await modelJob(dr);
    const first = like(model);
    const rows = [first, like(model), { ...first }, like(model), like(model)];
    // All five go in one group, where one repeats another's id: the group fails, and each goes again alone.
    const results = await Promise.allSettled(rows.map((row) => repo.insertJobs([row])));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    for (const [index, result] of results.entries()) {
      if (result.status !== 'fulfilled') continue;
      expect(result.value.map((job) => job.id)).toEqual([rows[index]?.id]);
      const events = await repo.listEvents(rows[index]?.id as string);
      expect(events.map((event) => event.type)).toEqual(['created']);
    }
    expect((await repo.getMany(rows.map((row) => row.id))).map((job) => job.id).sort()).toEqual([...new Set(rows.map((row) => row.id))].sort());
  });

  it('judges each submission of a group alone against its owner cap, in arrival order', async () => {
    dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
    const { repo } = dr.darkroom;
    const model = await modelJob(dr);
    const cap = { owner: 'key:capped', max: 5 };
    const sizes = [2, 2, 2, 1, 1, 3, 1];
    const results = await Promise.allSettled(sizes.map((size) => repo.insertJobs(Array.from({ length: size }, () => like(model, { owner: cap.owner })), cap)));
    // 2 + 2 fit, the third pair would make 6, the single makes 5, and nothing fits after that.
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ActiveCapExceeded);
    expect((await repo.countByStatus({ owner: cap.owner })).queued).toBe(5);
  });
});

describe('group commit and a crash', () => {
  const processes: DarkroomProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('every job answered 202 before a SIGKILL in the middle of concurrent submissions exists after the restart and runs', async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const env = { DATA_DIR: dataDir, MOCK_LATENCY_MS: '0', WORKER_CONCURRENCY: '2' };
    const first = await spawnDarkroom('serve', env);
    processes.push(first);
    const answered: string[] = [];
    let stop = false;
    const submit = async (client: number) => {
      for (let n = 0; !stop; n += 1) {
        const response = await fetch(`${first.url}/api/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: `client ${client} job ${n}`, width: 64, height: 64 }),
        }).catch(() => undefined);
        if (!response) return;
        if (response.status === 202) answered.push(((await response.json()) as { id: string }).id);
      }
    };
    const clients = Array.from({ length: 16 }, (_, client) => submit(client));
    // Killed while the 16 clients keep submissions in flight, so a group is (most likely) mid-commit.
    while (answered.length < 100) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    stop = true;
    await Promise.all(clients);

    const second = await spawnDarkroom('serve', env);
    processes.push(second);
    for (const id of answered) {
      let status: string;
      for (;;) {
        const response = await fetch(`${second.url}/api/v1/jobs/${id}`);
        expect(response.status).toBe(200);
        status = ((await response.json()) as { status: string }).status;
        if (!['queued', 'running'].includes(status)) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(status).toBe('succeeded');
    }
  }, 120_000);
});
