import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEmbedded } from './embedded.ts';
import { JOB_BODY } from './http.ts';
import type { BatchJson } from './jobs.ts';
import { expectJson, progress, sleep, type Cleanup, type Row } from './lib.ts';

/**
 * Item 8: failover. End-to-end jobs/s of one embedded darkroom whose default provider is `runpod`
 * (against an in-process darkroom's RunPod dialect) with `PROVIDER_FALLBACK=runpod>mock`, measured
 * twice on fresh darkrooms: with both providers healthy, and with a proxy in front of the RunPod
 * upstream answering every other call (submit or poll) with a 503. Retries, moves along the chain
 * and the circuit breaker are all at their defaults.
 */

export interface FailoverOptions {
  /** Measured jobs per run (in batches of at most 100). */
  jobs: number;
  /** Jobs run to completion before each measured batch (discarded). */
  warmupJobs: number;
  workerConcurrency: number;
  /** Width and height of every image. */
  size: number;
}

interface RunResult {
  jobsPerSecond: number;
  /** Jobs that ended on the mock (moved along the chain). */
  movedJobs: number;
  /** Jobs that needed more than one attempt. */
  retriedJobs: number;
  /** Calls the proxy answered with a 503, and all it saw. */
  faults: number;
  calls: number;
}

const MAX_BATCH = 100;
const RUN_TIMEOUT_MS = 300_000;

interface JobEnd {
  id: string;
  status: string;
  provider: string;
  attempts: number;
  completedAt: string | null;
}

/** An HTTP proxy that forwards everything, or, while `failing`, answers every other call with a 503. */
async function startHalfFailingProxy(target: string): Promise<{ url: string; failing: boolean; faults: number; calls: number; close(): Promise<void> }> {
  const upstream = new URL(target);
  const state = { url: '', failing: false, faults: 0, calls: 0, close: async (): Promise<void> => undefined };
  const server: Server = createServer((incoming, reply) => {
    state.calls += 1;
    if (state.failing && state.calls % 2 === 0) {
      state.faults += 1;
      incoming.resume();
      reply.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'half of the calls fail' }));
      return;
    }
    const outgoing = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: { ...incoming.headers, host: upstream.host } },
      (answer) => {
        reply.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(reply);
      },
    );
    outgoing.on('error', () => {
      if (!reply.headersSent) reply.writeHead(502).end();
    });
    incoming.pipe(outgoing);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

async function submitBatches(url: string, count: number, size: number, tag: string): Promise<string[]> {
  const batchIds: string[] = [];
  for (let offset = 0; offset < count; offset += MAX_BATCH) {
    const prompts = Array.from({ length: Math.min(MAX_BATCH, count - offset) }, (_, i) => `${JOB_BODY.prompt} (${tag} ${offset + i})`);
    const batch = await expectJson<{ batchId: string }>(202, `${url}/api/v1/jobs/batch`, { method: 'POST', body: { prompts, width: size, height: size, numImages: 1 } });
    batchIds.push(batch.batchId);
  }
  return batchIds;
}

/** Waits for every job of the batches to end; each must have succeeded. */
async function awaitJobs(url: string, batchIds: string[]): Promise<JobEnd[]> {
  const ended: JobEnd[] = [];
  const giveUpAt = Date.now() + RUN_TIMEOUT_MS;
  for (const batchId of batchIds) {
    for (;;) {
      const batch = await expectJson<BatchJson & { jobs: JobEnd[] }>(200, `${url}/api/v1/batches/${batchId}`);
      const unfinished = (batch.counts.queued ?? 0) + (batch.counts.running ?? 0);
      if (unfinished === 0) {
        const failed = batch.jobs.filter((job) => job.status !== 'succeeded');
        if (failed.length > 0) throw new Error(`batch ${batchId}: ${failed.length} jobs did not succeed (${JSON.stringify(batch.counts)})`);
        ended.push(...batch.jobs);
        break;
      }
      if (Date.now() > giveUpAt) throw new Error(`batch ${batchId} unfinished after ${RUN_TIMEOUT_MS / 1000} s: ${JSON.stringify(batch.counts)}`);
      await sleep(250);
    }
  }
  return ended;
}

export async function benchFailover(cleanup: Cleanup, options: FailoverOptions): Promise<{ rows: Row[]; notes: string[] }> {
  progress('failover: starting the RunPod upstream darkroom (in this process, PGlite, MOCK_LATENCY_MS=0)');
  const upstream = await startEmbedded(cleanup, { MOCK_LATENCY_MS: '0', AUTH: 'off', WORKER_CONCURRENCY: '16' });

  const run = async (label: string, failing: boolean): Promise<RunResult> => {
    const proxy = await startHalfFailingProxy(upstream.url);
    const closeProxy = cleanup.add('close the failover proxy', () => proxy.close());
    const darkroom = await startEmbedded(cleanup, {
      DEFAULT_PROVIDER: 'runpod',
      RUNPOD_API_URL: `${proxy.url}/v2`,
      RUNPOD_API_KEY: 'bench-key',
      RUNPOD_ENDPOINT_ID: 'ep-bench',
      RUNPOD_INPUT_FORMAT: 'sdxl',
      PROVIDER_FALLBACK: 'runpod>mock',
      MOCK_LATENCY_MS: '0',
      WORKER_CONCURRENCY: String(options.workerConcurrency),
    });
    progress(`failover: ${label}: ${options.warmupJobs} warm-up jobs, then ${options.jobs}`);
    await awaitJobs(darkroom.url, await submitBatches(darkroom.url, options.warmupJobs, options.size, `${label} warm-up`));

    proxy.failing = failing;
    const before = { faults: proxy.faults, calls: proxy.calls };
    const startedAt = Date.now();
    const ended = await awaitJobs(darkroom.url, await submitBatches(darkroom.url, options.jobs, options.size, label));
    const lastCompleted = Math.max(...ended.map((job) => Date.parse(job.completedAt as string)));
    const result: RunResult = {
      jobsPerSecond: options.jobs / ((lastCompleted - startedAt) / 1000),
      movedJobs: ended.filter((job) => job.provider === 'mock').length,
      retriedJobs: ended.filter((job) => job.attempts > 1).length,
      faults: proxy.faults - before.faults,
      calls: proxy.calls - before.calls,
    };
    progress(`failover: ${label}: ${result.jobsPerSecond.toFixed(1)} jobs/s, ${result.movedJobs} moved to the mock`);
    await darkroom.close();
    await closeProxy();
    return result;
  };

  const healthy = await run('both healthy', false);
  const halfFailing = await run('runpod failing half its calls', true);
  await upstream.close();

  const rows: Row[] = [
    {
      metric: `Failover: jobs/s, runpod>mock chain, runpod failing half its calls (${options.jobs} jobs)`,
      value: halfFailing.jobsPerSecond,
      unit: 'jobs/s',
      reference: { value: healthy.jobsPerSecond, label: 'both healthy' },
    },
  ];
  const notes = [
    `Failover: one embedded darkroom (PGlite, WORKER_CONCURRENCY=${options.workerConcurrency}) per run, DEFAULT_PROVIDER=runpod against an in-process darkroom's RunPod dialect (its mock instant) ` +
      `through a proxy, PROVIDER_FALLBACK=runpod>mock (the mock instant), every other setting at its default (FAILOVER_AFTER_ATTEMPTS=2, CIRCUIT_FAILURES=5, CIRCUIT_COOLDOWN=30s, RETRY_BASE_DELAY_MS=1000). ` +
      `${options.jobs} jobs ${options.size}×${options.size} in batches of ≤ ${MAX_BATCH} after ${options.warmupJobs} warm-up jobs, timed from the first POST to the last completedAt; ratio = half failing / healthy. ` +
      `Healthy: ${healthy.movedJobs} jobs moved, ${healthy.retriedJobs} retried, ${healthy.calls} upstream calls. ` +
      `Half failing: the proxy answered ${halfFailing.faults} of ${halfFailing.calls} calls with 503; ${halfFailing.movedJobs} jobs ended on the mock, ${halfFailing.retriedJobs} needed more than one attempt, none failed.`,
  ];
  return { rows, notes };
}
