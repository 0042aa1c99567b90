import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobStore } from '../src/core/ports/job-store.ts';
import { makeProviderRegistry, TEXT_ONLY, type Provider } from '../src/core/ports/provider.ts';
import type { HandlerResult } from '../src/core/ports/queue.ts';
import { makeMockProvider } from '../src/providers/mock/index.ts';
import { prepareImage } from '../src/storage/thumbnail.ts';
import { makePipeline } from '../src/worker/pipeline.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * Invariant 6, in one process: two pipelines (two "workers") on one database, driven by hand
 * instead of by a queue, so each test decides which turn runs when. darkroom's own worker is off.
 */
const LEASE_MS = 1000;

let dr: TestDarkroom | undefined;
afterEach(async () => {
  await dr?.close({ removeData: true });
  dr = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error('condition not met in time');
    await sleep(10);
  }
}

interface Gate {
  /** Resolves when a submit is waiting at the gate. */
  reached: Promise<void>;
  open(): void;
}

/**
 * The mock provider with a record of its calls, each submit's abort signal, and gates that hold
 * the next submit (before it returns) until the test opens them.
 */
function makeGatedProvider() {
  // Upstream jobs take a while, so a job is still running after the turn that submits it.
  const inner = makeMockProvider({ latencyMs: { min: 300, max: 300 }, failureRate: 0 });
  const calls = { submit: 0, submitted: [] as string[], aborted: 0, cancel: [] as string[] };
  const gates: { reached: () => void; opened: Promise<void> }[] = [];
  const provider: Provider = {
    name: 'mock',
    capabilities: TEXT_ONLY,
    async submit(request, context) {
      calls.submit += 1;
      const gate = gates.shift();
      if (gate) {
        gate.reached();
        await new Promise<void>((resolve, reject) => {
          context.signal.addEventListener('abort', () => {
            calls.aborted += 1;
            reject(context.signal.reason);
          });
          void gate.opened.then(resolve);
        });
      }
      const submitted = await inner.submit(request, context);
      calls.submitted.push(submitted.providerJobId);
      return submitted;
    },
    poll: (job, context) => inner.poll(job, context),
    async cancel(job) {
      calls.cancel.push(job.providerJobId);
      await inner.cancel(job);
    },
    check: () => inner.check(),
  };
  const holdNextSubmit = (): Gate => {
    let open: () => void = () => undefined;
    let reached: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    gates.push({ reached, opened });
    return { reached: reachedPromise, open };
  };
  return { provider, calls, holdNextSubmit };
}

/** A job store whose lease renewals hang while frozen, as those of a process stopped mid-turn. */
function freezable(repo: JobStore) {
  let thaw: () => void = () => undefined;
  let frozen: Promise<void> | undefined;
  const store: JobStore = {
    ...repo,
    async renewLease(id, token, durationMs) {
      if (frozen) await frozen;
      return repo.renewLease(id, token, durationMs);
    },
  };
  return {
    store,
    freeze: () => void (frozen ??= new Promise<void>((resolve) => (thaw = resolve))),
    thaw: () => {
      frozen = undefined;
      thaw();
    },
  };
}

async function setup() {
  dr = await startDarkroom({ WORKER_CONCURRENCY: '0' });
  const gated = makeGatedProvider();
  const pipelineOn = (repo: JobStore) =>
    makePipeline({
      repo,
      providers: makeProviderRegistry([gated.provider]),
      storage: dr!.darkroom.storage,
      prepareImage,
      retry: { baseMs: 5, maxMs: 50 },
      providerCallTimeoutMs: 10_000,
      leaseMs: LEASE_MS,
      logger: pino({ level: 'silent' }),
    });
  const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'one turn at a time' });
  return { dr, gated, pipelineOn, jobId: body.id as string };
}

/** Runs turns of one pipeline, as its queue would, until the job needs no more. */
async function drive(run: (jobId: string) => Promise<HandlerResult>, jobId: string): Promise<void> {
  for (let turn = 0; turn < 50; turn += 1) {
    const next = await run(jobId);
    if (!next) return;
    await sleep(Math.min(next.runAgainInMs, 50));
  }
  throw new Error(`job ${jobId} still wants turns after 50`);
}

describe('job leases: one turn of a job at a time', () => {
  it('a second turn while the first holds the lease only asks to look again once it expires', async () => {
    const { dr, gated, pipelineOn, jobId } = await setup();
    const first = pipelineOn(dr.darkroom.repo);
    const second = pipelineOn(dr.darkroom.repo);
    const gate = gated.holdNextSubmit();
    const firstTurn = first.run(jobId);
    await gate.reached;

    // The first turn renews its lease (every third of it), so the second keeps being sent away.
    for (let look = 0; look < 3; look += 1) {
      const answer = await second.run(jobId);
      expect(answer?.runAgainInMs).toBeGreaterThan(0);
      expect(answer?.runAgainInMs).toBeLessThanOrEqual(LEASE_MS + 100);
      await sleep(LEASE_MS);
    }
    expect(gated.calls.submit).toBe(1);
    expect((await dr.api('GET', `/api/v1/jobs/${jobId}`)).body).toMatchObject({ status: 'running', stage: 'submitting', providerJobId: null });

    gate.open();
    expect(await firstTurn).toMatchObject({ runAgainInMs: expect.any(Number) });
    // The lease was released with the turn: the second pipeline carries on from the saved id.
    await drive(second.run, jobId);
    const job = (await dr.api('GET', `/api/v1/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ status: 'succeeded', providerJobId: gated.calls.submitted[0] });
    expect(job.images).toHaveLength(1);
    expect(gated.calls.submit).toBe(1);
  });

  /**
   * Two pipelines on one job: the first is inside its submit when its process stops renewing (frozen),
   * and its lease has run out, so the second may take the job.
   */
  async function stalledMidSubmit() {
    const { dr, gated, pipelineOn, jobId } = await setup();
    const stalled = freezable(dr.darkroom.repo);
    const first = pipelineOn(stalled.store);
    const second = pipelineOn(dr.darkroom.repo);
    const gate = gated.holdNextSubmit();
    const firstTurn = first.run(jobId);
    await gate.reached;
    stalled.freeze();
    await sleep(LEASE_MS + 100);
    return { dr, gated, gate, jobId, stalled, second, firstTurn };
  }

  it('a turn whose lease was taken over stops its submission and writes nothing', async () => {
    const { dr, gated, jobId, stalled, second, firstTurn } = await stalledMidSubmit();
    await drive(second.run, jobId);
    const done = (await dr.api('GET', `/api/v1/jobs/${jobId}`)).body;
    expect(done).toMatchObject({ status: 'succeeded', providerJobId: gated.calls.submitted[0] });

    // The first turn wakes up: its next renewal finds the lease taken and aborts the submission.
    stalled.thaw();
    expect(await firstTurn).toBeUndefined();
    expect(gated.calls.aborted).toBe(1);
    expect(gated.calls.submitted).toHaveLength(1);
    expect(gated.calls.cancel).toEqual([]);
    const after = (await dr.api('GET', `/api/v1/jobs/${jobId}`)).body;
    const unchanged = (job: typeof done) => ({ status: job.status, providerJobId: job.providerJobId, updatedAt: job.updatedAt, attempts: job.attempts });
    expect(unchanged(after)).toEqual(unchanged(done));
    const events = (await dr.api('GET', `/api/v1/jobs/${jobId}/events`)).body.items as { type: string }[];
    expect(events.filter((event) => event.type === 'image')).toHaveLength(1);
  });

  it('an answer that reaches a turn after its lease was taken over is cancelled upstream, never recorded', async () => {
    const { dr, gated, gate, jobId, stalled, second, firstTurn } = await stalledMidSubmit();
    // The second turn submits and records its upstream job; the job is still running.
    expect(await second.run(jobId)).toMatchObject({ runAgainInMs: expect.any(Number) });
    const taken = gated.calls.submitted[0];
    expect((await dr.api('GET', `/api/v1/jobs/${jobId}`)).body).toMatchObject({ status: 'running', providerJobId: taken });

    // The first turn's submission answers before its renewal could tell it anything.
    gate.open();
    await until(() => gated.calls.cancel.length === 1);
    stalled.thaw();
    expect(await firstTurn).toBeUndefined();
    const orphan = gated.calls.submitted[1];
    expect(orphan).toBeDefined();
    expect(orphan).not.toBe(taken);
    expect(gated.calls.cancel).toEqual([orphan]);
    expect((await dr.api('GET', `/api/v1/jobs/${jobId}`)).body).toMatchObject({ status: 'running', providerJobId: taken });

    await drive(second.run, jobId);
    const job = (await dr.api('GET', `/api/v1/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ status: 'succeeded', providerJobId: taken });
    expect(job.images).toHaveLength(1);
  });

  it('a cancel wins against the turn holding the lease, which stops the upstream job it started', async () => {
    const { dr, gated, pipelineOn, jobId } = await setup();
    const first = pipelineOn(dr.darkroom.repo);
    const gate = gated.holdNextSubmit();
    const firstTurn = first.run(jobId);
    await gate.reached;
    const cancelled = await dr.api('POST', `/api/v1/jobs/${jobId}/cancel`);
    expect(cancelled.status).toBe(200);
    gate.open();
    expect(await firstTurn).toBeUndefined();
    expect(gated.calls.cancel).toEqual(gated.calls.submitted);
    expect((await dr.api('GET', `/api/v1/jobs/${jobId}`)).body).toMatchObject({ status: 'cancelled', providerJobId: null, images: [] });
  });
});
