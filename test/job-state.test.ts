import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canTransition, IllegalTransitionError, JOB_STATUSES, TRANSITIONS, type JobStatus } from '../src/core/job.ts';
import { openDatabase, type Database } from '../src/db/client.ts';
import { makeJobRepository } from '../src/db/jobs-repository.ts';
import type { JobStore } from '../src/core/ports/job-store.ts';
import { jobs } from '../src/db/schema.ts';
import { pgliteTemplate } from './helpers/darkroom.ts';

const LEGAL: [JobStatus, JobStatus][] = [
  ['queued', 'running'],
  ['queued', 'cancelled'],
  ['queued', 'expired'],
  ['queued', 'failed'],
  ['running', 'queued'],
  ['running', 'succeeded'],
  ['running', 'failed'],
  ['running', 'cancelled'],
  ['running', 'expired'],
];
const ALL_PAIRS = JOB_STATUSES.flatMap((from) => JOB_STATUSES.map((to) => [from, to] as [JobStatus, JobStatus]));
const isLegal = (from: JobStatus, to: JobStatus) => LEGAL.some(([a, b]) => a === from && b === to);

describe('job state machine', () => {
  it('allows exactly the documented transitions', () => {
    for (const [from, to] of ALL_PAIRS) expect(canTransition(from, to), `${from} → ${to}`).toBe(isLegal(from, to));
    expect(Object.values(TRANSITIONS).flat()).toHaveLength(LEGAL.length);
  });

  it('never leaves a terminal status', () => {
    for (const status of ['succeeded', 'failed', 'cancelled', 'expired'] as const) expect(TRANSITIONS[status]).toEqual([]);
  });
});

const databases: [string, () => Promise<Database>][] = [['pglite', () => openDatabase({ dataDir: null, template: pgliteTemplate() })]];
if (process.env.TEST_DATABASE_URL) {
  databases.push(['postgres', () => openDatabase({ url: process.env.TEST_DATABASE_URL })]);
}

describe.each(databases)('compare-and-set transitions on %s', (_name, open) => {
  let database: Database;
  let repo: JobStore;
  beforeAll(async () => {
    database = await open();
    await database.migrate();
    repo = makeJobRepository(database.db);
  });
  afterAll(() => database.close());

  async function jobIn(status: JobStatus): Promise<string> {
    const id = uuidv7();
    await database.db.insert(jobs).values({
      id,
      dialect: 'test',
      status,
      provider: 'mock',
      request: { prompt: 'x', width: 64, height: 64, numImages: 1, priority: 0 },
      maxAttempts: 3,
    });
    return id;
  }

  it.each(ALL_PAIRS)('%s → %s', async (from, to) => {
    const id = await jobIn(from);
    if (!isLegal(from, to)) {
      await expect(repo.transition(id, [from], to)).rejects.toBeInstanceOf(IllegalTransitionError);
      expect((await repo.get(id))?.status).toBe(from);
      return;
    }
    const moved = await repo.transition(id, [from], to, { stage: null });
    expect(moved?.status).toBe(to);
    expect((await repo.get(id))?.status).toBe(to);
    const events = await repo.listEvents(id);
    expect(events.map((event) => event.status)).toEqual([to]);
  });

  it('refuses a change when the status is no longer the expected one', async () => {
    const id = await jobIn('running');
    expect(await repo.transition(id, ['queued'], 'running')).toBeNull();
    expect((await repo.get(id))?.status).toBe('running');
  });

  it('lets exactly one of two racing actors win (cancel vs succeed)', async () => {
    for (let round = 0; round < 20; round += 1) {
      const id = await jobIn('running');
      const [cancelled, succeeded] = await Promise.all([
        repo.transition(id, ['queued', 'running'], 'cancelled'),
        repo.transition(id, ['running'], 'succeeded'),
      ]);
      expect([cancelled, succeeded].filter(Boolean)).toHaveLength(1);
      const final = await repo.get(id);
      expect(final?.status).toBe(cancelled ? 'cancelled' : 'succeeded');
      expect(await repo.listEvents(id)).toHaveLength(1);
    }
  });
});
