import autocannon from 'autocannon';
import Fastify from 'fastify';
import { startEmbedded } from './embedded.ts';
import { expectJson, progress, type Cleanup, type Row } from './lib.ts';

export interface HttpOptions {
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
}

export interface LoadTarget {
  url: string;
  method?: 'GET' | 'POST';
  body?: unknown;
  headers?: Record<string, string>;
}

export interface LoadResult {
  requestsPerSecond: number;
  requests: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Connection errors, timeouts and non-2xx answers: a run with any of these is not a valid measurement. */
  problems: string[];
}

/**
 * One autocannon run against `target`. The load generator runs in a worker thread (autocannon's own
 * `workers` option), so it does not share the event loop with the server under test in this process.
 */
export async function load(target: LoadTarget, durationSeconds: number, connections: number): Promise<LoadResult> {
  const result = await autocannon({
    url: target.url,
    method: target.method ?? 'GET',
    connections,
    duration: durationSeconds,
    workers: 1,
    headers: { ...target.headers, ...(target.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(target.body === undefined ? {} : { body: JSON.stringify(target.body) }),
  });
  const problems: string[] = [];
  if (result.errors > 0) problems.push(`${result.errors} connection errors`);
  if (result.timeouts > 0) problems.push(`${result.timeouts} timeouts`);
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx answers`);
  const completed = result['2xx'] + result.non2xx;
  return {
    requestsPerSecond: completed / result.duration,
    requests: completed,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    problems,
  };
}

/** A warm-up run (discarded), then the measured one. Throws when the measured run had errors. */
export async function measure(name: string, target: LoadTarget, options: HttpOptions): Promise<LoadResult> {
  progress(`http: ${name} (${options.warmupSeconds} s warm-up + ${options.durationSeconds} s, ${options.connections} connections)`);
  if (options.warmupSeconds > 0) await load(target, options.warmupSeconds, options.connections);
  const result = await load(target, options.durationSeconds, options.connections);
  if (result.problems.length > 0) throw new Error(`${name}: ${result.problems.join(', ')}`);
  progress(`http: ${name}: ${Math.round(result.requestsPerSecond)} req/s, p50 ${result.latencyP50Ms} ms, p99 ${result.latencyP99Ms} ms`);
  return result;
}

/** The smallest Fastify servers: what any Fastify app costs at best, in this process and run. */
async function startBare(cleanup: Cleanup): Promise<{ url: string; close: () => Promise<void> }> {
  const app = Fastify();
  app.get('/', () => ({ ok: true }));
  app.post('/echo', (request) => request.body);
  const close = cleanup.add('close bare fastify', () => app.close());
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close };
}

export const JOB_BODY = { prompt: 'a lighthouse at dusk, oil on canvas', width: 512, height: 512, numImages: 1 };

const BENCH_ADMIN_KEY = 'bench-admin-key-0123456789';

/**
 * Item 1: requests/s of POST /api/v1/jobs and GET /api/v1/jobs/{id} on an embedded darkroom whose
 * worker does not run (WORKER_CONCURRENCY 0), next to a bare Fastify GET and POST echo.
 */
export async function benchHttp(cleanup: Cleanup, options: HttpOptions): Promise<{ rows: Row[]; notes: string[]; bareGetRps: number }> {
  const bare = await startBare(cleanup);
  const bareGet = await measure('bare fastify GET /', { url: `${bare.url}/` }, options);
  const barePost = await measure('bare fastify POST /echo', { url: `${bare.url}/echo`, method: 'POST', body: JOB_BODY }, options);
  await bare.close();

  const embedded = await startEmbedded(cleanup, { WORKER_CONCURRENCY: '0', ADMIN_API_KEY: BENCH_ADMIN_KEY });
  const created = await expectJson<{ id: string }>(202, `${embedded.url}/api/v1/jobs`, { method: 'POST', body: JOB_BODY });
  const jobGet = await measure('darkroom GET /api/v1/jobs/{id}', { url: `${embedded.url}/api/v1/jobs/${created.id}` }, options);
  const jobPost = await measure('darkroom POST /api/v1/jobs', { url: `${embedded.url}/api/v1/jobs`, method: 'POST', body: JOB_BODY }, options);
  // The same read with an API key: one indexed lookup of the key's hash per request.
  const { key } = await expectJson<{ key: string }>(201, `${embedded.url}/api/v1/keys`, {
    method: 'POST',
    body: { name: 'bench' },
    headers: { authorization: `Bearer ${BENCH_ADMIN_KEY}` },
  });
  const withKey = { authorization: `Bearer ${key}` };
  const owned = await expectJson<{ id: string }>(202, `${embedded.url}/api/v1/jobs`, { method: 'POST', body: JOB_BODY, headers: withKey });
  const keyGet = await measure('darkroom GET /api/v1/jobs/{id} with an API key', { url: `${embedded.url}/api/v1/jobs/${owned.id}`, headers: withKey }, options);
  await embedded.close();

  const rows: Row[] = [
    { metric: 'HTTP POST /api/v1/jobs', value: jobPost.requestsPerSecond, unit: 'req/s', reference: { value: barePost.requestsPerSecond, label: 'bare POST echo' } },
    { metric: 'HTTP GET /api/v1/jobs/{id}', value: jobGet.requestsPerSecond, unit: 'req/s', reference: { value: bareGet.requestsPerSecond, label: 'bare GET /' } },
    { metric: '  POST /api/v1/jobs latency p99', value: jobPost.latencyP99Ms, unit: 'ms', reference: { value: barePost.latencyP99Ms, label: 'bare POST echo' } },
    { metric: '  GET /api/v1/jobs/{id} latency p99', value: jobGet.latencyP99Ms, unit: 'ms', reference: { value: bareGet.latencyP99Ms, label: 'bare GET /' } },
    { metric: 'HTTP GET /api/v1/jobs/{id} with an API key', value: keyGet.requestsPerSecond, unit: 'req/s', reference: { value: jobGet.requestsPerSecond, label: 'the same as a guest' } },
  ];
  const notes = [
    `HTTP: autocannon, ${options.connections} connections, ${options.durationSeconds} s per target after a ${options.warmupSeconds} s warm-up, load generator in a worker thread of this process; ` +
      `darkroom with WORKER_CONCURRENCY=0 (jobs stay queued), PGlite in a temp DATA_DIR, LOG_LEVEL=silent; the GET reads a queued job (no images). ` +
      `The POST run inserted ${jobPost.requests.toLocaleString('en-US')} jobs.`,
  ];
  return { rows, notes, bareGetRps: bareGet.requestsPerSecond };
}
