import { startEmbedded } from './embedded.ts';
import { progress, sleep, type Cleanup, type Row } from './lib.ts';
import { awaitBatches, probeServices, redact, startDistributed, submit, sweepStale, type Services } from './production.ts';

/**
 * Item 7: how fast the jobs of a worker that dies continue. `darkroom api` + 2 `darkroom worker`
 * children on Postgres and Redis run jobs on the runpod provider against an in-process darkroom's
 * RunPod dialect (the upstream, whose mock takes a fixed time per job). The same number of jobs is
 * drained twice, each time by a fresh deployment: undisturbed, and with one worker SIGKILLed a
 * moment after the jobs were submitted. Its running turns come back once their BullMQ locks and
 * job leases expire (JOB_LEASE_MS, default); its jobs waiting between polls, at once.
 */

export interface TakeoverOptions {
  /** Measured jobs per drain (one batch, at most 100). */
  jobs: number;
  /** Jobs run to completion before each measured batch (discarded). */
  warmupJobs: number;
  /** MOCK_LATENCY_MS of the upstream darkroom: how long each upstream job takes. */
  upstreamLatencyMs: number;
  /** When one worker is SIGKILLed, after the first POST of the measured batch. */
  killAfterMs: number;
  /** WORKER_CONCURRENCY of each worker process. */
  workerConcurrency: number;
  /** Width and height of every image. */
  size: number;
}

interface Drain {
  /** First POST → last completedAt, in seconds. */
  seconds: number;
  /** Jobs that needed more than one attempt. */
  retried: number;
  /** Submissions the upstream received beyond one per job (the submission window). */
  extraSubmissions: number;
}

export async function benchTakeover(cleanup: Cleanup, options: TakeoverOptions): Promise<{ rows: Row[]; notes: string[] }> {
  const probed = await probeServices();
  if ('skip' in probed) {
    progress(`takeover: skipped: ${probed.skip}; set BENCH_DATABASE_URL / BENCH_REDIS_URL (or TEST_*) to run it`);
    return {
      rows: [],
      notes: [`Takeover section skipped: ${probed.skip}. It needs Postgres (BENCH_DATABASE_URL or TEST_DATABASE_URL) and Redis (BENCH_REDIS_URL or TEST_REDIS_URL).`],
    };
  }
  const { services } = probed;
  await sweepStale(services);

  progress(`takeover: starting the upstream darkroom (in this process, PGlite, MOCK_LATENCY_MS=${options.upstreamLatencyMs})`);
  const upstream = await startEmbedded(cleanup, { MOCK_LATENCY_MS: String(options.upstreamLatencyMs), AUTH: 'off', WORKER_CONCURRENCY: '32' });
  const upstreamJobs = async () => {
    const counts = await upstream.darkroom.repo.countByStatus();
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  };
  const env = {
    DEFAULT_PROVIDER: 'runpod',
    RUNPOD_API_URL: `${upstream.url}/v2`,
    RUNPOD_API_KEY: 'bench-key',
    RUNPOD_ENDPOINT_ID: 'ep-bench',
    RUNPOD_INPUT_FORMAT: 'sdxl',
    WORKER_CONCURRENCY: String(options.workerConcurrency),
  };

  const drain = async (label: string, killAfterMs: number | undefined): Promise<Drain> => {
    const deployment = await startDistributed(cleanup, services, `api + 2 workers (${label})`, 2, env);
    progress(`takeover: ${label}: ${options.warmupJobs} warm-up jobs, then ${options.jobs}`);
    await awaitBatches(deployment, await submit(deployment.url, options.warmupJobs, options.size, 'warm-up'));

    const submittedBefore = await upstreamJobs();
    const startedAt = Date.now();
    const batchIds = await submit(deployment.url, options.jobs, options.size, label);
    const kill =
      killAfterMs === undefined
        ? Promise.resolve()
        : sleep(Math.max(0, startedAt + killAfterMs - Date.now())).then(() => {
            const pid = deployment.killWorker(0);
            progress(`takeover: ${label}: SIGKILLed worker pid ${pid} ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the first POST`);
          });
    const finished = await awaitBatches(deployment, batchIds);
    await kill;
    const lastCompleted = Math.max(...finished.map((job) => Date.parse(job.completedAt as string)));
    const result: Drain = {
      seconds: (lastCompleted - startedAt) / 1000,
      retried: finished.filter((job) => job.attempts > 1).length,
      extraSubmissions: (await upstreamJobs()) - submittedBefore - options.jobs,
    };
    progress(`takeover: ${label}: drained ${options.jobs} jobs in ${result.seconds.toFixed(2)} s`);
    await deployment.close();
    return result;
  };

  const calm = await drain('no kill', undefined);
  const killed = await drain(`one worker SIGKILLed ${options.killAfterMs / 1000} s in`, options.killAfterMs);
  await upstream.close();

  return { rows: rowsOf(options, calm, killed), notes: notesOf(options, services, calm, killed) };
}

function rowsOf(options: TakeoverOptions, calm: Drain, killed: Drain): Row[] {
  return [
    {
      metric: `Drain, api + 2 worker children (Postgres, Redis), ${options.jobs} runpod jobs of ${options.upstreamLatencyMs} ms`,
      value: calm.seconds,
      unit: 's',
    },
    {
      metric: `  one worker SIGKILLed ${options.killAfterMs / 1000} s in`,
      value: killed.seconds,
      unit: 's',
      reference: { value: calm.seconds, label: 'no kill' },
    },
  ];
}

function notesOf(options: TakeoverOptions, services: Services, calm: Drain, killed: Drain): string[] {
  return [
    `Takeover: \`darkroom api\` + 2 \`darkroom worker\` children (WORKER_CONCURRENCY=${options.workerConcurrency} each, JOB_LEASE_MS at its default) on a fresh Postgres database ` +
      `(${redact(services.adminUrl)}) and a unique QUEUE_NAME on Redis (${redact(services.redisUrl)}), running ${options.jobs} jobs ${options.size}×${options.size} (one batch, after ${options.warmupJobs} warm-up jobs) ` +
      `on the runpod provider against an in-process darkroom's RunPod dialect whose mock takes ${options.upstreamLatencyMs} ms per job. Timed from the first POST to the last completedAt; ` +
      `a fresh deployment for each drain, one upstream for both. Ratio = drain with the kill / drain without (goal: at most 2×). ` +
      `Retried jobs: ${calm.retried} without, ${killed.retried} with the kill; upstream submissions beyond one per job: ${calm.extraSubmissions} without, ${killed.extraSubmissions} with the kill ` +
      `(a kill between an upstream accepting a submission and darkroom saving its id).`,
  ];
}
