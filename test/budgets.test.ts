import { describe, expect, it } from 'vitest';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
import { startDarkroom } from './helpers/darkroom.ts';

const ADMIN = 'admin-key-for-the-budget-tests-012';

/** 20 submissions at once against a key whose budget allows exactly 7 of them. */
async function edgeOfBudget(env: Record<string, string>) {
  const dr = await startDarkroom({ ...env, ADMIN_API_KEY: ADMIN, PROVIDER_PRICES: 'mock=0.1/image', WORKER_CONCURRENCY: '0' });
  try {
    const created = await dr.api('POST', '/api/v1/keys', { name: 'tenant', budget: { amount: 0.7, period: 'day' } }, { authorization: `Bearer ${ADMIN}` });
    expect(created.status).toBe(201);
    expect(created.body.budget).toEqual({ amount: 0.7, period: 'day' });
    const tenant = { authorization: `Bearer ${created.body.key}` };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, index) => dr.api('POST', '/api/v1/jobs', { prompt: `job ${index}`, width: 64, height: 64 }, tenant)));
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses.filter((status) => status === 202)).toHaveLength(7);
    expect(statuses.filter((status) => status === 402)).toHaveLength(13);
    const refused = answers.find((answer) => answer.status === 402);
    expect(refused?.body).toMatchObject({ status: 402, code: 'budget_exceeded' });
    expect(refused?.body.detail).toMatch(/budget is 0\.7 USD a day and 0 USD of it is left; this job is estimated at 0\.1 USD/);
    // What was refused was never stored; what was taken is there.
    expect((await dr.api('GET', '/api/v1/jobs?limit=100', undefined, tenant)).body.items).toHaveLength(7);
    // Another key, and a caller without a budget, are not held by it.
    const other = await dr.api('POST', '/api/v1/keys', { name: 'other', budget: { amount: 0.25, period: 'month' } }, { authorization: `Bearer ${ADMIN}` });
    const batch = await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['a', 'b', 'c'], width: 64, height: 64 }, { authorization: `Bearer ${other.body.key}` });
    expect(batch.status).toBe(402);
    expect(batch.body.detail).toMatch(/these jobs are estimated at 0\.3 USD/);
    expect((await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['a', 'b'], width: 64, height: 64 }, { authorization: `Bearer ${other.body.key}` })).status).toBe(202);
    expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'admin', width: 64, height: 64 }, { authorization: `Bearer ${ADMIN}` })).status).toBe(202);
  } finally {
    await dr.close();
  }
}

/**
 * A key with room for 7 jobs at 0.1: cancelling queued jobs gives their estimates back (exactly
 * once, however many cancels race), while 12 submissions race the cancels of 3 more.
 */
async function cancelsGiveBack(env: Record<string, string>) {
  const dr = await startDarkroom({ ...env, ADMIN_API_KEY: ADMIN, PROVIDER_PRICES: 'mock=0.1/image', WORKER_CONCURRENCY: '0' });
  try {
    const created = await dr.api('POST', '/api/v1/keys', { name: 'tenant', budget: { amount: 0.7, period: 'day' } }, { authorization: `Bearer ${ADMIN}` });
    const tenant = { authorization: `Bearer ${created.body.key}` };
    const submit = (index: number) => dr.api('POST', '/api/v1/jobs', { prompt: `job ${index}`, width: 64, height: 64 }, tenant);
    const budget = async () => (await dr.api('GET', '/api/v1/queue/stats', undefined, tenant)).body.budget;
    const ids: string[] = [];
    for (let index = 0; index < 7; index += 1) ids.push((await submit(index)).body.id as string);
    expect(await budget()).toEqual({ amount: 0.7, period: 'day', currency: 'USD', current: new Date().toISOString().slice(0, 10), spent: 0.7, left: 0 });
    expect((await submit(7)).status).toBe(402);

    // Five cancels of one job race: one wins, and its estimate comes back once.
    const cancels = await Promise.all(Array.from({ length: 5 }, () => dr.api('POST', `/api/v1/jobs/${ids[0]}/cancel`, undefined, tenant)));
    expect(cancels.map((answer) => answer.status).sort()).toEqual([200, 409, 409, 409, 409]);
    expect(cancels.find((answer) => answer.status === 200)?.body.cost).toEqual({ estimated: 0.1, actual: 0, currency: 'USD' });
    expect((await budget()).spent).toBe(0.6);

    // Three more cancels race twelve submissions: whatever interleaving, the spend is exactly what the live jobs are estimated at, and never past the budget.
    const answers = await Promise.all([
      ...ids.slice(1, 4).map((id) => dr.api('POST', `/api/v1/jobs/${id}/cancel`, undefined, tenant)),
      ...Array.from({ length: 12 }, (_, index) => submit(100 + index)),
    ]);
    expect(answers.slice(0, 3).map((answer) => answer.status)).toEqual([200, 200, 200]);
    const taken = answers.slice(3).filter((answer) => answer.status === 202).length;
    expect(taken).toBeGreaterThanOrEqual(1);
    expect(taken).toBeLessThanOrEqual(4);
    const live = (await dr.api('GET', '/api/v1/jobs?status=queued&limit=100', undefined, tenant)).body.items;
    expect(live).toHaveLength(3 + taken);
    const { spent, left } = await budget();
    expect(spent).toBe(Math.round(live.length * 0.1 * 1e6) / 1e6);
    expect(spent).toBeLessThanOrEqual(0.7);
    expect(left).toBe(Math.round((0.7 - spent) * 1e6) / 1e6);
  } finally {
    await dr.close();
  }
}

describe('budgets', () => {
  it('refuses exactly the submissions past the budget, 20 at once (embedded)', async () => {
    await edgeOfBudget({});
  });

  it.skipIf(!testDatabaseUrl)('refuses exactly the submissions past the budget, 20 at once (Postgres)', async () => {
    const database = await createTestDatabase();
    try {
      await edgeOfBudget({ DATABASE_URL: database.url });
    } finally {
      await database.drop();
    }
  });

  it('gives the estimates of cancelled jobs back, once, while submissions race (embedded)', async () => {
    await cancelsGiveBack({});
  });

  it.skipIf(!testDatabaseUrl)('gives the estimates of cancelled jobs back, once, while submissions race (Postgres)', async () => {
    const database = await createTestDatabase();
    try {
      await cancelsGiveBack({ DATABASE_URL: database.url });
    } finally {
      await database.drop();
    }
  });

  it('counts what jobs actually cost once they end, in place of their estimates', async () => {
    // Estimated at 3 upstream seconds an image; the mock takes a fraction of that.
    const dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, PROVIDER_PRICES: 'mock=0.5/s~3', MOCK_LATENCY_MS: '200' });
    try {
      const created = await dr.api('POST', '/api/v1/keys', { name: 'tenant', budget: { amount: 100, period: 'month' } }, { authorization: `Bearer ${ADMIN}` });
      const tenant = { authorization: `Bearer ${created.body.key}` };
      const ids = await Promise.all(
        [1, 2, 1].map(async (numImages) => (await dr.api('POST', '/api/v1/jobs', { prompt: 'spent', width: 64, height: 64, numImages }, tenant)).body.id as string),
      );
      const budget = async () => (await dr.api('GET', '/api/v1/queue/stats', undefined, tenant)).body.budget;
      expect((await budget()).spent).toBeLessThanOrEqual(6);
      const read = () => Promise.all(ids.map(async (id) => (await dr.api('GET', `/api/v1/jobs/${id}`, undefined, tenant)).body));
      await expect.poll(async () => (await read()).map((job) => job.status), { timeout: 20_000 }).toEqual(['succeeded', 'succeeded', 'succeeded']);
      const jobs = await read();
      expect(jobs.map((job) => job.cost.estimated)).toEqual([1.5, 3, 1.5]);
      const actual = jobs.reduce((sum, job) => sum + (job.cost.actual as number), 0);
      expect(actual).toBeGreaterThan(0);
      expect(actual).toBeLessThan(6);
      const { spent, current } = await budget();
      expect(current).toBe(new Date().toISOString().slice(0, 7));
      expect(spent).toBeCloseTo(actual, 6);
    } finally {
      await dr.close();
    }
  });

  it('is refused when malformed', async () => {
    const dr = await startDarkroom({ ADMIN_API_KEY: ADMIN });
    try {
      const bad = await dr.api('POST', '/api/v1/keys', { name: 'x', budget: { amount: -1, period: 'week' } }, { authorization: `Bearer ${ADMIN}` });
      expect(bad.status).toBe(400);
      expect(bad.body.errors.map((error: { field: string }) => error.field).sort()).toEqual(['budget.amount', 'budget.period']);
    } finally {
      await dr.close();
    }
  });
});
