import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from 'typebox';
import { conflict, DarkroomError } from '../../../core/errors.ts';
import { SYSTEM_CALLER } from '../../../core/caller.ts';
import type { JobService, JobView, ScopedJobs } from '../../../core/job-service.ts';
import type { CreateJobInput } from '../../../core/request.ts';
import { parseRunpodInput, RunpodInputError } from './input.ts';
import { presentBrief, presentStatus, runpodData, runpodStatus, type RunpodJobData } from './present.ts';
import { EndpointParams, errorResponses, HealthResponse, JobParams, PurgeResponse, RunBody, StatusResponse, StreamResponse, WaitQuery } from './schemas.ts';
import { UUID_PATTERN } from '../../../core/ids.ts';
import { findUnstorable } from '../../../core/storable.ts';
import { DialectError } from '../../http/errors.ts';

export interface RunpodRoutesOptions {
  jobs: JobService;
}

const DIALECT = 'runpod';
const DEFAULT_WAIT_MS = 90_000;
const MIN_WAIT_MS = 1_000;
const MAX_WAIT_MS = 300_000;
/** What `policy.lowPriority` means here: behind every job of default priority. */
const LOW_PRIORITY = -10;
const tags = ['runpod'];

const clampWait = (wait: number | undefined) => Math.min(MAX_WAIT_MS, Math.max(MIN_WAIT_MS, wait ?? DEFAULT_WAIT_MS));

/**
 * RunPod serverless under /v2/{endpointId} (docs/dialects/runpod.md),
 * so runpod-sdk and other RunPod clients can use darkroom by changing only their base URL.
 *
 * - Job ids are darkroom job ids. Endpoint ids are free names that keep jobs apart: a job is only
 *   visible under the endpoint that created it (elsewhere: 404).
 * - The input's shape picks the worker (see input.ts), and the output comes back in that worker's
 *   shape; images are darkroom's signed links unless the worker answers base64 or the input asks.
 * - /retry keeps the id: RunPod retries a job under its own id, so clients keep polling the id they
 *   have. darkroom runs the retry as a new job (a job's history stays its own) and records it on the
 *   first job as `current`; every route resolves the known id to the latest attempt.
 * - `webhook` is POSTed the job's /status body once it finishes (darkroom's webhook machinery: retried,
 *   signed, SSRF-guarded); `webhookV2` is refused; `s3Config` and `policy.executionTimeout` are
 *   accepted and ignored; `policy.ttl` becomes the job deadline.
 * - Keys in `Authorization: Bearer` are accepted and not checked yet.
 */
export const runpodRoutes: FastifyPluginAsyncTypebox<RunpodRoutesOptions> = async (app, { jobs: service }) => {
  const scoped = (request: FastifyRequest) => service.for(request.caller);


  const missing = (id: string) => new DarkroomError(404, 'not_found', `Job ${id} does not exist`);
  // Room for an init image and a mask as base64 (4 bytes per 3) besides the rest of the input.
  const bodyLimit = Math.max(app.initialConfig.bodyLimit ?? 0, Math.ceil((service.inputLimits.maxBytes * 2 * 4) / 3) + 1_048_576);

  interface Found {
    /** The job the client knows (its id is the one in the URL). */
    known: JobView;
    /** The job running its latest attempt: `known` itself unless it was retried. */
    latest: JobView;
    data: RunpodJobData;
  }

  async function find(jobs: ScopedJobs, endpointId: string, id: string): Promise<Found> {
    if (!UUID_PATTERN.test(id)) throw missing(id);
    const [known] = await jobs.getMany([id]);
    const data = known ? runpodData(known) : null;
    if (!known || !data || data.endpointId !== endpointId) throw missing(id);
    if (!data.current) return { known, latest: known, data };
    const latest = await jobs.get(data.current);
    return { known, latest, data: runpodData(latest) ?? data };
  }

  const status = (jobs: ScopedJobs, found: Found) =>
    presentStatus(found.known.id, found.latest, found.data, (jobId: string, index: number) => jobs.readImage(jobId, index));

  async function create(jobs: ScopedJobs, endpointId: string, body: Static<typeof RunBody>): Promise<Found> {
    // Checked here as well as by the core, to name each field as the client wrote it (`input.negative_prompt`).
    const unstorable = findUnstorable(body);
    if (unstorable.length > 0) throw new RunpodInputError(unstorable.map((part) => `${part.path.join('.')} ${part.message}`));
    if (body.webhookV2 !== undefined) throw new RunpodInputError(['webhookV2 is not supported by darkroom: use webhook']);
    const parsed = await parseRunpodInput(body.input);
    if (body.webhook !== undefined) {
      const refusal = await service.webhookRefusal(body.webhook);
      if (refusal) throw new RunpodInputError([`webhook ${refusal}`]);
    }
    const ttlMs = body.policy?.ttl;
    const input: CreateJobInput = {
      ...parsed.job,
      ...(body.webhook === undefined ? {} : { webhook: body.webhook }),
      ...(ttlMs === undefined ? {} : { deadline: new Date(Date.now() + ttlMs).toISOString() }),
      ...(body.policy?.lowPriority ? { priority: LOW_PRIORITY } : {}),
    };
    const data: RunpodJobData = { endpointId, format: parsed.format, returnType: parsed.returnType, ...(ttlMs === undefined ? {} : { ttlMs }) };
    const job = await jobs.create(input, { dialect: DIALECT, dialectData: { ...data } }).catch((error: unknown) => {
      throw inWorkerTerms(error, parsed.imagePaths ?? []);
    });
    return { known: job, latest: job, data };
  }

  /** Waits for the latest attempt to finish, up to `waitMs`, then answers its status as it is then. */
  async function waitAndPresent(jobs: ScopedJobs, found: Found, waitMs: number) {
    const latest = await jobs.waitFor(found.latest.id, waitMs);
    return status(jobs, { ...found, latest });
  }

  app.post(
    '/:endpointId/run',
    {
      config: { idempotent: true, group: 'generate' },
      bodyLimit,
      schema: {
        tags,
        summary: 'Queue a job',
        params: EndpointParams,
        body: RunBody,
        response: { 200: StatusResponse, ...errorResponses(400, 413, 415) },
      },
    },
    async (request) => {
      const { known } = await create(scoped(request), request.params.endpointId, request.body);
      return presentBrief(known.id, known);
    },
  );

  app.post(
    '/:endpointId/runsync',
    {
      config: { idempotent: true, group: 'generate' },
      bodyLimit,
      schema: {
        tags,
        summary: 'Queue a job and wait for it; an unfinished job answers its current status',
        params: EndpointParams,
        querystring: WaitQuery,
        body: RunBody,
        response: { 200: StatusResponse, ...errorResponses(400, 413, 415) },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      return waitAndPresent(jobs, await create(jobs, request.params.endpointId, request.body), clampWait(request.query.wait));
    },
  );

  app.get(
    '/:endpointId/status/:id',
    { schema: { tags, summary: 'A job’s status, with its output once COMPLETED', params: JobParams, response: { 200: StatusResponse, ...errorResponses(404) } } },
    async (request) => {
      const jobs = scoped(request);
      return status(jobs, await find(jobs, request.params.endpointId, request.params.id));
    },
  );

  const statusSync = {
    schema: {
      tags,
      summary: 'A job’s status, waiting up to `wait` ms for it to finish',
      params: JobParams,
      querystring: WaitQuery,
      response: { 200: StatusResponse, ...errorResponses(400, 404) },
    },
  };
  // runpod-sdk calls GET; RunPod documents POST. Both wait the same way.
  app.get('/:endpointId/status-sync/:id', statusSync, async (request) => {
    const jobs = scoped(request);
    return waitAndPresent(jobs, await find(jobs, request.params.endpointId, request.params.id), clampWait(request.query.wait));
  }
  );
  app.post('/:endpointId/status-sync/:id', statusSync, async (request) => {
    const jobs = scoped(request);
    return waitAndPresent(jobs, await find(jobs, request.params.endpointId, request.params.id), clampWait(request.query.wait));
  }
  );

  app.get(
    '/:endpointId/stream/:id',
    {
      schema: {
        tags,
        summary: 'Streamed output: empty until the job finishes, then its whole output as one item',
        params: JobParams,
        response: { 200: StreamResponse, ...errorResponses(404) },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      const body = await status(jobs, await find(jobs, request.params.endpointId, request.params.id));
      return { status: body.status, stream: body.output === undefined ? [] : [{ output: body.output }] };
    },
  );

  app.post(
    '/:endpointId/cancel/:id',
    {
      schema: {
        tags,
        summary: 'Cancel a job, here and upstream; a finished job answers its status unchanged',
        params: JobParams,
        response: { 200: StatusResponse, ...errorResponses(404) },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      const found = await find(jobs, request.params.endpointId, request.params.id);
      const latest = await jobs.cancel(found.latest.id).catch(async (error: unknown) => {
        if (error instanceof DarkroomError && error.status === 409) return jobs.get(found.latest.id);
        throw error;
      });
      return presentBrief(found.known.id, latest);
    },
  );

  app.post(
    '/:endpointId/retry/:id',
    {
      config: { idempotent: true, group: 'generate' },
      schema: {
        tags,
        summary: 'Run a FAILED or TIMED_OUT job again, under the same id',
        params: JobParams,
        response: { 200: StatusResponse, ...errorResponses(404, 409) },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      const { endpointId, id } = request.params;
      const found = await find(jobs, endpointId, id);
      const { latest, data } = found;
      if (latest.status !== 'failed' && latest.status !== 'expired') {
        throw conflict(`Only FAILED or TIMED_OUT jobs can be retried; job ${id} is ${runpodStatus(latest.status)}`);
      }
      const retry: RunpodJobData = {
        endpointId,
        format: data.format,
        returnType: data.returnType,
        ...(data.ttlMs === undefined ? {} : { ttlMs: data.ttlMs }),
        retryOf: found.known.id,
        retried: true,
      };
      const next = await jobs.create(await retryInput(jobs, latest, data.ttlMs), { dialect: DIALECT, dialectData: { ...retry } });
      await jobs.mergeDialectData(found.known.id, { current: next.id });
      return { id: found.known.id, status: runpodStatus(next.status) };
    },
  );

  app.post(
    '/:endpointId/purge-queue',
    { schema: { tags, summary: 'Cancel every job of this endpoint that has not started', params: EndpointParams, response: { 200: PurgeResponse } } },
    async (request) => {
      const jobs = scoped(request);
      const { endpointId } = request.params;
      let removed = 0;
      let cursor: string | undefined;
      do {
        const page = await jobs.list({ status: 'queued', dialect: DIALECT, limit: 100, cursor });
        for (const job of page.items) {
          if (runpodData(job)?.endpointId !== endpointId) continue;
          // A job that started (or finished) since the page was read is no longer in the queue.
          const cancelled = await jobs.cancel(job.id).then(
            () => true,
            (error: unknown) => {
              if (error instanceof DarkroomError && error.status === 409) return false;
              throw error;
            },
          );
          if (cancelled) removed += 1;
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return { removed, status: 'completed' as const };
    },
  );

  app.get(
    '/:endpointId/health',
    {
      schema: {
        tags,
        summary: 'This endpoint’s job counts, and darkroom’s worker slots (shared by every endpoint)',
        params: EndpointParams,
        response: { 200: HealthResponse },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      const { endpointId } = request.params;
      const [counts, retries, stats] = await Promise.all([
        jobs.countByStatus({ dialect: DIALECT, dialectData: { endpointId } }),
        jobs.countByStatus({ dialect: DIALECT, dialectData: { endpointId, retried: true } }),
        // Worker slots are the service's, whoever asks.
        service.for(SYSTEM_CALLER).queueStats(),
      ]);
      // darkroom has no per-endpoint workers: a "worker" here is one slot of a live darkroom worker.
      const slots = (stats.workers ?? []).reduce((sum, worker) => sum + worker.concurrency, 0);
      const running = Math.min(slots, stats.jobs.running);
      return {
        jobs: {
          completed: counts.succeeded,
          failed: counts.failed + counts.expired,
          inProgress: counts.running,
          inQueue: counts.queued,
          retried: Object.values(retries).reduce((sum, n) => sum + n, 0),
        },
        workers: { idle: slots - running, initializing: 0, ready: slots - running, running, throttled: 0 },
      };
    },
  );
};

/**
 * The core names a refused input image by its place in `images` (`/images/0/data`); a RunPod client
 * knows it by the worker's field it wrote (`input.init_images[0]`). Other errors pass unchanged.
 */
function inWorkerTerms(error: unknown, paths: string[]): unknown {
  if (!(error instanceof DarkroomError) || error.fieldErrors.length === 0) return error;
  const renamed = error.fieldErrors.map((problem) => {
    const index = /^\/images\/(\d+)(?:\/|$)/.exec(problem.field)?.[1];
    const path = index === undefined ? undefined : paths[Number(index)];
    return path === undefined ? undefined : `${path} ${problem.message}`;
  });
  if (renamed.some((message) => message === undefined)) return error;
  return new DialectError(error.status, renamed.join('; '));
}

/**
 * A failed job's request as a new job's input: routed afresh, with a fresh deadline of the same
 * length, and its input images sent again from darkroom's storage (never fetched from their sources
 * again).
 */
async function retryInput(jobs: ScopedJobs, job: JobView, ttlMs: number | undefined): Promise<CreateJobInput> {
  const { deadline: _expired, provider: _routed, inputs, ...rest } = job.request;
  const images = await Promise.all(
    (inputs ?? []).map(async (input, index) => ({ role: input.role, data: (await jobs.readInput(job.id, index)).bytes.toString('base64') })),
  );
  return {
    ...rest,
    ...(images.length > 0 ? { images } : {}),
    ...(ttlMs === undefined ? {} : { deadline: new Date(Date.now() + ttlMs).toISOString() }),
  };
}
