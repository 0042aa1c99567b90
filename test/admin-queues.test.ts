import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

const redisUrl = process.env.TEST_REDIS_URL;
const ADMIN_API_KEY = 'admin-key-for-tests-0123456789';

describe('Bull Board configuration', () => {
  it('is off by default, and refuses to run unprotected or without BullMQ', () => {
    expect(loadConfig({}).bullBoard).toBe(false);
    expect(() => loadConfig({ BULL_BOARD: 'true', QUEUE: 'redis', REDIS_URL: 'redis://x' })).toThrow('BULL_BOARD=true needs ADMIN_API_KEY');
    expect(() => loadConfig({ BULL_BOARD: 'true', ADMIN_API_KEY })).toThrow('BULL_BOARD=true needs QUEUE=redis or QUEUE=postgres');
    expect(() => loadConfig({ ADMIN_API_KEY: 'short' })).toThrow('ADMIN_API_KEY must be at least 16 characters');
  });
});

describe.skipIf(!redisUrl)('Bull Board at /admin/queues', () => {
  const queueName = `board-${randomBytes(4).toString('hex')}`;
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ QUEUE: 'redis', REDIS_URL: redisUrl as string, QUEUE_NAME: queueName, BULL_BOARD: 'true', ADMIN_API_KEY });
  });
  afterAll(async () => {
    await dr?.close({ removeData: true });
    const queue = new Queue(queueName, { connection: { url: redisUrl } });
    await queue.obliterate({ force: true });
    await queue.close();
  });

  it('asks for the admin key, and refuses a wrong one', async () => {
    const anonymous = await fetch(`${dr.url}/admin/queues`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('Basic');
    expect(anonymous.headers.get('content-type')).toContain('application/problem+json');
    const wrong = await fetch(`${dr.url}/admin/queues/api/queues`, { headers: { authorization: 'Bearer not-the-admin-key-at-all' } });
    expect(wrong.status).toBe(401);
  });

  it('shows the BullMQ queues to the admin (Bearer or Basic)', async () => {
    await dr.api('POST', '/api/v1/jobs', { prompt: 'seen on the board' });
    const page = await fetch(`${dr.url}/admin/queues`, { headers: { authorization: `Bearer ${ADMIN_API_KEY}` } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const basic = Buffer.from(`operator:${ADMIN_API_KEY}`).toString('base64');
    const api = await fetch(`${dr.url}/admin/queues/api/queues`, { headers: { authorization: `Basic ${basic}` } });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: { name: string }[] };
    expect(body.queues.map((queue) => queue.name)).toContain(queueName);
  });

  it('leaves the rest of the API as it was', async () => {
    expect((await dr.api('GET', '/api/v1/queue/stats')).status).toBe(200);
  });
});
