import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

describe('cursor pagination', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
  });
  afterAll(() => dr.close({ removeData: true }));

  it('walks every job exactly once, newest first, while jobs are being added', async () => {
    const created = await dr.api('POST', '/api/v1/jobs/batch', { prompts: Array.from({ length: 45 }, (_, i) => `existing ${i}`) });
    const existing = (created.body.jobs as { id: string }[]).map((job) => job.id);

    let adding = true;
    const added: string[] = [];
    const writer = (async () => {
      while (adding) {
        const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: `added ${added.length}` });
        added.push(body.id);
      }
    })();

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${cursor}` : '';
      const page = await dr.api('GET', `/api/v1/jobs?limit=7${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(7);
      seen.push(...(page.body.items as { id: string }[]).map((job) => job.id));
      cursor = page.body.nextCursor;
      await new Promise((resolve) => setTimeout(resolve, 5));
    } while (cursor);
    adding = false;
    await writer;

    expect(new Set(seen).size).toBe(seen.length);
    for (const id of existing) expect(seen).toContain(id);
    expect([...seen].sort().reverse()).toEqual(seen);
    expect(added.length).toBeGreaterThan(0);
  });

  it('filters by status', async () => {
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'to be cancelled' });
    await dr.api('POST', `/api/v1/jobs/${body.id}/cancel`);
    const cancelled = await dr.api('GET', '/api/v1/jobs?status=cancelled');
    expect((cancelled.body.items as { id: string; status: string }[]).map((job) => [job.id, job.status])).toEqual([[body.id, 'cancelled']]);
    const queued = await dr.api('GET', '/api/v1/jobs?status=queued&limit=100');
    expect((queued.body.items as { status: string }[]).every((job) => job.status === 'queued')).toBe(true);
  });
});
