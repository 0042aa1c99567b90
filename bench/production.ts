import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startEmbedded } from './embedded.ts';
import { JOB_BODY, measure, type HttpOptions, type LoadResult } from './http.ts';
import { overhead, type BatchJson, type JobJson, type Sample } from './jobs.ts';
import { expectJson, isAlive, makeTempDir, percentile, progress, sleep, waitUntilReady, type Cleanup, type Row } from './lib.ts';

/**
 * Item 6: darkroom in its production shape (`darkroom api` + `darkroom worker` processes on Postgres
 * and Redis) next to the embedded one (`darkroom serve` on PGlite), every darkroom a child process
 * started from bin/darkroom.js, so both sides pay the same process, logging and HTTP costs.
 */

export interface ProductionOptions {
  /** Measured jobs per deployment, submitted as batches of at most 100 (the API's limit). */
  jobs: number;
  /** One batch run to completion before the measured ones (discarded). */
  warmupJobs: number;
  /** WORKER_CONCURRENCY of every process that runs jobs. */
  workerConcurrency: number;
  /** Width and height of every image. */
  size: number;
  http: HttpOptions;
  /** Jobs measured one at a time on api + 1 worker for the overhead rows. */
  overheadJobs: number;
  /** The scale-out row: a provider this slow, this many jobs, this concurrency per worker process. */
  scaleOut: { jobs: number; latencyMs: number; workerConcurrency: number };
}

export interface Services {
  /** Admin connection: creates and drops one database per deployment. */
  adminUrl: string;
  redisUrl: string;
  postgresVersion: string;
  redisVersion: string;
}

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const binary = join(repoRoot, 'bin', 'darkroom.js');

const MAX_BATCH = 100;
const POLL_MS = 250;
const RUN_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 60_000;
/** SIGTERM, then SIGKILL after this long (the children get SHUTDOWN_GRACE_MS=2000). */
const STOP_GRACE_MS = 5000;
const CONNECT_TIMEOUT_MS = 3000;
const REDIS_CLEANUP_TIMEOUT_MS = 15_000;
const OUTPUT_TAIL_CHARS = 16_384;
/** pino's level number of `warn`. */
const WARN_LEVEL = 40;
const TERMINAL_FAILURES = ['failed', 'cancelled', 'expired'];
const LOCAL_HOSTS = ['127.0.0.1', 'localhost', '[::1]', '::1', ''];

/**
 * Names of the databases and queues this run creates carry this machine and this process, so a later
 * run can remove those of a run that was killed before its cleanup (see sweepStale), and only those.
 */
const hostTag = createHash('sha1').update(hostname()).digest('hex').slice(0, 6);
const DATABASE_PREFIX = `darkroom_bench_${hostTag}_`;
const QUEUE_PREFIX = `darkroom-bench-${hostTag}-`;
const STALE_DATABASE = new RegExp(`^${DATABASE_PREFIX}(\\d+)_[0-9a-f]+$`);
const STALE_QUEUE_KEY = new RegExp(`^bull:(${QUEUE_PREFIX}(\\d+)-[0-9a-f]+):`);

/** BENCH_* wins over TEST_* (what the tests use), then the CI machine's defaults. */
function connectionSettings(): { adminUrl: string; redisUrl: string } {
  const env = process.env;
  return {
    adminUrl: env.BENCH_DATABASE_URL || env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: env.BENCH_REDIS_URL || env.TEST_REDIS_URL || 'redis://127.0.0.1:6379',
  };
}

/** A URL fit for printing: any password replaced. */
export function redact(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparseable URL)';
  }
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message || error.name : String(error));

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Postgres and Redis

async function adminQuery<T extends pg.QueryResultRow>(adminUrl: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A Redis client that fails at once when Redis is not there, instead of retrying for ever. */
async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The connect promise only says "Connection is closed."; the error event says why.
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => {
    lastError = error;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw lastError ?? error;
  }
  return redis;
}

/** Unlinks every key matching `pattern` (SCAN, so a shared Redis is not blocked); returns how many. */
async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Both services answer, or the reason the section is skipped. */
export async function probeServices(): Promise<{ services: Services } | { skip: string }> {
  const { adminUrl, redisUrl } = connectionSettings();
  let postgresVersion: string;
  try {
    const rows = await adminQuery<{ server_version: string }>(adminUrl, 'show server_version');
    postgresVersion = rows[0]?.server_version ?? 'unknown';
  } catch (error) {
    return { skip: `Postgres at ${redact(adminUrl)} is unreachable (${messageOf(error)})` };
  }
  let redisVersion: string;
  try {
    const redis = await connectRedis(redisUrl);
    try {
      const info = await redis.info('server');
      redisVersion = /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
    } finally {
      redis.disconnect();
    }
  } catch (error) {
    return { skip: `Redis at ${redact(redisUrl)} is unreachable (${messageOf(error)})` };
  }
  return { services: { adminUrl, redisUrl, postgresVersion, redisVersion } };
}

/**
 * Drops the databases and removes the queue keys of bench runs on this machine whose process is gone
 * (tsx SIGKILLs the bench when a Ctrl-C is not acknowledged in time, before its cleanup has run).
 */
export async function sweepStale(services: Services): Promise<void> {
  const databases = await adminQuery<{ datname: string }>(services.adminUrl, `select datname from pg_database where datname like 'darkroom\\_bench\\_%'`);
  let dropped = 0;
  for (const { datname } of databases) {
    const pid = Number(STALE_DATABASE.exec(datname)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    await adminQuery(services.adminUrl, `drop database if exists ${datname} with (force)`);
    dropped += 1;
  }
  const redis = await connectRedis(services.redisUrl);
  const staleQueues = new Set<string>();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `bull:${QUEUE_PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const match = STALE_QUEUE_KEY.exec(key);
        const pid = Number(match?.[2]);
        if (match?.[1] && pid && pid !== process.pid && !isAlive(pid)) staleQueues.add(match[1]);
      }
    } while (cursor !== '0');
    for (const name of staleQueues) await deleteKeys(redis, `bull:${name}:*`);
  } finally {
    redis.disconnect();
  }
  if (dropped > 0 || staleQueues.size > 0) {
    progress(`production: removed ${dropped} database(s) and ${staleQueues.size} queue(s) left by interrupted bench runs`);
  }
}

/** A fresh, empty database for one deployment, dropped (WITH (FORCE)) by the returned function or the cleanup. */
async function createDatabase(cleanup: Cleanup, adminUrl: string): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `${DATABASE_PREFIX}${process.pid}_${randomBytes(4).toString('hex')}`;
  // Registered first: a Ctrl-C during `create database` still drops it (if exists).
  const drop = cleanup.add(`drop database ${name}`, async () => {
    await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
  });
  await adminQuery(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop };
}

/** A unique QUEUE_NAME whose BullMQ keys are removed by the returned function or the cleanup. */
function createQueueName(cleanup: Cleanup, redisUrl: string): { name: string; remove: () => Promise<void> } {
  const name = `${QUEUE_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  const remove = cleanup.add(`remove BullMQ queue ${name}`, async () => {
    const queue = new Queue(name, { connection: { url: redisUrl, maxRetriesPerRequest: 1 } });
    queue.on('error', () => undefined);
    try {
      await withTimeout(queue.obliterate({ force: true }), REDIS_CLEANUP_TIMEOUT_MS, `obliterating queue ${name}`);
    } finally {
      await withTimeout(queue.close(), REDIS_CLEANUP_TIMEOUT_MS, `closing queue ${name}`);
    }
    // obliterate removes the queue's jobs and state; anything else under its prefix goes too.
    const redis = await connectRedis(redisUrl);
    try {
      const left = await deleteKeys(redis, `bull:${name}:*`);
      if (left > 0) progress(`production: removed ${left} key(s) of ${name} that obliterate left`);
    } finally {
      redis.disconnect();
    }
  });
  return { name, remove };
}

// ---------------------------------------------------------------------------------------------
// darkroom children

type Role = 'serve' | 'api' | 'worker';

interface DarkroomChild {
  role: Role;
  pid: number;
  /** The API's address; undefined for a worker. */
  url: string | undefined;
  /** How it ended, once it has. */
  exit(): string | undefined;
  /** The last of what it printed that explains a failure. */
  output(): string;
  stop(): Promise<void>;
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null) => (signal ? `signal ${signal}` : `exit code ${code}`);

/** SIGTERM, then SIGKILL after `graceMs`. */
async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `node bin/darkroom.js <role>` with only `env` (plus PATH and HOME) and a temp dir as working
 * directory (no .env, nothing from the shell), resolved once it logs "darkroom is running". Its
 * output is drained for as long as it runs; what explains a failure (stderr, anything on stdout that
 * is not JSON, log lines of level warn and above) is kept, the last of it, for error messages.
 */
async function spawnDarkroom(cleanup: Cleanup, role: Role, env: Record<string, string>, cwd: string): Promise<DarkroomChild> {
  const child = spawn(process.execPath, [binary, role], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stopChild = cleanup.add(`stop darkroom ${role} (pid ${child.pid ?? 'none'})`, () => stopProcess(child, STOP_GRACE_MS));
  let kept = '';
  let exit: string | undefined;
  const keep = (text: string) => {
    kept = (kept + text).slice(-OUTPUT_TAIL_CHARS);
  };
  const output = () => kept.slice(-2000).trim() || '(nothing on stderr, no warnings or errors in its log)';
  child.once('exit', (code, signal) => {
    exit = describeExit(code, signal);
  });
  child.stderr?.setEncoding('utf8').on('data', keep);

  let running: ((url: string | undefined) => void) | undefined;
  let pending = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      let entry: { level?: unknown; msg?: unknown; url?: unknown };
      try {
        entry = JSON.parse(line) as { level?: unknown; msg?: unknown; url?: unknown };
      } catch {
        keep(`${line}\n`);
        continue;
      }
      if (typeof entry.level === 'number' && entry.level >= WARN_LEVEL) keep(`${line}\n`);
      if (entry.msg === 'darkroom is running' && running) running(typeof entry.url === 'string' ? entry.url : undefined);
    }
  });

  const url = await new Promise<string | undefined>((resolve, reject) => {
    let settled = false;
    const settle = (error: Error | undefined, value?: string) => {
      if (settled) return;
      settled = true;
      running = undefined;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error) reject(error);
      else resolve(value);
    };
    const timer = setTimeout(() => settle(new Error(`darkroom ${role} did not log "darkroom is running" within ${START_TIMEOUT_MS} ms: ${output()}`)), START_TIMEOUT_MS);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      settle(new Error(`darkroom ${role} exited (${describeExit(code, signal)}) before it was running: ${output()}`));
    const onError = (error: Error) => settle(error);
    child.once('exit', onExit);
    child.once('error', onError);
    running = (value) => {
      if (role !== 'worker' && value === undefined) settle(new Error(`darkroom ${role} logged "darkroom is running" without a url`));
      else settle(undefined, value);
    };
  });

  return { role, pid: child.pid as number, url, exit: () => exit, output, stop: stopChild };
}

/** One darkroom deployment under test: where its API is, a check that none of its processes died, and how to take it down. */
export interface Deployment {
  url: string;
  /** Throws when one of its processes has exited (other than by `killWorker`). */
  assertAlive(): void;
  close(): Promise<void>;
}

/** An `api` with its `worker` processes, one of which the bench may kill. */
export interface DistributedDeployment extends Deployment {
  /** SIGKILLs the index-th worker process (as an OOM kill or a lost machine would end it); answers its pid. */
  killWorker(index: number): number;
}

/**
 * The operator's key of every distributed deployment: the queue stats show live workers only to an
 * admin, and the bench waits for the workers there.
 */
const ADMIN_API_KEY = `bench-admin-${randomBytes(12).toString('hex')}`;

function assertAlive(children: DarkroomChild[]): void {
  for (const child of children) {
    const exit = child.exit();
    if (exit !== undefined) throw new Error(`darkroom ${child.role} (pid ${child.pid}) exited (${exit}) during the run: ${child.output()}`);
  }
}

/** What every child gets: its own (or a shared) DATA_DIR, an ephemeral port, info logs, a short shutdown grace. */
function baseEnv(dataDir: string, signingSecret: string, extra: Record<string, string>): Record<string, string> {
  return { DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '2000', SIGNING_SECRET: signingSecret, ...extra };
}

/** `darkroom serve` on PGlite in a fresh temp DATA_DIR. */
async function startServe(cleanup: Cleanup, label: string, extra: Record<string, string>): Promise<Deployment> {
  const dir = makeTempDir(cleanup, 'production-serve');
  progress(`production: starting ${label}`);
  const serve = await spawnDarkroom(cleanup, 'serve', baseEnv(dir.path, randomBytes(24).toString('hex'), extra), dir.path);
  const url = serve.url as string;
  await waitUntilReady(url, START_TIMEOUT_MS);
  return {
    url,
    assertAlive: () => assertAlive([serve]),
    async close() {
      await serve.stop();
      await dir.remove();
    },
  };
}

/**
 * `darkroom api` and `workers` × `darkroom worker` on a fresh Postgres database, BullMQ on Redis under a
 * unique QUEUE_NAME, sharing one DATA_DIR (the filesystem storage the API serves the workers' images from).
 */
export async function startDistributed(
  cleanup: Cleanup,
  services: Services,
  label: string,
  workers: number,
  extra: Record<string, string>,
): Promise<DistributedDeployment> {
  const dir = makeTempDir(cleanup, `production-redis${workers}`);
  const database = await createDatabase(cleanup, services.adminUrl);
  const queue = createQueueName(cleanup, services.redisUrl);
  progress(`production: starting ${label} (database ${database.name}, QUEUE_NAME ${queue.name})`);
  const env = baseEnv(dir.path, randomBytes(24).toString('hex'), {
    DATABASE_URL: database.url,
    QUEUE: 'redis',
    REDIS_URL: services.redisUrl,
    QUEUE_NAME: queue.name,
    ADMIN_API_KEY,
    ...extra,
  });
  const children: DarkroomChild[] = [];
  const killed = new Set<number>();
  const close = async () => {
    await Promise.all(children.filter((child) => child.role === 'worker').map((child) => child.stop()));
    await Promise.all(children.filter((child) => child.role !== 'worker').map((child) => child.stop()));
    await queue.remove();
    await database.drop();
    await dir.remove();
  };
  // The API first: it applies the migrations, which the workers then find done.
  const api = await spawnDarkroom(cleanup, 'api', env, dir.path);
  children.push(api);
  const url = api.url as string;
  await waitUntilReady(url, START_TIMEOUT_MS);
  const spawned = await Promise.allSettled(Array.from({ length: workers }, () => spawnDarkroom(cleanup, 'worker', env, dir.path)));
  for (const result of spawned) if (result.status === 'fulfilled') children.push(result.value);
  const failed = spawned.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  const workerChildren = children.filter((child) => child.role === 'worker');
  await waitForWorkers(url, workerChildren.map((child) => child.pid));
  return {
    url,
    assertAlive: () => assertAlive(children.filter((child) => !killed.has(child.pid))),
    killWorker(index) {
      const worker = workerChildren[index];
      if (!worker) throw new Error(`there is no worker ${index}`);
      killed.add(worker.pid);
      process.kill(worker.pid, 'SIGKILL');
      return worker.pid;
    },
    close,
  };
}

/** Until the API's queue stats (as the admin, who is shown the workers) list a heartbeat of each worker process. */
async function waitForWorkers(url: string, pids: number[]): Promise<void> {
  const giveUpAt = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const stats = await expectJson<{ workers: { pid: number }[] }>(200, `${url}/api/v1/queue/stats`, {
      headers: { authorization: `Bearer ${ADMIN_API_KEY}` },
    });
    if (pids.every((pid) => stats.workers.some((worker) => worker.pid === pid))) return;
    if (Date.now() > giveUpAt) throw new Error(`workers ${pids.join(', ')} not all in /api/v1/queue/stats after ${START_TIMEOUT_MS} ms: ${JSON.stringify(stats.workers)}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

export async function submit(url: string, count: number, size: number, tag: string): Promise<string[]> {
  const batchIds: string[] = [];
  for (let offset = 0; offset < count; offset += MAX_BATCH) {
    const prompts = Array.from({ length: Math.min(MAX_BATCH, count - offset) }, (_, i) => `${JOB_BODY.prompt} (${tag} ${offset + i})`);
    const batch = await expectJson<{ batchId: string }>(202, `${url}/api/v1/jobs/batch`, {
      method: 'POST',
      body: { prompts, width: size, height: size, numImages: 1 },
    });
    batchIds.push(batch.batchId);
  }
  return batchIds;
}

/** Polls each batch (one at a time, every 250 ms) until all its jobs succeeded; fails on any other end. */
export async function awaitBatches(deployment: Deployment, batchIds: string[]): Promise<JobJson[]> {
  const finished: JobJson[] = [];
  const giveUpAt = Date.now() + RUN_TIMEOUT_MS;
  for (const batchId of batchIds) {
    for (;;) {
      deployment.assertAlive();
      const batch = await expectJson<BatchJson>(200, `${deployment.url}/api/v1/batches/${batchId}`);
      const failures = TERMINAL_FAILURES.reduce((sum, status) => sum + (batch.counts[status] ?? 0), 0);
      if (failures > 0) throw new Error(`batch ${batchId}: ${failures} jobs did not succeed (${JSON.stringify(batch.counts)})`);
      if (batch.counts.succeeded === batch.total) {
        finished.push(...batch.jobs);
        break;
      }
      if (Date.now() > giveUpAt) throw new Error(`batch ${batchId} unfinished after ${RUN_TIMEOUT_MS / 1000} s: ${JSON.stringify(batch.counts)}`);
      await sleep(POLL_MS);
    }
  }
  return finished;
}

interface Throughput {
  /** Jobs / (last completedAt − first POST). */
  jobsPerSecond: number;
  /** Jobs / (last batch seen finished − first POST), as the polling client saw it. */
  observedJobsPerSecond: number;
  /** Jobs that needed more than one attempt. */
  retried: number;
}

async function throughput(deployment: Deployment, label: string, options: ProductionOptions): Promise<Throughput> {
  progress(`production: ${label}: ${options.warmupJobs} warm-up jobs, then ${options.jobs} in batches of ≤ ${MAX_BATCH}`);
  await awaitBatches(deployment, await submit(deployment.url, options.warmupJobs, options.size, 'warm-up'));

  const startedAt = Date.now();
  const started = performance.now();
  const batchIds = await submit(deployment.url, options.jobs, options.size, 'job');
  const finished = await awaitBatches(deployment, batchIds);
  const observedSeconds = (performance.now() - started) / 1000;
  if (finished.length !== options.jobs) throw new Error(`${label}: expected ${options.jobs} finished jobs, got ${finished.length}`);
  const lastCompleted = Math.max(...finished.map((job) => Date.parse(job.completedAt as string)));
  const result = {
    jobsPerSecond: options.jobs / ((lastCompleted - startedAt) / 1000),
    observedJobsPerSecond: options.jobs / observedSeconds,
    retried: finished.filter((job) => job.attempts > 1).length,
  };
  progress(`production: ${label}: ${result.jobsPerSecond.toFixed(1)} jobs/s`);
  return result;
}

/** GET of a queued job, then POST /api/v1/jobs, on one deployment whose jobs stay queued. */
async function apiThroughput(deployment: Deployment, label: string, options: HttpOptions): Promise<{ get: LoadResult; post: LoadResult }> {
  const created = await expectJson<{ id: string }>(202, `${deployment.url}/api/v1/jobs`, { method: 'POST', body: JOB_BODY });
  const get = await measure(`${label} GET /api/v1/jobs/{id}`, { url: `${deployment.url}/api/v1/jobs/${created.id}` }, options);
  const post = await measure(`${label} POST /api/v1/jobs`, { url: `${deployment.url}/api/v1/jobs`, method: 'POST', body: JOB_BODY }, options);
  deployment.assertAlive();
  return { get, post };
}

/** GET of a queued job of an API key's, with that key: what the key lookup adds to a read. */
async function keyedGet(deployment: Deployment, label: string, options: HttpOptions): Promise<LoadResult> {
  const { key } = await expectJson<{ key: string }>(201, `${deployment.url}/api/v1/keys`, {
    method: 'POST',
    body: { name: 'bench' },
    headers: { authorization: `Bearer ${ADMIN_API_KEY}` },
  });
  const headers = { authorization: `Bearer ${key}` };
  const owned = await expectJson<{ id: string }>(202, `${deployment.url}/api/v1/jobs`, { method: 'POST', body: JOB_BODY, headers });
  return measure(`${label} GET /api/v1/jobs/{id} with an API key`, { url: `${deployment.url}/api/v1/jobs/${owned.id}`, headers }, options);
}

export async function benchProduction(cleanup: Cleanup, options: ProductionOptions): Promise<{ rows: Row[]; notes: string[] }> {
  const probed = await probeServices();
  if ('skip' in probed) {
    progress(`production: skipped: ${probed.skip}; set BENCH_DATABASE_URL / BENCH_REDIS_URL (or TEST_*) to run it`);
    return {
      rows: [],
      notes: [`Production section skipped: ${probed.skip}. It needs Postgres (BENCH_DATABASE_URL or TEST_DATABASE_URL) and Redis (BENCH_REDIS_URL or TEST_REDIS_URL).`],
    };
  }
  const { services } = probed;
  progress(`production: Postgres ${services.postgresVersion} at ${redact(services.adminUrl)}, Redis ${services.redisVersion} at ${redact(services.redisUrl)}`);
  await sweepStale(services);

  const jobEnv = { MOCK_LATENCY_MS: '0', WORKER_CONCURRENCY: String(options.workerConcurrency) };
  const run = async (start: () => Promise<Deployment>, label: string) => {
    const deployment = await start();
    const result = await throughput(deployment, label, options);
    await deployment.close();
    return result;
  };
  const embedded = await run(() => startServe(cleanup, 'serve (PGlite)', jobEnv), 'serve (PGlite)');
  const oneWorkerDeployment = await startDistributed(cleanup, services, 'api + 1 worker', 1, jobEnv);
  const oneWorker = await throughput(oneWorkerDeployment, 'api + 1 worker', options);
  const postgresOverhead = await overhead(oneWorkerDeployment.url, { warmupJobs: 10, overheadJobs: options.overheadJobs, inFlight: 1 });
  await oneWorkerDeployment.close();
  const twoWorkers = await run(() => startDistributed(cleanup, services, 'api + 2 workers', 2, jobEnv), 'api + 2 workers');

  const pglite = await startServe(cleanup, 'serve (PGlite), WORKER_CONCURRENCY=0', { WORKER_CONCURRENCY: '0' });
  const pgliteHttp = await apiThroughput(pglite, 'serve child (PGlite)', options.http);
  await pglite.close();
  const postgres = await startDistributed(cleanup, services, 'api alone (Postgres + Redis, no worker)', 0, {});
  const postgresHttp = await apiThroughput(postgres, 'api child (Postgres)', options.http);
  const postgresKeyGet = await keyedGet(postgres, 'api child (Postgres)', options.http);
  await postgres.close();

  // Scale-out: a provider whose call holds a worker slot for its whole latency (the openai provider
  // waits on a synchronous upstream call; a polled provider frees the slot between polls), so each
  // worker process adds WORKER_CONCURRENCY jobs in flight and a second one should double the rate.
  const upstream = await startEmbedded(cleanup, { MOCK_LATENCY_MS: String(options.scaleOut.latencyMs), AUTH: 'off', WORKER_CONCURRENCY: '32' });
  const slowEnv = {
    DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-bench',
    OPENAI_BASE_URL: `${upstream.url}/v1`,
    WORKER_CONCURRENCY: String(options.scaleOut.workerConcurrency),
  };
  const scaleOptions = { ...options, jobs: options.scaleOut.jobs, warmupJobs: options.scaleOut.workerConcurrency * 2, size: 1024 };
  const scaleRun = async (workers: number) => {
    const deployment = await startDistributed(cleanup, services, `api + ${workers} worker(s), slow provider`, workers, slowEnv);
    const result = await throughput(deployment, `scale-out, ${workers} worker(s)`, scaleOptions);
    await deployment.close();
    return result;
  };
  const scaleOne = await scaleRun(1);
  const scaleTwo = await scaleRun(2);
  await upstream.close();

  const size = `${options.size}×${options.size}`;
  const local = [services.adminUrl, services.redisUrl].every((url) => LOCAL_HOSTS.includes(new URL(url).hostname));
  const embeddedRef = { value: embedded.jobsPerSecond, label: 'serve, PGlite' };
  const rows: Row[] = [
    { metric: `End-to-end, darkroom serve child (PGlite), ${options.jobs} jobs ${size}`, value: embedded.jobsPerSecond, unit: 'jobs/s' },
    { metric: '  api + 1 worker children (Postgres, Redis)', value: oneWorker.jobsPerSecond, unit: 'jobs/s', reference: embeddedRef },
    { metric: '  api + 2 worker children (Postgres, Redis)', value: twoWorkers.jobsPerSecond, unit: 'jobs/s', reference: embeddedRef },
    {
      metric: 'HTTP POST /api/v1/jobs, api child (Postgres, Redis)',
      value: postgresHttp.post.requestsPerSecond,
      unit: 'req/s',
      reference: { value: pgliteHttp.post.requestsPerSecond, label: 'serve child, PGlite' },
    },
    {
      metric: 'HTTP GET /api/v1/jobs/{id}, api child (Postgres)',
      value: postgresHttp.get.requestsPerSecond,
      unit: 'req/s',
      reference: { value: pgliteHttp.get.requestsPerSecond, label: 'serve child, PGlite' },
    },
    {
      metric: '  POST /api/v1/jobs latency p99, Postgres',
      value: postgresHttp.post.latencyP99Ms,
      unit: 'ms',
      reference: { value: pgliteHttp.post.latencyP99Ms, label: 'serve child, PGlite' },
    },
    {
      metric: '  GET /api/v1/jobs/{id} latency p99, Postgres',
      value: postgresHttp.get.latencyP99Ms,
      unit: 'ms',
      reference: { value: pgliteHttp.get.latencyP99Ms, label: 'serve child, PGlite' },
    },
  ];
  const p50 = (pick: (sample: Sample) => number) => percentile(postgresOverhead.map(pick), 50);
  rows.push(
    {
      metric: 'HTTP GET /api/v1/jobs/{id} with an API key, Postgres',
      value: postgresKeyGet.requestsPerSecond,
      unit: 'req/s',
      reference: { value: postgresHttp.get.requestsPerSecond, label: 'the same as a guest' },
    },
    {
      metric: 'Job overhead p50, api + 1 worker (Postgres, Redis)',
      value: p50((sample) => sample.overheadMs),
      unit: 'ms',
      reference: { value: p50((sample) => sample.totalMs), label: 'total p50' },
    },
    {
      metric: 'Job overhead p99, api + 1 worker (Postgres, Redis)',
      value: percentile(postgresOverhead.map((sample) => sample.overheadMs), 99),
      unit: 'ms',
      reference: { value: percentile(postgresOverhead.map((sample) => sample.totalMs), 99), label: 'total p99' },
    },
    {
      metric: `Scale-out, ${options.scaleOut.jobs} jobs of ${options.scaleOut.latencyMs} ms, api + 2 workers`,
      value: scaleTwo.jobsPerSecond,
      unit: 'jobs/s',
      reference: { value: scaleOne.jobsPerSecond, label: 'api + 1 worker' },
    },
  );
  const retried = embedded.retried + oneWorker.retried + twoWorkers.retried;
  const notes = [
    `Production: every darkroom is a child process (node bin/darkroom.js, LOG_LEVEL=info with its output drained by the bench, fs storage in a temp DATA_DIR shared by api and workers); ` +
      `Postgres ${services.postgresVersion} at ${redact(services.adminUrl)} and Redis ${services.redisVersion} at ${redact(services.redisUrl)}${local ? ` (local: they share the ${cpus().length} CPUs with the darkroom children and the load generator, so a second worker process adds contention as well as capacity)` : ''}. ` +
      `Each Postgres deployment gets a fresh database and a unique QUEUE_NAME, both removed afterwards.`,
    `Production end-to-end: MOCK_LATENCY_MS=0, WORKER_CONCURRENCY=${options.workerConcurrency} in every process that runs jobs (serve: 1 process; redis: ${options.workerConcurrency} per worker process, so 2 workers run up to ${2 * options.workerConcurrency} jobs at once); ` +
      `a ${options.warmupJobs}-job warm-up batch, then ${options.jobs} jobs ${size} as ${Math.ceil(options.jobs / MAX_BATCH)} POST /api/v1/jobs/batch, timed from the first POST to the last completedAt ` +
      `(as seen by the client polling GET /api/v1/batches/{id} every ${POLL_MS} ms: serve ${embedded.observedJobsPerSecond.toFixed(1)}, 1 worker ${oneWorker.observedJobsPerSecond.toFixed(1)}, 2 workers ${twoWorkers.observedJobsPerSecond.toFixed(1)} jobs/s). ` +
      `Ratio = redis / embedded; 2 workers / 1 worker = ${(twoWorkers.jobsPerSecond / oneWorker.jobsPerSecond).toFixed(2)}×. ${retried} of the ${3 * options.jobs} measured jobs needed a retry.`,
    `Production HTTP: autocannon as in the HTTP rows (${options.http.connections} connections, ${options.http.durationSeconds} s after ${options.http.warmupSeconds} s warm-up) against a \`darkroom api\` child ` +
      `(DATABASE_URL on a fresh database, QUEUE=redis, no worker, so jobs stay queued: its POST also adds a BullMQ entry in Redis) and a \`darkroom serve\` child on PGlite with WORKER_CONCURRENCY=0 (in-process queue); ` +
      `the GET reads a queued job. Ratio = Postgres / PGlite. Overhead rows: ${options.overheadJobs} jobs one at a time on api + 1 worker (long poll), as in the embedded rows. ` +
      `Scale-out: the openai provider (a synchronous call that holds its worker slot) against an in-process darkroom's OpenAI dialect whose mock takes ${options.scaleOut.latencyMs} ms, WORKER_CONCURRENCY=${options.scaleOut.workerConcurrency} per worker process, ${options.scaleOut.jobs} jobs 1024×1024 (goal: 2 workers ≥ 1.8× one). The POST runs inserted ${postgresHttp.post.requests.toLocaleString('en-US')} (Postgres) and ${pgliteHttp.post.requests.toLocaleString('en-US')} (PGlite) jobs.`,
  ];
  return { rows, notes };
}
