import { afterEach, describe, expect, it } from 'vitest';
import type { JobQueue } from '../src/core/ports/queue.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { makeScriptedProvider } from './helpers/providers.ts';

let dr: TestDarkroom | undefined;
afterEach(async () => {
  await dr?.close({ removeData: true });
  dr = undefined;
});

/** A queue that misbehaves for the first `times` enqueues: throwing, or accepting and forgetting. */
const faulty = (mode: 'throw' | 'lose', times: number) => (queue: JobQueue): JobQueue => {
  let left = times;
  return {
    ...queue,
    kind: queue.kind,
    consume: queue.consume.bind(queue),
    async enqueue(jobId, options) {
      if (left > 0) {
        left -= 1;
        if (mode === 'throw') throw new Error('connection to the queue was reset');
        return;
      }
      return queue.enqueue(jobId, options);
    },
  };
};

describe('reconciler', () => {
  it('completes a committed job whose enqueue failed', async () => {
    dr = await startDarkroom({ RECONCILE_INTERVAL_MS: '100', RECONCILE_STALE_MS: '300' }, { wrapQueue: faulty('throw', 1) });
    const created = await dr.api('POST', '/api/v1/jobs', { prompt: 'enqueue failed' });
    expect(created.status).toBe(202);
    expect((await dr.darkroom.queue.stats()).waiting + (await dr.darkroom.queue.stats()).delayed).toBe(0);
    const job = await dr.waitForJob(created.body.id);
    expect(job.status).toBe('succeeded');
    expect(job.attempts).toBe(1);
  });

  it('completes a job whose queue entry was lost', async () => {
    dr = await startDarkroom({ RECONCILE_INTERVAL_MS: '100', RECONCILE_STALE_MS: '300' }, { wrapQueue: faulty('lose', 3) });
    const created = await dr.api('POST', '/api/v1/jobs/batch', { prompts: ['lost 1', 'lost 2', 'lost 3'], numImages: 2 });
    for (const { id } of created.body.jobs as { id: string }[]) {
      const job = await dr.waitForJob(id);
      expect(job.status).toBe('succeeded');
      expect(job.images).toHaveLength(2);
    }
  });

  it('leaves a job that is being polled alone: one submission, one attempt', async () => {
    const scripted = makeScriptedProvider({ latencyMs: 2500 });
    dr = await startDarkroom({ RECONCILE_INTERVAL_MS: '100', RECONCILE_STALE_MS: '1500' }, { providers: [scripted.provider] });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'busy but fine' });
    const job = await dr.waitForJob(body.id);
    expect(job.status).toBe('succeeded');
    expect(job.attempts).toBe(1);
    expect(scripted.calls.submit).toBe(1);
  });
});
