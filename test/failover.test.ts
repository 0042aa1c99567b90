import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Darkroom } from '../src/client/index.ts';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { startFaultProxy, type FaultProxy, type RecordedRequest } from './helpers/fault-proxy.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
import { startReceiver, type Receiver } from './helpers/receiver.ts';
import { readSse } from './helpers/sse.ts';

/**
 * Failover along PROVIDER_FALLBACK chains, circuit breakers and upstream pauses, end to end: the
 * runpod provider drives a second darkroom's RunPod dialect (darkroom job ids are the RunPod job
 * ids, so the far side's job is the upstream job), through the fault proxy; the chain's next
 * provider is the mock.
 */

const isRun = (request: { method: string; path: string }) => request.method === 'POST' && request.path.endsWith('/run');
const isStatus = (request: { method: string; path: string }) => request.method === 'GET' && request.path.includes('/status/');
const isCancel = (request: { method: string; path: string }) => request.method === 'POST' && request.path.includes('/cancel/');

const runpodAt = (url: string) => ({ RUNPOD_API_URL: `${url}/v2`, RUNPOD_API_KEY: 'test-key', RUNPOD_ENDPOINT_ID: 'ep-test', RUNPOD_INPUT_FORMAT: 'sdxl' });

interface EventRow {
  id: number;
  type: string;
  status: string;
  stage: string | null;
  data: Record<string, unknown>;
  createdAt: string;
}

async function eventsOf(dr: TestDarkroom, id: string): Promise<EventRow[]> {
  const { status, body } = await dr.api('GET', `/api/v1/jobs/${id}/events`);
  expect(status).toBe(200);
  return body.items as EventRow[];
}

const failovers = (events: EventRow[]) => events.filter((event) => event.type === 'failover');

async function waitUntil<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > until) throw new Error(`${what}: not reached in ${timeoutMs} ms (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface ProviderItem {
  name: string;
  circuit: { state: string; openedAt: string | null; retryAt: string | null; consecutiveFailures: number; pausedUntil: string | null };
  fallback: string[];
  recent: { calls: number; errorRate: number | null; p50LatencyMs: number | null };
  queued: number;
}

async function providerOf(dr: TestDarkroom, name: string): Promise<ProviderItem> {
  const { status, body } = await dr.api('GET', '/api/v1/providers');
  expect(status).toBe(200);
  return (body.items as ProviderItem[]).find((item) => item.name === name) as ProviderItem;
}

/** An address where nothing listens: connections are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('PROVIDER_FALLBACK configuration', () => {
  it('refuses a chain that names a provider that is not configured, or one twice', () => {
    expect(() => loadConfig({ PROVIDER_FALLBACK: 'runpod>mock' })).toThrow(/PROVIDER_FALLBACK names "runpod", which is not a configured provider \(configured: mock\)/);
    expect(() => loadConfig({ PROVIDER_FALLBACK: 'mock' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...runpodAt('http://127.0.0.1:1'), PROVIDER_FALLBACK: 'runpod>mock>runpod' })).toThrow(/names a provider twice/);
    expect(() => loadConfig({ CIRCUIT_COOLDOWN: 'soon' })).toThrow(/CIRCUIT_COOLDOWN="soon" must be a duration/);
    const config = loadConfig({ ...runpodAt('http://127.0.0.1:1'), PROVIDER_FALLBACK: 'runpod>mock', CIRCUIT_COOLDOWN: '30s' });
    expect(config.providerFallback).toEqual({ runpod: ['mock'] });
    expect(config.circuit).toEqual({ failures: 5, cooldownMs: 30_000 });
    expect(config.failoverAfterAttempts).toBe(2);
  });
});

describe('failover when the upstream refuses connections', { timeout: 90_000 }, () => {
  let dr: TestDarkroom;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    dr = await startDarkroom({
      ...runpodAt(`http://127.0.0.1:${await closedPort()}`),
      DEFAULT_PROVIDER: 'runpod',
      PROVIDER_FALLBACK: 'runpod>mock',
      JOB_MAX_ATTEMPTS: '3',
      // The circuit is the subject of the Postgres tests below; here every job meets the refusal itself.
      CIRCUIT_FAILURES: '1000',
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
  });
  afterAll(async () => {
    await dr?.close({ removeData: true });
    await receiver?.close();
  });

  it('moves jobs that name no provider to the next one, once each, and tells the history, the stream and the webhook', async () => {
    const created = await Promise.all(
      [1, 2].map((n) =>
        dr.api('POST', '/api/v1/jobs', { prompt: `refused ${n}`, webhook: `${receiver.url}/hook`, webhookEvents: ['failover', 'completed'] }),
      ),
    );
    for (const { status, body } of created) {
      expect(status).toBe(202);
      expect(body).toMatchObject({ provider: 'runpod', fallback: true });
    }
    for (const { body } of created) {
      const job = await dr.waitForJob(body.id as string);
      expect(job).toMatchObject({ status: 'succeeded', provider: 'mock', attempts: 3 });
      expect(job.providerHistory).toEqual([
        { provider: 'runpod', attempts: 2, at: expect.any(String) },
        { provider: 'mock', attempts: 1, at: expect.any(String) },
      ]);
      const moves = failovers(await eventsOf(dr, body.id as string));
      expect(moves).toHaveLength(1);
      expect(moves[0]).toMatchObject({ status: 'queued', data: { from: 'runpod', to: 'mock', reason: 'network_error' } });
    }

    const [first] = created;
    const stream = await readSse(`${dr.url}/api/v1/jobs/${first?.body.id}/events`);
    const moved = stream.frames.filter((frame) => frame.event === 'failover');
    expect(moved).toHaveLength(1);
    expect(moved[0]?.data).toMatchObject({ type: 'failover', jobId: first?.body.id, status: 'queued', from: 'runpod', to: 'mock', reason: 'network_error' });

    const hooks = await receiver.waitFor(4);
    const bodies = hooks.map((hook) => JSON.parse(hook.body) as { type: string; data: { id: string; provider: string; failover?: unknown } });
    for (const { body } of created) {
      const told = bodies.filter((hook) => hook.data.id === body.id).map((hook) => hook.type);
      expect(told.sort()).toEqual(['job.completed', 'job.failover']);
      const failover = bodies.find((hook) => hook.data.id === body.id && hook.type === 'job.failover');
      expect(failover?.data).toMatchObject({ provider: 'mock', failover: { from: 'runpod', to: 'mock', reason: 'network_error' } });
    }
  });

  it('keeps a job whose caller named the provider there, unless it asked for fallback (jobs and batch entries)', async () => {
    const pinned = await dr.api('POST', '/api/v1/jobs', { prompt: 'pinned', provider: 'runpod' });
    // The typed client takes the field as the API does.
    const client = new Darkroom({ baseUrl: dr.url });
    const allowed = { status: 202, body: await client.create({ prompt: 'allowed to move', provider: 'runpod', fallback: true }) };
    const batch = await dr.api('POST', '/api/v1/jobs/batch', {
      jobs: [
        { prompt: 'batch entry that may move', provider: 'runpod', fallback: true },
        { prompt: 'batch entry pinned', provider: 'runpod' },
      ],
    });
    expect([pinned.status, allowed.status, batch.status]).toEqual([202, 202, 202]);
    expect(pinned.body.fallback).toBe(false);
    expect(allowed.body.fallback).toBe(true);

    const stays = [pinned.body.id as string, batch.body.jobs[1].id as string];
    const moves = [allowed.body.id as string, batch.body.jobs[0].id as string];
    for (const id of stays) {
      const job = await dr.waitForJob(id);
      expect(job).toMatchObject({ status: 'failed', provider: 'runpod', attempts: 3, error: { code: 'network_error', retryable: true } });
      expect(job.providerHistory).toEqual([{ provider: 'runpod', attempts: 3, at: expect.any(String) }]);
      expect(failovers(await eventsOf(dr, id))).toHaveLength(0);
    }
    for (const id of moves) {
      expect(await dr.waitForJob(id)).toMatchObject({ status: 'succeeded', provider: 'mock' });
      expect(failovers(await eventsOf(dr, id))).toHaveLength(1);
    }
    const seen: string[] = [];
    for await (const event of client.events(allowed.body.id)) if (event.type === 'failover') seen.push(`${event.from}>${event.to}:${event.reason}`);
    expect(seen).toEqual(['runpod>mock:network_error']);
  });

  it('refuses a fallback that is not a boolean', async () => {
    const { status, body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'x', fallback: 'yes' });
    expect(status).toBe(400);
    expect(body.errors).toEqual([expect.objectContaining({ field: 'fallback' })]);
  });
});

describe('readiness with providers down', { timeout: 90_000 }, () => {
  it('/ready answers 503 once no provider can take work, naming them all', async () => {
    // Every mock submission fails with a retryable 503 (its randomness pinned), and runpod refuses connections.
    const dr = await startDarkroom(
      { ...runpodAt(`http://127.0.0.1:${await closedPort()}`), CIRCUIT_FAILURES: '1', CIRCUIT_COOLDOWN: '10m', MOCK_FAILURE_RATE: '1' },
      { random: () => 0 },
    );
    try {
      expect((await dr.api('GET', '/ready')).body).toMatchObject({ status: 'ready', providersDown: [] });
      await dr.api('POST', '/api/v1/jobs', { prompt: 'on runpod', provider: 'runpod' });
      const halfway = await waitUntil('runpod down', () => dr.api('GET', '/ready'), (ready) => ready.body.providersDown?.length === 1);
      expect([halfway.status, halfway.body.providersDown]).toEqual([200, ['runpod']]);
      await dr.api('POST', '/api/v1/jobs', { prompt: 'on the mock', provider: 'mock' });
      const none = await waitUntil('every provider down', () => dr.api('GET', '/ready'), (ready) => ready.status === 503);
      expect(none.body).toMatchObject({ status: 503, code: 'not_ready', checks: { database: 'ok', providers: 'failed' }, providersDown: ['mock', 'runpod'] });
    } finally {
      await dr.close({ removeData: true });
    }
  });
});

describe('failover of a job the upstream already runs (5xx and timeouts on its polls)', { timeout: 90_000 }, () => {
  let upstream: TestDarkroom;
  let proxy: FaultProxy;
  let dr: TestDarkroom;
  let statusFault: 'none' | 'error' | 'slow' = 'none';

  beforeAll(async () => {
    // The far side's jobs take a minute: whatever is left there is still running unless cancelled.
    upstream = await startDarkroom({ MOCK_LATENCY_MS: '60000', AUTH: 'off' });
    proxy = await startFaultProxy(upstream.url);
    proxy.inject({ match: (request) => isStatus(request) && statusFault === 'error', times: Infinity, respond: { status: 503 } });
    proxy.inject({ match: (request) => isStatus(request) && statusFault === 'slow', times: Infinity, delayMs: 4000 });
    dr = await startDarkroom({
      ...runpodAt(proxy.url),
      DEFAULT_PROVIDER: 'runpod',
      PROVIDER_FALLBACK: 'runpod>mock',
      PROVIDER_TIMEOUT_MS: '1500',
      CIRCUIT_FAILURES: '1000',
    });
  });
  afterAll(async () => {
    await dr?.close({ removeData: true });
    await proxy?.close();
    await upstream?.close({ removeData: true });
  });

  /** Runs one job through the fault; checks it ended on the mock and that its upstream job was cancelled before the mock got it. */
  async function runThrough(fault: 'error' | 'slow', expectedReason: string): Promise<void> {
    statusFault = fault;
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: `upstream ${fault}` });
    const job = await dr.waitForJob(body.id as string, undefined, 60_000);
    expect(job).toMatchObject({ status: 'succeeded', provider: 'mock' });

    const events = await eventsOf(dr, body.id as string);
    const moves = failovers(events);
    expect(moves).toHaveLength(1);
    // The move carries the failure that caused it, as status events do.
    expect(moves[0]?.data).toEqual({ from: 'runpod', to: 'mock', reason: expectedReason, error: expect.objectContaining({ code: expectedReason, retryable: true }) });
    const upstreamId = events.find((event) => event.type === 'stage' && typeof event.data.providerJobId === 'string')?.data.providerJobId as string;
    expect(upstreamId).toBeDefined();

    // The far side holds exactly this one job of ours, and it is cancelled, not running.
    const far = await upstream.darkroom.repo.get(upstreamId);
    expect(far?.status).toBe('cancelled');
    const cancels = proxy.requests.filter((request) => isCancel(request) && request.path.endsWith(`/cancel/${upstreamId}`));
    expect(cancels.length).toBeGreaterThanOrEqual(1);
    // The cancel was answered before the job started on the mock (the first status event after the move).
    const moveIndex = events.indexOf(moves[0] as EventRow);
    const startedOnMock = events.slice(moveIndex + 1).find((event) => event.type === 'status' && event.status === 'running');
    expect(startedOnMock).toBeDefined();
    expect(cancels[0]?.answeredAt).toBeLessThanOrEqual(Date.parse(startedOnMock?.createdAt as string));
    expect(proxy.requests.filter((request) => isRun(request) && request.at >= Date.parse(moves[0]?.createdAt as string))).toEqual([]);
    statusFault = 'none';
  }

  it('5xx: the job moves after FAILOVER_AFTER_ATTEMPTS, its upstream job cancelled first', async () => {
    await runThrough('error', 'upstream_unavailable');
  });

  it('timeouts: the same, when the polls never answer in time', async () => {
    await runThrough('slow', 'upstream_timeout');
  });
});

// Three darkrooms and a Postgres database per test: more than the default 30 s on a loaded machine.
describe.skipIf(!testDatabaseUrl)('circuit breakers and pauses shared by two darkrooms on one Postgres', { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()?.();
  });

  async function setup(env: Record<string, string>, upstreamLatencyMs = 0, firstEnv: Record<string, string> = {}) {
    const upstream = await startDarkroom({ MOCK_LATENCY_MS: String(upstreamLatencyMs), AUTH: 'off' });
    cleanups.push(() => upstream.close({ removeData: true }));
    const proxy = await startFaultProxy(upstream.url);
    cleanups.push(() => proxy.close());
    const database = await createTestDatabase();
    cleanups.push(database.drop);
    // Neither darkroom picks up the other's jobs by itself (resume at start, the reconciler): each runs what it was given.
    const shared = {
      ...runpodAt(proxy.url),
      DEFAULT_PROVIDER: 'runpod',
      DATABASE_URL: database.url,
      RECONCILE_STALE_MS: '600000',
      METRICS_TOKEN: 'metrics-token-of-the-failover-test',
      ...env,
    };
    const first = await startDarkroom({ ...shared, ...firstEnv });
    cleanups.push(() => first.close({ removeData: true }));
    const second = await startDarkroom(shared);
    cleanups.push(() => second.close({ removeData: true }));
    return { upstream, proxy, first, second, databaseUrl: database.url };
  }

  const metric = async (dr: TestDarkroom, provider: string): Promise<string | undefined> => {
    const text = await (await fetch(`${dr.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-of-the-failover-test' } })).text();
    return new RegExp(`^darkroom_provider_circuit_open\\{provider="${provider}"\\} (\\d)$`, 'm').exec(text)?.[1];
  };

  it('opens after CIRCUIT_FAILURES, lets exactly one probe through after the cooldown, reopens on its failure and closes on its success', async () => {
    const { proxy, first, second } = await setup({ CIRCUIT_FAILURES: '3', CIRCUIT_COOLDOWN: '1500ms', JOB_MAX_ATTEMPTS: '50' });
    let releaseProbe: () => void = () => undefined;
    proxy.inject({ match: isRun, times: 3, respond: { status: 503 } });
    proxy.inject({ match: isRun, times: 1, respond: { status: 503 } });
    proxy.inject({ match: isRun, times: 1, hold: new Promise<void>((resolve) => (releaseProbe = resolve)) });
    const runs = () => proxy.count(isRun);

    // Pinned jobs: they wait for the circuit rather than move.
    const one = await first.api('POST', '/api/v1/jobs', { prompt: 'opens the circuit', provider: 'runpod' });
    const opened = await waitUntil('circuit open (seen by the other darkroom)', () => providerOf(second, 'runpod'), (item) => item.circuit.state === 'open');
    expect(runs()).toBe(3);
    expect(opened.circuit).toMatchObject({ consecutiveFailures: 3, openedAt: expect.any(String), retryAt: expect.any(String), pausedUntil: null });
    expect(Date.parse(opened.circuit.retryAt as string) - Date.parse(opened.circuit.openedAt as string)).toBe(1500);
    expect(opened.recent).toEqual({ calls: 3, errorRate: 1, p50LatencyMs: null });
    await waitUntil('the opening job queued again', () => providerOf(second, 'runpod'), (item) => item.queued === 1);
    expect(await metric(second, 'runpod')).toBe('1');
    expect(await metric(second, 'mock')).toBe('0');
    const ready = await second.api('GET', '/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', providersDown: ['runpod'], checks: { providers: 'ok' } });

    const two = await second.api('POST', '/api/v1/jobs', { prompt: 'waits for the circuit', provider: 'runpod' });
    // The first probe fails: open again, from a later moment, with one more failure; one request more.
    const reopened = await waitUntil(
      'circuit reopened by the failed probe',
      () => providerOf(first, 'runpod'),
      (item) => item.circuit.state === 'open' && item.circuit.openedAt !== opened.circuit.openedAt,
    );
    expect(reopened.circuit.consecutiveFailures).toBe(4);
    expect(runs()).toBe(4);

    // The second probe is held at the proxy: while it is in flight, neither darkroom sends another.
    await waitUntil('second probe in flight', async () => ({ runs: runs(), state: (await providerOf(second, 'runpod')).circuit.state }), (seen) => seen.runs === 5 && seen.state === 'half_open');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(runs()).toBe(5);
    expect(proxy.inFlight(isRun)).toBe(1);
    releaseProbe();

    for (const [dr, id] of [[first, one.body.id], [second, two.body.id]] as const) {
      expect(await dr.waitForJob(id as string, undefined, 30_000)).toMatchObject({ status: 'succeeded', provider: 'runpod' });
    }
    // The probe and the job that waited for it: one submission each after the circuit opened.
    expect(runs()).toBe(6);
    const closed = await providerOf(first, 'runpod');
    expect(closed.circuit).toEqual({ state: 'closed', openedAt: null, retryAt: null, consecutiveFailures: 0, pausedUntil: null });
    expect(closed.recent.p50LatencyMs).toEqual(expect.any(Number));
    expect(closed.recent.errorRate).toBeGreaterThan(0);
    expect(await metric(first, 'runpod')).toBe('0');
    expect(failovers(await eventsOf(first, one.body.id as string))).toHaveLength(0);
  });

  it('re-routes the queued jobs of a provider along their chains as soon as its circuit opens; pinned ones wait', async () => {
    // The first darkroom runs no worker: its jobs stay queued until the circuit moves them.
    const { proxy, first, second } = await setup({ PROVIDER_FALLBACK: 'runpod>mock', CIRCUIT_FAILURES: '2', CIRCUIT_COOLDOWN: '10m', JOB_MAX_ATTEMPTS: '50' }, 0, { WORKER_CONCURRENCY: '0' });
    proxy.inject({ match: isRun, times: Infinity, respond: { status: 503 } });

    const queued = (await first.api('POST', '/api/v1/jobs/batch', { prompts: ['waiting 1', 'waiting 2', 'waiting 3'], provider: 'runpod', fallback: true })).body.jobs as { id: string; status: string; provider: string }[];
    expect(queued.map((job) => [job.status, job.provider])).toEqual([['queued', 'runpod'], ['queued', 'runpod'], ['queued', 'runpod']]);
    expect((await providerOf(first, 'runpod')).queued).toBe(3);

    const pinned = await second.api('POST', '/api/v1/jobs', { prompt: 'opens the circuit', provider: 'runpod' });
    for (const { id } of queued) {
      const job = await second.waitForJob(id, undefined, 30_000);
      expect(job).toMatchObject({ status: 'succeeded', provider: 'mock' });
      expect(job.providerHistory).toEqual([
        { provider: 'runpod', attempts: 0, at: expect.any(String) },
        { provider: 'mock', attempts: 1, at: expect.any(String) },
      ]);
      const moves = failovers(await eventsOf(second, id));
      expect(moves.map(({ data: { from, to, reason } }) => ({ from, to, reason }))).toEqual([{ from: 'runpod', to: 'mock', reason: 'circuit_open' }]);
    }
    // Only the pinned job ever reached the upstream; it waits for the probe, still on runpod.
    expect(proxy.count(isRun)).toBe(2);
    const waiting = (await second.api('GET', `/api/v1/jobs/${pinned.body.id}`)).body;
    expect(waiting).toMatchObject({ status: 'queued', provider: 'runpod', fallback: false });
    expect(failovers(await eventsOf(second, pinned.body.id as string))).toHaveLength(0);
    expect(await providerOf(second, 'runpod')).toMatchObject({ circuit: { state: 'open' }, fallback: ['mock'], queued: 1 });
  });

  it("a 429's Retry-After pauses the provider for both darkrooms: nothing reaches the upstream before it ends, and the circuit stays closed", async () => {
    const { proxy, first, second, databaseUrl } = await setup({ RETRY_BASE_DELAY_MS: '5', RETRY_MAX_DELAY_MS: '50' }, 2500);
    const running = await first.api('POST', '/api/v1/jobs', { prompt: 'polled when the 429 comes' });
    await waitUntil('job waiting upstream', async () => (await first.api('GET', `/api/v1/jobs/${running.body.id}`)).body, (job) => job.stage === 'waiting_upstream');
    proxy.inject({ match: isStatus, times: 1, respond: { status: 429, headers: { 'retry-after': '3' }, body: JSON.stringify({ error: 'slow down' }) } });

    // The pause as the database holds it (read there, since GET /providers would check the provider's health until it is recorded).
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const recorded = await waitUntil(
      'pause recorded',
      async () => (await client.query<{ paused_until: Date | null }>(`select paused_until from provider_circuits where provider = 'runpod'`)).rows[0]?.paused_until ?? null,
      (until) => until !== null,
    ).finally(() => client.end());
    const pauseEnd = (recorded as Date).getTime();
    expect((await providerOf(second, 'runpod')).circuit.pausedUntil).toBe((recorded as Date).toISOString());
    const tooMany = proxy.requests.find((request) => request.outcome === 'fault') as RecordedRequest;
    expect(pauseEnd - (tooMany.answeredAt as number)).toBeGreaterThanOrEqual(3000);

    // New work on both darkrooms while the pause lasts.
    const during = [
      await second.api('POST', '/api/v1/jobs', { prompt: 'during the pause, second darkroom 1' }),
      await second.api('POST', '/api/v1/jobs', { prompt: 'during the pause, second darkroom 2' }),
      await first.api('POST', '/api/v1/jobs', { prompt: 'during the pause, first darkroom' }),
    ];
    for (const { body } of during) expect(Date.parse(body.createdAt as string)).toBeLessThan(pauseEnd);

    for (const [dr, id] of [[first, running.body.id], [second, during[0]?.body.id], [second, during[1]?.body.id], [first, during[2]?.body.id]] as const) {
      expect(await dr.waitForJob(id as string, undefined, 30_000)).toMatchObject({ status: 'succeeded' });
    }
    // What the upstream received after its 429, by its own clock: nothing before the pause's end, then the work.
    const after = proxy.requests.slice(proxy.requests.indexOf(tooMany) + 1);
    expect(after.filter(isRun).length).toBe(3);
    expect(after.filter(isStatus).length).toBeGreaterThanOrEqual(4);
    expect(after.filter((request) => request.at < pauseEnd)).toEqual([]);
    // A 429 is not a failure: the circuit never counted it.
    expect((await providerOf(first, 'runpod')).circuit).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
  });
});
