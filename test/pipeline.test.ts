import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeScriptedProvider } from './helpers/providers.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

let dr: TestDarkroom | undefined;
afterEach(async () => {
  await dr?.close({ removeData: true });
  dr = undefined;
});

const objectFiles = (dataDir: string, jobId: string) => {
  const dir = join(dataDir, 'objects', 'jobs', jobId);
  return existsSync(dir) ? readdirSync(dir).sort() : [];
};

describe('worker pipeline', () => {
  it('retries retryable failures with backoff and then succeeds, keeping the error history in events', async () => {
    const scripted = makeScriptedProvider({ submits: ['retryable', 'rate-limited', 'ok'] });
    dr = await startDarkroom({}, { providers: [scripted.provider] });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'retry me', numImages: 2 });
    const job = await dr.waitForJob(body.id);
    expect(job.status).toBe('succeeded');
    expect(job.attempts).toBe(3);
    expect(job.error).toBeNull();
    expect(job.images).toHaveLength(2);
    expect(scripted.calls.submit).toBe(3);
    const events = (await dr.api('GET', `/api/v1/jobs/${body.id}/events`)).body.items as { status: string; data: { error?: { code: string } } }[];
    const requeues = events.filter((event) => event.status === 'queued' && event.data.error);
    expect(requeues.map((event) => event.data.error?.code)).toEqual(['upstream_unavailable', 'rate_limited']);
  });

  it('fails at once on a permanent error, with the provider message', async () => {
    const scripted = makeScriptedProvider({ submits: ['permanent'] });
    dr = await startDarkroom({}, { providers: [scripted.provider] });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'refused' });
    const job = await dr.waitForJob(body.id);
    expect(job.status).toBe('failed');
    expect(job.attempts).toBe(1);
    expect(job.error).toEqual({ code: 'rejected', message: 'upstream refused: prompt violates policy', retryable: false });
    expect(job.images).toEqual([]);
    expect(scripted.calls.submit).toBe(1);
  });

  it('gives up after JOB_MAX_ATTEMPTS retryable failures', async () => {
    const scripted = makeScriptedProvider({ submits: ['retryable', 'retryable', 'retryable', 'retryable'] });
    dr = await startDarkroom({ JOB_MAX_ATTEMPTS: '3' }, { providers: [scripted.provider] });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'flaky' });
    const job = await dr.waitForJob(body.id);
    expect(job.status).toBe('failed');
    expect(job.attempts).toBe(3);
    expect(job.error).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    expect(scripted.calls.submit).toBe(3);
  });

  it('keeps polling the same upstream job after a network error, and resubmits after a worker failure', async () => {
    const scripted = makeScriptedProvider({ polls: ['network', 'worker-failed'] });
    dr = await startDarkroom({}, { providers: [scripted.provider] });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'bumpy road' });
    const job = await dr.waitForJob(body.id);
    expect(job.status).toBe('succeeded');
    // network error: same provider job polled again; worker failure: a second submission.
    expect(scripted.calls.submit).toBe(2);
    expect(scripted.calls.poll).toBe(3);
  });

  it('expires a job whose deadline passes first, and cancels it upstream', async () => {
    const scripted = makeScriptedProvider({ latencyMs: 60_000 });
    dr = await startDarkroom({}, { providers: [scripted.provider] });
    const deadline = new Date(Date.now() + 400).toISOString();
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'too slow', deadline });
    const running = await dr.waitForJob(body.id, ['running']);
    const job = await dr.waitForJob(body.id);
    expect(job.status).toBe('expired');
    expect(job.error).toMatchObject({ code: 'deadline_exceeded', retryable: false });
    expect(job.deadlineAt).toBe(deadline);
    expect(scripted.calls.cancel).toEqual([expect.stringMatching(/^mock-/)]);
    expect(running.status).toBe('running');
  });

  it('expires a queued job that never got a worker before its deadline', async () => {
    dr = await startDarkroom({ WORKER_CONCURRENCY: '0' }, { persist: true });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'waits forever', deadline: new Date(Date.now() + 150).toISOString() });
    await new Promise((resolve) => setTimeout(resolve, 250));
    // A worker appears only later: the first thing it does is notice the deadline.
    await dr.darkroom.close();
    const again = await startDarkroom({}, { dataDir: dr.dataDir });
    dr = again;
    const job = await again.waitForJob(body.id);
    expect(job.status).toBe('expired');
    expect(job.attempts).toBe(0);
  });

  it('cancels a running job here and upstream; the job keeps no images', async () => {
    const scripted = makeScriptedProvider({ latencyMs: 60_000 });
    dr = await startDarkroom({}, { providers: [scripted.provider] });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'never mind' });
    const running = await dr.waitForJob(body.id, ['running']);
    await waitUntil(async () => (await dr!.api('GET', `/api/v1/jobs/${body.id}`)).body.providerJobId !== null);
    const cancelled = await dr.api('POST', `/api/v1/jobs/${body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(scripted.calls.cancel).toEqual([cancelled.body.providerJobId]);
    expect(running.id).toBe(body.id);
    const again = await dr.api('DELETE', `/api/v1/jobs/${body.id}`);
    expect(again.status).toBe(409);
  });

  it('cancel racing completion: cancel wins while storing, and nothing of the run is kept', async () => {
    const scripted = makeScriptedProvider({});
    const hold = scripted.holdCompletion();
    dr = await startDarkroom({}, { providers: [scripted.provider] });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'photo finish', numImages: 3 });
    await hold.reached;
    const cancelled = await dr.api('POST', `/api/v1/jobs/${body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    hold.release();
    await waitUntil(async () => (await dr!.darkroom.queue.stats()).active === 0);
    const job = (await dr.api('GET', `/api/v1/jobs/${body.id}`)).body;
    expect(job.status).toBe('cancelled');
    expect(job.images).toEqual([]);
    expect(objectFiles(dr.dataDir, body.id)).toEqual([]);
    const link = await dr.api('GET', `/api/v1/jobs/${body.id}/images/0`);
    expect(link.status).toBe(409);
  });

  it('cancel racing completion under load: every job ends cancelled xor succeeded-with-images', async () => {
    dr = await startDarkroom({ MOCK_LATENCY_MS: '0-30' });
    const created = await dr.api('POST', '/api/v1/jobs/batch', { prompts: Array.from({ length: 30 }, (_, i) => `race ${i}`), numImages: 2 });
    const ids = (created.body.jobs as { id: string }[]).map((job) => job.id);
    const answers = await Promise.all(
      ids.map(async (id, index) => {
        await new Promise((resolve) => setTimeout(resolve, index * 3));
        return (await dr!.api('POST', `/api/v1/jobs/${id}/cancel`)).status;
      }),
    );
    for (const [index, id] of ids.entries()) {
      const job = await dr.waitForJob(id);
      if (answers[index] === 200) {
        expect(job.status).toBe('cancelled');
        expect(job.images).toEqual([]);
      } else {
        expect(answers[index]).toBe(409);
        expect(job.status).toBe('succeeded');
        expect(job.images).toHaveLength(2);
        expect(objectFiles(dr.dataDir, id)).toEqual(['0-original.png', '0-thumbnail.webp', '1-original.png', '1-thumbnail.webp']);
      }
    }
    await waitUntil(async () => (await dr!.darkroom.queue.stats()).active === 0);
    for (const [index, id] of ids.entries()) {
      if (answers[index] === 200) expect(objectFiles(dr.dataDir, id)).toEqual([]);
    }
  });

  it('runs the mock failure injection: every job ends, failures carry their codes, successes have all images', async () => {
    // Runs of failures are what this test wants: the mock's circuit must not open over them (test/failover.test.ts covers that).
    dr = await startDarkroom({ MOCK_FAILURE_RATE: '0.6', JOB_MAX_ATTEMPTS: '4', CIRCUIT_FAILURES: '1000' });
    const created = await dr.api('POST', '/api/v1/jobs/batch', { prompts: Array.from({ length: 40 }, (_, i) => `dice ${i}`), numImages: 2 });
    const jobs = await Promise.all((created.body.jobs as { id: string }[]).map((job) => dr!.waitForJob(job.id)));
    const codes = new Set<string>();
    for (const job of jobs) {
      if (job.status === 'succeeded') {
        expect(job.images).toHaveLength(2);
      } else {
        expect(job.status).toBe('failed');
        const error = job.error as { code: string; retryable: boolean };
        codes.add(error.code);
        if (error.retryable) expect(job.attempts).toBe(4);
        else expect(error.code).toBe('rejected');
      }
    }
    expect(jobs.some((job) => job.status === 'succeeded')).toBe(true);
    expect(codes.has('rejected')).toBe(true);
    // Retried jobs show up as attempts > 1.
    expect(jobs.some((job) => (job.attempts as number) > 1)).toBe(true);
  });
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
