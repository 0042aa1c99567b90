import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeScriptedProvider } from './helpers/providers.ts';
import { startReceiver, type Receiver } from './helpers/receiver.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

const ADMIN = 'admin-key-for-the-metrics-tests-01';
const TOKEN = 'scraper-token-for-the-metrics-test';

/** The value of one sample line of the exposition, e.g. `darkroom_jobs_total{provider="mock",…}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value) && Object.keys(found).length === Object.keys(labels).length) return Number(match[3]);
  }
  return undefined;
}

describe('GET /metrics', () => {
  let dr: TestDarkroom;
  let scripted: ReturnType<typeof makeScriptedProvider>;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    scripted = makeScriptedProvider({ submits: ['retryable', 'ok', 'permanent', 'rate-limited', 'ok'] });
    dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, METRICS_TOKEN: TOKEN, WEBHOOK_ALLOW_PRIVATE: 'true' }, { providers: [scripted.provider], apiKey: ADMIN });
  });
  afterAll(async () => {
    await dr.close();
    await receiver.close();
  });

  const scrape = async (token?: string) => {
    const response = await fetch(`${dr.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
  };

  it('refuses without METRICS_TOKEN or an admin key', async () => {
    const none = await scrape();
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text)).toMatchObject({ status: 401 });
    expect((await scrape('not-the-token')).status).toBe(403);
    const created = await dr.api('POST', '/api/v1/keys', { name: 'app' }, { authorization: `Bearer ${ADMIN}` });
    expect((await scrape(created.body.key as string)).status).toBe(403);
  });

  it('counts what a mixed workload did, per provider, dialect and status', async () => {
    const statuses: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const created = await dr.api('POST', '/api/v1/jobs', { prompt: `job ${index}`, width: 64, height: 64, webhook: receiver.url }, { authorization: `Bearer ${ADMIN}` });
      expect(created.status).toBe(202);
      statuses.push((await dr.waitForJob(created.body.id as string)).status as string);
    }
    expect(statuses).toEqual(['succeeded', 'failed', 'succeeded']);
    const missing = await dr.api('GET', '/api/v1/jobs/01a24da7-0ef2-74de-9fe4-94b13b86e676', undefined, { authorization: `Bearer ${ADMIN}` });
    expect(missing.status).toBe(404);

    await expect.poll(() => receiver.received.length).toBe(3);
    const byToken = await scrape(TOKEN);
    expect(byToken.status).toBe(200);
    expect(byToken.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const { text } = await scrape(ADMIN);
    expect(sample(text, 'darkroom_jobs_total', { provider: 'mock', dialect: 'native', status: 'succeeded' })).toBe(2);
    expect(sample(text, 'darkroom_jobs_total', { provider: 'mock', dialect: 'native', status: 'failed' })).toBe(1);
    expect(sample(text, 'darkroom_provider_errors_total', { provider: 'mock', class: 'retryable' })).toBe(1);
    expect(sample(text, 'darkroom_provider_errors_total', { provider: 'mock', class: 'permanent' })).toBe(1);
    expect(sample(text, 'darkroom_provider_errors_total', { provider: 'mock', class: 'rate_limited' })).toBe(1);
    for (const phase of ['queued', 'upstream', 'images', 'total']) {
      expect(sample(text, 'darkroom_job_duration_seconds_count', { provider: 'mock', phase }), phase).toBe(3);
    }
    expect(sample(text, 'darkroom_job_duration_seconds_sum', { provider: 'mock', phase: 'total' })).toBeGreaterThan(0);
    expect(sample(text, 'darkroom_queue_depth', { status: 'succeeded' })).toBe(2);
    expect(sample(text, 'darkroom_queue_depth', { status: 'failed' })).toBe(1);
    expect(sample(text, 'darkroom_queue_depth', { status: 'queued' })).toBe(0);
    expect(sample(text, 'darkroom_http_requests_total', { dialect: 'native', status: '202' })).toBe(3);
    expect(sample(text, 'darkroom_http_requests_total', { dialect: 'native', status: '404' })).toBe(1);
    expect(sample(text, 'darkroom_http_requests_total', { dialect: 'none', status: '401' })).toBe(1);
    expect(sample(text, 'darkroom_http_request_duration_seconds_count', { dialect: 'native' })).toBeGreaterThanOrEqual(4);
    await expect.poll(async () => sample((await scrape(TOKEN)).text, 'darkroom_webhook_deliveries_total', { outcome: 'delivered' })).toBe(3);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });
});
