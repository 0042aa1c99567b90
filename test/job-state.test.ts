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

/** A job row with `status`, written straight to the table (the store never inserts a job past queued). */
async function insertJob(database: Database, status: JobStatus): Promise<string> {
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

describe.each(databases)('compare-and-set transitions on %s', (_name, open) => {
  let database: Database;
  let repo: JobStore;
  beforeAll(async () => {
    database = await open();
    await database.migrate();
    repo = makeJobRepository(database.db);
  });
  afterAll(() => database.close());

  const jobIn = (status: JobStatus) => insertJob(database, status);

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

describe.each(databases)('job leases on %s', (_name, open) => {
  let database: Database;
  let repo: JobStore;
  beforeAll(async () => {
    database = await open();
    await database.migrate();
    repo = makeJobRepository(database.db);
  });
  afterAll(() => database.close());

  const LONG = 60_000;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  const jobIn = (status: JobStatus) => insertJob(database, status);

  async function acquired(id: string, durationMs = LONG): Promise<number> {
    const claim = await repo.acquireLease(id, durationMs);
    if (claim.outcome !== 'acquired') throw new Error(`expected to acquire the lease of ${id}, got ${claim.outcome}`);
    return claim.token;
  }

  const image = (jobId: string) => ({
    id: uuidv7(),
    jobId,
    index: 0,
    originalKey: `jobs/${jobId}/0-original.png`,
    thumbnailKey: `jobs/${jobId}/0-thumbnail.webp`,
    contentType: 'image/png',
    width: 64,
    height: 64,
    bytes: 10,
    sha256: 'x'.repeat(64),
    seed: null,
  });

  it('lets one turn hold a job; a second is told how long the lease still runs', async () => {
    const id = await jobIn('queued');
    const claim = await repo.acquireLease(id, LONG);
    expect(claim).toMatchObject({ outcome: 'acquired', job: { id, status: 'queued' } });
    const second = await repo.acquireLease(id, LONG);
    expect(second.outcome).toBe('held');
    if (second.outcome === 'held') {
      expect(second.expiresInMs).toBeGreaterThan(0);
      expect(second.expiresInMs).toBeLessThanOrEqual(LONG);
    }
  });

  it('hands a released lease to the next turn with a newer token', async () => {
    const id = await jobIn('running');
    const first = await acquired(id);
    await repo.releaseLease(id, first);
    const second = await acquired(id);
    expect(second).toBeGreaterThan(first);
  });

  it('fences a turn whose lease expired and was taken over: none of its writes changes anything', async () => {
    const id = await jobIn('running');
    const stale = await acquired(id, 50);
    await sleep(150);
    const current = await acquired(id);
    expect(current).toBeGreaterThan(stale);

    expect(await repo.update(id, 'running', { progress: 0.5, providerJobId: 'stale' }, { type: 'progress' }, stale)).toBeNull();
    expect(await repo.transition(id, ['running'], 'succeeded', {}, undefined, stale)).toBeNull();
    expect(await repo.succeed(id, [image(id)], {}, { type: 'status' }, stale)).toBeNull();
    expect(await repo.renewLease(id, stale, LONG)).toBe(false);
    await repo.releaseLease(id, stale);
    expect((await repo.acquireLease(id, LONG)).outcome).toBe('held');
    expect(await repo.get(id)).toMatchObject({ status: 'running', progress: null, providerJobId: null });
    expect(await repo.listImages([id])).toEqual([]);
    expect(await repo.listEvents(id)).toEqual([]);

    // The current holder writes as usual.
    expect(await repo.update(id, 'running', { providerJobId: 'current' }, undefined, current)).toMatchObject({ providerJobId: 'current' });
    expect(await repo.succeed(id, [image(id)], { completedAt: new Date() }, { type: 'status' }, current)).toMatchObject({ status: 'succeeded' });
    expect(await repo.listImages([id])).toHaveLength(1);
    expect((await repo.listEvents(id)).map((event) => [event.type, event.status])).toEqual([
      ['image', 'running'],
      ['status', 'succeeded'],
    ]);
  });

  it('lets an expired holder carry on until someone else takes the lease', async () => {
    const id = await jobIn('running');
    const token = await acquired(id, 50);
    await sleep(150);
    expect(await repo.update(id, 'running', { progress: 0.25 }, undefined, token)).toMatchObject({ progress: 0.25 });
    expect(await repo.renewLease(id, token, LONG)).toBe(true);
    expect((await repo.acquireLease(id, LONG)).outcome).toBe('held');
  });

  it('lets a cancel (no token) win against the holder, whose next write is refused', async () => {
    const id = await jobIn('running');
    const token = await acquired(id);
    expect(await repo.transition(id, ['queued', 'running'], 'cancelled')).toMatchObject({ status: 'cancelled' });
    expect(await repo.update(id, 'running', { progress: 1 }, undefined, token)).toBeNull();
    expect(await repo.succeed(id, [image(id)], {}, { type: 'status' }, token)).toBeNull();
    expect(await repo.listImages([id])).toEqual([]);
    expect((await repo.get(id))?.status).toBe('cancelled');
  });

  it('has nothing to lease on a final or missing job', async () => {
    const done = await jobIn('succeeded');
    expect(await repo.acquireLease(done, LONG)).toMatchObject({ outcome: 'finished', job: { id: done } });
    expect(await repo.acquireLease(uuidv7(), LONG)).toEqual({ outcome: 'finished', job: null });
  });

  it('gives the lease to exactly one of several turns acquiring it at once', async () => {
    for (let round = 0; round < 20; round += 1) {
      const id = await jobIn('queued');
      const claims = await Promise.all(Array.from({ length: 4 }, () => repo.acquireLease(id, LONG)));
      expect(claims.filter((claim) => claim.outcome === 'acquired')).toHaveLength(1);
      expect(claims.filter((claim) => claim.outcome === 'held')).toHaveLength(3);
    }
  });
});
