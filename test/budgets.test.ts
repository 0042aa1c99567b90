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
