import { renderMockImage } from '../src/providers/mock/image.ts';
import { prepareImage } from '../src/storage/thumbnail.ts';
import { startEmbedded } from './embedded.ts';
import { JOB_BODY, measure, type HttpOptions } from './http.ts';
import { expectJson, percentile, progress, sleep, type Cleanup, type Row } from './lib.ts';

/** The parts of the native job JSON the bench reads. */
export interface JobJson {
  id: string;
  status: string;
  attempts: number;
  error: { code: string; message: string } | null;
  timings: { providerMs: number; imageMs: number; storageMs: number };
  createdAt: string;
  completedAt: string | null;
}

export interface BatchJson {
  batchId: string;
  total: number;
  counts: Record<string, number>;
  jobs: JobJson[];
}

export interface JobsOptions {
  /** Item 2: jobs measured one by one (after `warmupJobs` discarded ones), `inFlight` at a time. */
  overheadJobs: number;
  warmupJobs: number;
  inFlight: number;
  /** Item 3: jobs submitted as batches of at most 100 (the API's limit). */
  throughputJobs: number;
  /** Jobs for the no-orchestration reference of item 3. */
  referenceJobs: number;
  workerConcurrency: number;
  /** When given, also measures GET /api/v1/jobs/{id} of a succeeded job once the worker is idle. */
  http?: { options: HttpOptions; bareGetRps: number };
}

export interface Sample {
  /** completedAt − createdAt, both stamped by darkroom. */
  totalMs: number;
  providerMs: number;
  imageMs: number;
  storageMs: number;
  /** total − providerMs − imageMs: queue, database, HTTP-free bookkeeping, storage writes. */
  overheadMs: number;
  /** Seen by the client: POST sent → the long poll answered `succeeded`. */
  observedMs: number;
}

const MAX_BATCH = 100;
const LONG_POLL_SECONDS = 30;
const TERMINAL_FAILURES = ['failed', 'cancelled', 'expired'];

function sampleOf(job: JobJson, observedMs: number): Sample {
  if (job.status !== 'succeeded' || !job.completedAt) throw new Error(`job ${job.id} is ${job.status}: ${JSON.stringify(job.error)}`);
  const totalMs = Date.parse(job.completedAt) - Date.parse(job.createdAt);
  const { providerMs, imageMs, storageMs } = job.timings;
  return { totalMs, providerMs, imageMs, storageMs, overheadMs: totalMs - providerMs - imageMs, observedMs };
}

/**
 * Submits one job and waits for it with the long poll (GET /api/v1/jobs/{id}?wait=…), so the client
 * does not load the server while the job runs: one request answers when the job is terminal.
 */
async function runOne(url: string, index: number): Promise<Sample> {
  const started = performance.now();
  const created = await expectJson<JobJson>(202, `${url}/api/v1/jobs`, {
    method: 'POST',
    body: { ...JOB_BODY, prompt: `${JOB_BODY.prompt} #${index}` },
  });
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    const job = await expectJson<JobJson>(200, `${url}/api/v1/jobs/${created.id}?wait=${LONG_POLL_SECONDS}`);
    if (job.status === 'succeeded' || TERMINAL_FAILURES.includes(job.status)) {
      const sample = sampleOf(job, performance.now() - started);
      if (job.attempts !== 1) throw new Error(`job ${job.id} took ${job.attempts} attempts; the overhead sample would include retries`);
      return sample;
    }
    if (Date.now() > giveUpAt) throw new Error(`job ${job.id} is still ${job.status} after 60 s`);
  }
}

/** Runs `task(0..count-1)` with at most `limit` running at once; results in index order. */
async function pool<T>(count: number, limit: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const index = next;
      next += 1;
      results[index] = await task(index);
    }
  });
  await Promise.all(lanes);
  return results;
}

export async function overhead(url: string, options: Pick<JobsOptions, 'warmupJobs' | 'overheadJobs' | 'inFlight'>): Promise<Sample[]> {
  progress(`jobs: overhead: ${options.warmupJobs} warm-up + ${options.overheadJobs} jobs, ${options.inFlight} at a time`);
  await pool(options.warmupJobs, options.inFlight, (index) => runOne(url, -1 - index));
  const samples = await pool(options.overheadJobs, options.inFlight, (index) => runOne(url, index));
  progress(`jobs: overhead: p50 ${percentile(samples.map((s) => s.overheadMs), 50).toFixed(1)} ms`);
  return samples;
}

interface ThroughputResult {
  jobsPerSecond: number;
  /** Same, with the end seen by the client (last batch poll), not the last completedAt. */
  observedJobsPerSecond: number;
  lastJobId: string;
}

async function throughput(url: string, options: JobsOptions): Promise<ThroughputResult> {
  const count = options.throughputJobs;
  progress(`jobs: throughput: ${count} jobs in batches of ≤ ${MAX_BATCH}, WORKER_CONCURRENCY ${options.workerConcurrency}`);
  const startedAt = Date.now();
  const started = performance.now();
  const batchIds: string[] = [];
  for (let offset = 0; offset < count; offset += MAX_BATCH) {
    const size = Math.min(MAX_BATCH, count - offset);
    const prompts = Array.from({ length: size }, (_, i) => `${JOB_BODY.prompt} (batch job ${offset + i})`);
    const batch = await expectJson<{ batchId: string }>(202, `${url}/api/v1/jobs/batch`, {
      method: 'POST',
      body: { prompts, width: JOB_BODY.width, height: JOB_BODY.height, numImages: JOB_BODY.numImages },
    });
    batchIds.push(batch.batchId);
  }

  // The batch view carries every job with signed links, so it is polled gently, one batch at a time;
  // the measured end is the last completedAt, which polling does not delay.
  const finished: JobJson[] = [];
  const giveUpAt = Date.now() + 120_000;
  for (const batchId of batchIds) {
    for (;;) {
      const batch = await expectJson<BatchJson>(200, `${url}/api/v1/batches/${batchId}`);
      const failures = TERMINAL_FAILURES.reduce((sum, status) => sum + (batch.counts[status] ?? 0), 0);
      if (failures > 0) throw new Error(`batch ${batchId}: ${failures} jobs did not succeed (${JSON.stringify(batch.counts)})`);
      if (batch.counts.succeeded === batch.total) {
        finished.push(...batch.jobs);
        break;
      }
      if (Date.now() > giveUpAt) throw new Error(`batch ${batchId} unfinished after 120 s: ${JSON.stringify(batch.counts)}`);
      await sleep(250);
    }
  }
  const observedSeconds = (performance.now() - started) / 1000;
  if (finished.length !== count) throw new Error(`expected ${count} finished jobs, got ${finished.length}`);
  const lastCompleted = Math.max(...finished.map((job) => Date.parse(job.completedAt as string)));
  const seconds = (lastCompleted - startedAt) / 1000;
  const result = { jobsPerSecond: count / seconds, observedJobsPerSecond: count / observedSeconds, lastJobId: (finished.at(-1) as JobJson).id };
  progress(`jobs: throughput: ${result.jobsPerSecond.toFixed(1)} jobs/s`);
  return result;
}

/** The same per-job work without darkroom around it: render the mock PNG, make the thumbnail. */
async function bareWork(options: JobsOptions): Promise<number> {
  progress(`jobs: reference: ${options.referenceJobs} × (renderMockImage + prepareImage), ${options.workerConcurrency} at a time`);
  const started = performance.now();
  await pool(options.referenceJobs, options.workerConcurrency, async (index) => {
    const png = await renderMockImage(`${JOB_BODY.prompt} (reference ${index})`, index, JOB_BODY.width, JOB_BODY.height);
    await prepareImage(png);
  });
  return options.referenceJobs / ((performance.now() - started) / 1000);
}

/** Items 2 and 3, on one embedded darkroom with an instant mock provider. */
export async function benchJobs(cleanup: Cleanup, options: JobsOptions): Promise<{ rows: Row[]; notes: string[] }> {
  const embedded = await startEmbedded(cleanup, { MOCK_LATENCY_MS: '0', WORKER_CONCURRENCY: String(options.workerConcurrency) });
  const samples = await overhead(embedded.url, options);
  const flow = await throughput(embedded.url, options);

  let succeededGet: Row | undefined;
  if (options.http) {
    const result = await measure(
      'darkroom GET /api/v1/jobs/{id} (succeeded job, worker idle)',
      { url: `${embedded.url}/api/v1/jobs/${flow.lastJobId}` },
      options.http.options,
    );
    succeededGet = {
      metric: 'HTTP GET /api/v1/jobs/{id}, succeeded job',
      value: result.requestsPerSecond,
      unit: 'req/s',
      reference: { value: options.http.bareGetRps, label: 'bare GET /' },
    };
  }
  await embedded.close();
  const reference = await bareWork(options);

  const p50 = (pick: (sample: Sample) => number) => percentile(samples.map(pick), 50);
  const p99 = (pick: (sample: Sample) => number) => percentile(samples.map(pick), 99);
  const shares = samples.map((sample) => sample.overheadMs / sample.totalMs);
  const rows: Row[] = [
    ...(succeededGet ? [succeededGet] : []),
    { metric: 'Job overhead p50 (total − provider − image)', value: p50((s) => s.overheadMs), unit: 'ms', reference: { value: p50((s) => s.totalMs), label: 'total p50' }, ratio: percentile(shares, 50) },
    { metric: 'Job overhead p99', value: p99((s) => s.overheadMs), unit: 'ms', reference: { value: p99((s) => s.totalMs), label: 'total p99' }, ratio: percentile(shares, 99) },
    { metric: '  job total p50 (completedAt − createdAt)', value: p50((s) => s.totalMs), unit: 'ms' },
    { metric: '  job providerMs p50 (mock render)', value: p50((s) => s.providerMs), unit: 'ms' },
    { metric: '  job imageMs p50 (thumbnail)', value: p50((s) => s.imageMs), unit: 'ms' },
    { metric: '  job storageMs p50 (part of overhead)', value: p50((s) => s.storageMs), unit: 'ms' },
    { metric: '  job submit → seen succeeded p50 (client)', value: p50((s) => s.observedMs), unit: 'ms' },
    {
      metric: `End-to-end throughput, ${options.throughputJobs} jobs 512×512`,
      value: flow.jobsPerSecond,
      unit: 'jobs/s',
      reference: { value: reference, label: 'render+thumbnail only' },
    },
  ];
  const notes = [
    `Overhead: ${options.overheadJobs} jobs (after ${options.warmupJobs} warm-up) via POST /api/v1/jobs, ${options.inFlight} in flight, each awaited with the long poll GET /api/v1/jobs/{id}?wait=${LONG_POLL_SECONDS} (no polling load on the server); ` +
      `total = completedAt − createdAt from the job JSON (ms resolution; createdAt is the insert, completedAt is stamped just before the final commit). ` +
      `Overhead = total − timings.providerMs − timings.imageMs per job, so it holds the queue, database writes, storage writes (storageMs) and waiting for the event loop; ratio = overhead / total of the same job (p50 and p99 of that share). MOCK_LATENCY_MS=0, WORKER_CONCURRENCY=${options.workerConcurrency}.`,
    `Throughput: ${options.throughputJobs} jobs as ${Math.ceil(options.throughputJobs / MAX_BATCH)} POST /api/v1/jobs/batch of ≤ ${MAX_BATCH} prompts, timed from the first POST to the last completedAt ` +
      `(seen by the client polling GET /api/v1/batches/{id} every 250 ms: ${flow.observedJobsPerSecond.toFixed(1)} jobs/s). ` +
      `Reference: ${options.referenceJobs} × renderMockImage + prepareImage in this process, ${options.workerConcurrency} at a time, no HTTP/database/queue/storage.`,
  ];
  return { rows, notes };
}
