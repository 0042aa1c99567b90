import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
import { answerStatus, startReceiver, type ReceivedWebhook, type Receiver } from './helpers/receiver.ts';

/**
 * Webhooks end to end: real darkrooms deliver over real HTTP to receivers on the loopback address,
 * which is why most darkrooms here run with WEBHOOK_ALLOW_PRIVATE=true; the SSRF tests run without.
 * Receivers check signatures with the official standardwebhooks package.
 */

const SECRET = `whsec_${Buffer.from('darkroom webhook test secret, 32 bytes!').subarray(0, 32).toString('base64')}`;
const SDXL = 'urn:air:sdxl:checkpoint:civitai:101055@128078';

/** Quick retries: 50 ms, then doubling; `random: () => 1` makes each delay the top of its jitter range. */
const QUICK = {
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_SECRET: SECRET,
  WEBHOOK_RETRY_BASE_DELAY_MS: '50',
  WEBHOOK_RETRY_MAX_DELAY_MS: '2000',
  WEBHOOK_TIMEOUT_MS: '500',
};

const verify = (request: ReceivedWebhook | undefined, secret = SECRET) => {
  if (!request) throw new Error('no request');
  return new Webhook(secret).verify(request.body, request.headers as Record<string, string>) as Record<string, unknown>;
};

interface Delivery {
  id: string;
  url: string;
  event: string;
  format: string;
  status: string;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  attempts: { attempt: number; at: string; durationMs: number; statusCode: number | null; error: string | null; retryAt: string | null }[];
}

async function deliveries(darkroom: TestDarkroom, jobId: string): Promise<Delivery[]> {
  const response = await darkroom.api('GET', `/api/v1/jobs/${jobId}/webhooks`);
  expect(response.status).toBe(200);
  return response.body.items;
}

/** Polls the delivery log until `done` holds. */
async function waitForLog(darkroom: TestDarkroom, jobId: string, done: (items: Delivery[]) => boolean, timeoutMs = 20_000): Promise<Delivery[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const items = await deliveries(darkroom, jobId);
    if (done(items)) return items;
    if (Date.now() > until) throw new Error(`delivery log of ${jobId} never settled: ${JSON.stringify(items)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function createJob(darkroom: TestDarkroom, body: Record<string, unknown>): Promise<string> {
  const response = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'a lighthouse at dusk', ...body });
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body.id;
}

describe('webhooks', () => {
  let dr: TestDarkroom;
  let receiver: Receiver;

  beforeAll(async () => {
    dr = await startDarkroom(QUICK, { random: () => 1 });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await dr?.close({ removeData: true });
    await receiver?.close();
  });

  it('sends job.completed, signed as Standard Webhooks, with the job as the native API shows it', async () => {
    const id = await createJob(dr, { webhook: `${receiver.url}/done?token=abc` });
    const [request] = await receiver.waitFor(1, (entry) => entry.path === '/done?token=abc');
    const payload = verify(request);
    expect(payload).toMatchObject({ type: 'job.completed', data: { id, status: 'succeeded', request: { webhook: `${receiver.url}/done?token=abc`, webhookEvents: ['completed'] } } });
    const data = payload.data as { images: { url: string }[] };
    expect(data.images).toHaveLength(1);
    expect((await fetch(data.images[0]?.url ?? '')).status).toBe(200);
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['webhook-id']).toMatch(/^msg_[0-9a-f-]{36}$/);
    expect(Number(request?.headers['webhook-timestamp'])).toBeCloseTo(Date.now() / 1000, -2);

    const [delivery] = await waitForLog(dr, id, (items) => items[0]?.status === 'delivered');
    expect(delivery).toMatchObject({ id: request?.headers['webhook-id'], event: 'job.completed', format: 'native', nextAttemptAt: null });
    expect(delivery?.attempts).toEqual([{ attempt: 1, at: expect.any(String), durationMs: expect.any(Number), statusCode: 204, error: null, retryAt: null }]);
    expect(await deliveries(dr, id)).toHaveLength(1);
  });

  it('a tampered body or another secret fails verification', async () => {
    const id = await createJob(dr, { webhook: `${receiver.url}/tamper` });
    const [request] = await receiver.waitFor(1, (entry) => entry.path === '/tamper');
    if (!request) throw new Error('no request');
    expect(() => verify({ ...request, body: request.body.replace(id, randomUUID()) })).toThrow();
    expect(() => verify(request, `whsec_${Buffer.alloc(32, 1).toString('base64')}`)).toThrow();
  });

  it('follows webhookEvents: every status change and each image, each showing the moment of its event', async () => {
    const id = await createJob(dr, { webhook: `${receiver.url}/all`, webhookEvents: ['status', 'image', 'completed'], numImages: 2 });
    const requests = await receiver.waitFor(5, (entry) => entry.path === '/all');
    const payloads = requests.map((request) => verify(request) as { type: string; data: { id: string; status: string; image?: { index: number } } });
    expect(payloads.every((payload) => payload.data.id === id)).toBe(true);
    expect(payloads.filter((payload) => payload.type === 'job.status').map((payload) => payload.data.status).sort()).toEqual(['running', 'succeeded']);
    expect(payloads.filter((payload) => payload.type === 'job.completed').map((payload) => payload.data.status)).toEqual(['succeeded']);
    const images = payloads.filter((payload) => payload.type === 'job.image');
    expect(images.map((payload) => payload.data.image?.index).sort()).toEqual([0, 1]);
    expect(images.every((payload) => payload.data.status === 'running')).toBe(true);
    expect(new Set(requests.map((request) => request.headers['webhook-id'])).size).toBe(5);
  });

  it('retries after 500s with growing gaps, under the same webhook-id, until a 2xx', async () => {
    let calls = 0;
    receiver.answerWith((entry, response) => {
      if (entry.path !== '/flaky') return answerStatus(204)(entry, response);
      calls += 1;
      return calls <= 3 ? answerStatus(500, 'database\nlocked')(entry, response) : answerStatus(200)(entry, response);
    });
    const id = await createJob(dr, { webhook: `${receiver.url}/flaky` });
    const [delivery] = await waitForLog(dr, id, (items) => items[0]?.status === 'delivered');
    receiver.answerWith(answerStatus(204));

    const attempts = delivery?.attempts ?? [];
    expect(attempts.map((attempt) => [attempt.attempt, attempt.statusCode, attempt.error])).toEqual([
      [1, 500, 'Answered 500: database locked'],
      [2, 500, 'Answered 500: database locked'],
      [3, 500, 'Answered 500: database locked'],
      [4, 200, null],
    ]);
    const gaps = attempts.slice(0, 3).map((attempt) => Date.parse(attempt.retryAt ?? '') - Date.parse(attempt.at) - attempt.durationMs);
    // 50 ms doubling, at the top of the jitter range: 50, 100, 200 (give or take the clock's millisecond).
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[1]).toBeGreaterThan(gaps[0] ?? 0);
    expect(gaps[2]).toBeGreaterThan(gaps[1] ?? 0);
    expect(attempts[3]?.retryAt).toBeNull();

    const requests = receiver.received.filter((entry) => entry.path === '/flaky');
    expect(requests).toHaveLength(4);
    expect(new Set(requests.map((request) => request.headers['webhook-id']))).toEqual(new Set([delivery?.id]));
    for (const request of requests) expect(verify(request)).toMatchObject({ type: 'job.completed', data: { id } });
  });

  it('retries after timeouts with growing gaps', async () => {
    let calls = 0;
    receiver.answerWith((entry, response) => {
      if (entry.path !== '/slow') return answerStatus(204)(entry, response);
      calls += 1;
      // The first two never get an answer; the third does.
      if (calls > 2) answerStatus(204)(entry, response);
    });
    const id = await createJob(dr, { webhook: `${receiver.url}/slow` });
    const [delivery] = await waitForLog(dr, id, (items) => items[0]?.status === 'delivered');
    receiver.answerWith(answerStatus(204));
    const attempts = delivery?.attempts ?? [];
    expect(attempts.map((attempt) => [attempt.statusCode, attempt.error])).toEqual([
      [null, 'No answer within 500 ms'],
      [null, 'No answer within 500 ms'],
      [204, null],
    ]);
    expect(attempts[0]?.durationMs).toBeGreaterThanOrEqual(450);
    const gaps = attempts.slice(0, 2).map((attempt) => Date.parse(attempt.retryAt ?? '') - Date.parse(attempt.at) - attempt.durationMs);
    expect(gaps[1]).toBeGreaterThan(gaps[0] ?? 0);
  });

  it('records a redirect as a failed attempt and never fetches its Location', async () => {
    let calls = 0;
    receiver.answerWith((entry, response) => {
      if (entry.path !== '/moved') return answerStatus(204)(entry, response);
      calls += 1;
      if (calls === 1) response.writeHead(302, { location: `${receiver.url}/elsewhere` }).end();
      else answerStatus(204)(entry, response);
    });
    const id = await createJob(dr, { webhook: `${receiver.url}/moved` });
    const [delivery] = await waitForLog(dr, id, (items) => items[0]?.status === 'delivered');
    receiver.answerWith(answerStatus(204));
    expect(delivery?.attempts.map((attempt) => [attempt.statusCode, attempt.error])).toEqual([
      [302, 'Answered 302; redirects are not followed'],
      [204, null],
    ]);
    expect(receiver.received.filter((entry) => entry.path === '/elsewhere')).toEqual([]);
  });

  it('sends batch.completed once, when the last job of the batch finishes', async () => {
    const response = await dr.api('POST', '/api/v1/jobs/batch', {
      prompts: ['one', 'two', 'three', 'four', 'five', 'six'],
      webhook: `${receiver.url}/batch`,
      webhookEvents: ['batch.completed'],
    });
    expect(response.status).toBe(202);
    const { batchId } = response.body;
    const ids: string[] = response.body.jobs.map((job: { id: string }) => job.id);
    const [request] = await receiver.waitFor(1, (entry) => entry.path === '/batch');
    expect(verify(request)).toMatchObject({ type: 'batch.completed', data: { batchId, total: 6, counts: { succeeded: 6 } } });
    for (const id of ids) await dr.waitForJob(id);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received.filter((entry) => entry.path === '/batch')).toHaveLength(1);
    // Every job of the batch shows the batch's delivery in its log, and no delivery of its own.
    for (const id of ids) {
      expect((await deliveries(dr, id)).map((delivery) => delivery.event)).toEqual(['batch.completed']);
    }
  });

  it('a batch entry can have a webhook of its own', async () => {
    const response = await dr.api('POST', '/api/v1/jobs/batch', {
      jobs: [{ prompt: 'one' }, { prompt: 'two', webhook: `${receiver.url}/entry` }],
    });
    expect(response.status).toBe(202);
    const [first, second] = response.body.jobs as { id: string }[];
    const [request] = await receiver.waitFor(1, (entry) => entry.path === '/entry');
    expect(verify(request)).toMatchObject({ type: 'job.completed', data: { id: second?.id } });
    await dr.waitForJob(first?.id ?? '');
    expect(await deliveries(dr, first?.id ?? '')).toEqual([]);
  });

  it('calls a Civitai callbackUrl with the Civitai JobStatus once the job completes', async () => {
    const response = await dr.api('POST', '/v1/consumer/jobs', {
      $type: 'textToImage',
      model: SDXL,
      params: { prompt: 'a lighthouse at dusk', width: 512, height: 512 },
      properties: { order: 7 },
      callbackUrl: `${receiver.url}/civitai`,
    });
    expect(response.status).toBe(200);
    const jobId = response.body.jobs[0].jobId;
    const [request] = await receiver.waitFor(1, (entry) => entry.path === '/civitai');
    const body = JSON.parse(request?.body ?? '{}');
    expect(body).toMatchObject({
      jobId,
      properties: { order: 7 },
      result: [{ available: true, blobUrl: expect.any(String) }],
      lastEvent: { type: 'Succeeded', jobHasCompleted: true },
      scheduled: false,
    });
    expect(verify(request)).toEqual(body);
    expect((await waitForLog(dr, jobId, (items) => items[0]?.status === 'delivered'))[0]).toMatchObject({ event: 'job.completed', format: 'civitai' });
  });

  it('calls a RunPod webhook with the job’s /status body once it completes', async () => {
    const response = await dr.api('POST', '/v2/ep-hooks/run', { input: { prompt: 'a lighthouse at dusk' }, webhook: `${receiver.url}/runpod` });
    expect(response.status).toBe(200);
    const [request] = await receiver.waitFor(1, (entry) => entry.path === '/runpod');
    const body = JSON.parse(request?.body ?? '{}');
    expect(body).toMatchObject({ id: response.body.id, status: 'COMPLETED', output: { images: [expect.any(String)], image_url: expect.any(String) } });
    expect(verify(request)).toEqual(body);
    const status = await dr.api('GET', `/v2/ep-hooks/status/${response.body.id}`);
    expect({ ...body, output: undefined }).toEqual({ ...status.body, output: undefined });
  });

  it('the delivery log: empty without a webhook, 404 for an unknown job, 400 for a malformed id', async () => {
    const id = await createJob(dr, {});
    await dr.waitForJob(id);
    expect(await deliveries(dr, id)).toEqual([]);
    const unknown = await dr.api('GET', `/api/v1/jobs/${randomUUID()}/webhooks`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const malformed = await dr.api('GET', '/api/v1/jobs/not-a-uuid/webhooks');
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors).toEqual([expect.objectContaining({ in: 'params', field: 'id' })]);
  });

  it.each([
    ['webhookEvents without a webhook', { webhookEvents: ['status'] }, 'webhookEvents', /needs webhook/],
    ['batch.completed for a single job', { webhook: 'http://127.0.0.1:9/x', webhookEvents: ['batch.completed'] }, 'webhookEvents', /batches only/],
    ['an unknown event', { webhook: 'http://127.0.0.1:9/x', webhookEvents: ['finished'] }, 'webhookEvents.0', /must be equal to one of the allowed values/],
    ['a repeated event', { webhook: 'http://127.0.0.1:9/x', webhookEvents: ['status', 'status'] }, 'webhookEvents', /duplicate/],
    ['a webhook that is not a URL', { webhook: 'hooks' }, 'webhook', /must/],
    ['a webhook that is not http(s)', { webhook: 'ftp://hooks.example.test/x' }, 'webhook', /must match pattern/],
    ['an oversized webhook', { webhook: `https://hooks.example.test/${'x'.repeat(2000)}` }, 'webhook', /must NOT have more than 2000 characters/],
    ['credentials in the webhook', { webhook: 'https://user:pass@hooks.example.test/x' }, 'webhook', /must not contain a user name or password/],
  ])('refuses %s (400 naming the field)', async (_name, body, field, message) => {
    const response = await dr.api('POST', '/api/v1/jobs', { prompt: 'x', ...body });
    expect(response.status).toBe(400);
    const error = response.body.errors.find((item: { field: string }) => item.field === field);
    expect(error?.message, JSON.stringify(response.body)).toMatch(message);
  });
});

describe('webhooks: the SSRF guard (WEBHOOK_ALLOW_PRIVATE unset)', () => {
  let dr: TestDarkroom;

  beforeAll(async () => {
    dr = await startDarkroom({ WEBHOOK_SECRET: SECRET });
  });
  afterAll(() => dr?.close({ removeData: true }));

  it.each([
    ['http://127.0.0.1/x', 'a loopback address'],
    ['http://10.0.0.1/x', 'a private address'],
    ['http://169.254.169.254/latest', 'a link-local address'],
    ['http://[::1]/x', 'a loopback address'],
    ['http://[::ffff:127.0.0.1]/x', 'a loopback address'],
    ['http://[fd00:ec2::254]/latest', 'a unique-local address'],
    ['http://localhost:3000/x', 'a loopback address'],
  ])('refuses %s at submission: 400 naming webhook', async (url, kind) => {
    const response = await dr.api('POST', '/api/v1/jobs', { prompt: 'x', webhook: url });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(response.body.errors).toEqual([{ in: 'body', field: 'webhook', message: expect.stringContaining(`points to ${kind}`) }]);
    expect(response.body.detail).toMatch(/^webhook points to/);
  });

  it('refuses a batch whose shared or own webhook is private, storing nothing', async () => {
    const before = await dr.api('GET', '/api/v1/jobs?limit=100');
    const shared = await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['a', 'b'], webhook: 'http://10.0.0.1/x' });
    expect(shared.status).toBe(400);
    expect(shared.body.errors).toEqual([{ in: 'body', field: 'webhook', message: expect.stringContaining('a private address') }]);
    const own = await dr.api('POST', '/api/v1/jobs/batch', { jobs: [{ prompt: 'a' }, { prompt: 'b', webhook: 'http://169.254.169.254/latest' }] });
    expect(own.status).toBe(400);
    expect(own.body.errors).toEqual([{ in: 'body', field: 'jobs.1.webhook', message: expect.stringContaining('a link-local address') }]);
    expect((await dr.api('GET', '/api/v1/jobs?limit=100')).body.items).toHaveLength(before.body.items.length);
  });

  it('refuses a private Civitai callbackUrl in the Civitai error format', async () => {
    const response = await dr.api('POST', '/v1/consumer/jobs', {
      $type: 'textToImage',
      params: { prompt: 'x', width: 512, height: 512 },
      callbackUrl: 'http://10.0.0.1/callback',
    });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ title: 'One or more validation errors occurred.', errors: { callbackUrl: [expect.stringContaining('a private address')] } });
    const batch = await dr.api('POST', '/v1/consumer/jobs', {
      jobs: [
        { $type: 'textToImage', params: { prompt: 'x', width: 512, height: 512 } },
        { $type: 'textToImage', params: { prompt: 'y', width: 512, height: 512 }, callbackUrl: 'http://127.0.0.1/callback' },
      ],
    });
    expect(batch.status).toBe(400);
    expect(batch.body.errors).toEqual({ 'jobs[1].callbackUrl': [expect.stringContaining('a loopback address')] });
  });

  it('refuses a private RunPod webhook in the RunPod error format', async () => {
    const response = await dr.api('POST', '/v2/ep/run', { input: { prompt: 'x' }, webhook: 'http://[::1]:8080/hook' });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: expect.stringMatching(/^webhook points to a loopback address/) });
  });
});

describe('webhooks: delivery', () => {
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver?.close());

  it('refuses again at delivery time: a job accepted where private addresses were allowed is not delivered where they are not', async () => {
    const dataDir = makeDataDir();
    const api = await startDarkroom({ ...QUICK }, { role: 'api', dataDir });
    const id = await createJob(api, { webhook: `${receiver.url}/guarded` });
    await api.close();

    const worker = await startDarkroom({ WEBHOOK_SECRET: SECRET }, { dataDir });
    try {
      await worker.waitForJob(id);
      const [delivery] = await waitForLog(worker, id, (items) => items[0]?.status === 'failed');
      expect(delivery?.attempts).toEqual([
        expect.objectContaining({ attempt: 1, statusCode: null, error: expect.stringMatching(/^The URL points to a loopback address/), retryAt: null }),
      ]);
      expect(receiver.received.filter((entry) => entry.path === '/guarded')).toEqual([]);
    } finally {
      await worker.close({ removeData: true });
    }
  });

  it('still delivers after a restart: a pending delivery survives the process', async () => {
    const dataDir = makeDataDir();
    receiver.answerWith((entry, response) => answerStatus(entry.path === '/restart' ? 503 : 204)(entry, response));
    // No WEBHOOK_SECRET: the one generated in DATA_DIR signs before and after the restart.
    const env = { ...QUICK, WEBHOOK_SECRET: '', WEBHOOK_RETRY_BASE_DELAY_MS: '300' };
    const first = await startDarkroom(env, { dataDir });
    const id = await createJob(first, { webhook: `${receiver.url}/restart` });
    await waitForLog(first, id, (items) => (items[0]?.attempts.length ?? 0) >= 1);
    await first.close();
    const refused = receiver.received.filter((entry) => entry.path === '/restart');

    receiver.answerWith(answerStatus(204));
    const second = await startDarkroom(env, { dataDir });
    try {
      const [delivery] = await waitForLog(second, id, (items) => items[0]?.status === 'delivered');
      const attempts = delivery?.attempts ?? [];
      expect(attempts.at(-1)).toMatchObject({ statusCode: 204, error: null });
      expect(attempts.slice(0, -1).every((attempt) => attempt.statusCode === 503)).toBe(true);
      const secret = readFileSync(join(dataDir, 'webhook.key'), 'utf8').trim();
      const requests = receiver.received.filter((entry) => entry.path === '/restart');
      expect(requests.length).toBeGreaterThan(refused.length);
      for (const request of requests) {
        expect(request.headers['webhook-id']).toBe(delivery?.id);
        expect(verify(request, secret)).toMatchObject({ type: 'job.completed', data: { id, status: 'succeeded' } });
      }
    } finally {
      await second.close({ removeData: true });
    }
  });

  it('a receiver that never answers does not delay other jobs, and is retried later', async () => {
    receiver.answerWith((entry, response) => {
      if (entry.path !== '/hang') answerStatus(204)(entry, response);
    });
    // Two deliveries at a time, both to the hanging receiver: it holds every webhook slot for the whole timeout.
    const dr = await startDarkroom({ ...QUICK, WEBHOOK_CONCURRENCY: '2', WEBHOOK_TIMEOUT_MS: '2000', MOCK_LATENCY_MS: '20' });
    try {
      const hanging = await Promise.all([1, 2].map(() => createJob(dr, { webhook: `${receiver.url}/hang` })));
      await receiver.waitFor(1, (entry) => entry.path === '/hang');
      const others = await Promise.all([1, 2, 3, 4, 5, 6].map(() => createJob(dr, {})));
      for (const id of [...others, ...hanging]) expect((await dr.waitForJob(id)).status).toBe('succeeded');
      // Every job is done while its webhook still waits on the receiver.
      const pendingNow = await Promise.all(hanging.map((id) => deliveries(dr, id)));
      expect(pendingNow.flat().every((delivery) => delivery.status === 'pending')).toBe(true);

      // Then the attempt times out, is recorded, and the delivery is attempted again.
      const firstId = receiver.received.find((entry) => entry.path === '/hang')?.headers['webhook-id'];
      await receiver.waitFor(2, (entry) => entry.path === '/hang' && entry.headers['webhook-id'] === firstId, 20_000);
      const all = (await Promise.all(hanging.map((id) => deliveries(dr, id)))).flat();
      const retried = all.find((delivery) => delivery.id === firstId);
      expect(retried?.attempts[0]).toMatchObject({ attempt: 1, statusCode: null, error: 'No answer within 2000 ms', retryAt: expect.any(String) });
    } finally {
      await dr.close({ removeData: true });
    }
  });
});

describe.skipIf(!testDatabaseUrl)('webhooks on Postgres: two worker processes share the deliveries', () => {
  let receiver: Receiver;
  let darkrooms: TestDarkroom[] = [];
  let dropDatabase: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    receiver = await startReceiver();
    const database = await createTestDatabase();
    dropDatabase = database.drop;
    // BullMQ on Postgres spreads the jobs over both processes, so a batch's last jobs finish on two connections at once.
    const env = { ...QUICK, DATABASE_URL: database.url, QUEUE: 'postgres', QUEUE_NAME: `webhooks-${randomUUID().slice(0, 8)}`, MOCK_LATENCY_MS: '0-30' };
    darkrooms = [await startDarkroom(env), await startDarkroom(env)];
  });
  afterAll(async () => {
    for (const darkroom of darkrooms) await darkroom.close({ removeData: true });
    await dropDatabase();
    await receiver?.close();
  });

  it('delivers every message once and the batch’s completion once', async () => {
    const [first, second] = darkrooms as [TestDarkroom, TestDarkroom];
    const response = await first.api('POST', '/api/v1/jobs/batch', {
      prompts: Array.from({ length: 16 }, (_, index) => `postgres webhooks ${index}`),
      webhook: `${receiver.url}/pg`,
      webhookEvents: ['completed', 'batch.completed'],
    });
    expect(response.status).toBe(202);
    const ids: string[] = response.body.jobs.map((job: { id: string }) => job.id);
    const requests = await receiver.waitFor(17, (entry) => entry.path === '/pg');
    for (const id of ids) await second.waitForJob(id);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const all = receiver.received.filter((entry) => entry.path === '/pg');
    expect(all).toHaveLength(17);
    expect(new Set(all.map((request) => request.headers['webhook-id'])).size).toBe(17);
    const types = requests.map((request) => (verify(request) as { type: string }).type);
    expect(types.filter((type) => type === 'batch.completed')).toHaveLength(1);
    expect(types.filter((type) => type === 'job.completed')).toHaveLength(16);
    const log = await waitForLog(second, ids[0] ?? '', (items) => items.every((item) => item.status === 'delivered'));
    expect(log.map((item) => item.event).sort()).toEqual(['batch.completed', 'job.completed']);
  });
});
