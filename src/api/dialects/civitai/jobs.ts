import { isDeepStrictEqual } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { DarkroomError } from '../../../core/errors.ts';
import { SYSTEM_CALLER } from '../../../core/caller.ts';
import type { JobService, JobView, ScopedJobs } from '../../../core/job-service.ts';
import { isTerminal } from '../../../core/job.ts';
import { airMistake, decodeJobToken, encodeJobToken, isRecord } from '../../../protocols/civitai/orchestration.ts';
import { MAX_JOBS_PER_REQUEST, planJobRequest, type PlannedJob } from './schemas.ts';
import { presentJobStatus } from './present.ts';
import { CivitaiProblem, type FieldErrors } from './errors.ts';
import { addError, collectErrors, compile, queryBoolean, queryValue, queryValues, requireBody, throwIfErrors } from './validation.ts';
import { UUID_PATTERN } from '../../../core/ids.ts';

export interface CivitaiJobRoutesOptions {
  jobs: JobService;
  /** Longest `wait=true` holds a request before answering 202. */
  waitLimitMs: number;
}

const DIALECT = 'civitai';
const WAIT_POLL_MS = 100;
/** A query answers once it has this many matches, or has read QUERY_SCAN_LIMIT jobs. */
const QUERY_PAGE = 50;
const QUERY_SCAN_LIMIT = 1000;

const validateQuery = compile(
  Type.Object({
    cursor: Type.Optional(Type.String({ maxLength: 200, nullable: true })),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { nullable: true })),
  }),
);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The v1 consumer jobs API (`/v1/consumer/jobs…`, `/v1/consumer/coverage`) over JobService. */
export async function civitaiJobRoutes(app: FastifyInstance, { jobs: service, waitLimitMs }: CivitaiJobRoutesOptions): Promise<void> {
  /** `wait=true` waits up to the limit; darkroom also takes a number of seconds (as v2's `wait` does). */
  function waitMs(query: unknown, errors: FieldErrors): number {
    const raw = queryValue(query, 'wait');
    if (raw !== undefined && /^\d+$/.test(raw)) return Math.min(Number(raw) * 1000, waitLimitMs);
    return queryBoolean(query, 'wait', false, errors) ? waitLimitMs : 0;
  }

  function tokenIds(query: unknown): string[] {
    const token = queryValue(query, 'token');
    if (!token) throw new CivitaiProblem(400, 'The token field is required.', { token: ['The token field is required.'] });
    const ids = decodeJobToken(token);
    if (!ids || !ids.every((id) => UUID_PATTERN.test(id))) {
      throw new CivitaiProblem(400, 'The token is not one this service handed out.', { token: ['is not a job token this service handed out'] });
    }
    return ids;
  }

  /** The token's jobs in token order; a token none of whose jobs exist is a 404. */
  async function tokenJobs(jobs: ScopedJobs, ids: string[]): Promise<JobView[]> {
    const found = new Map((await jobs.getMany(ids)).map((job) => [job.id, job]));
    const ordered = ids.map((id) => found.get(id)).filter((job): job is JobView => job !== undefined);
    if (ordered.length === 0) throw new CivitaiProblem(404, 'No job under this token exists.');
    return ordered;
  }

  /** Re-reads the jobs until all have finished or `ms` has passed. */
  async function settle(jobs: ScopedJobs, views: JobView[], ms: number): Promise<JobView[]> {
    const until = Date.now() + ms;
    let current = views;
    while (!current.every((job) => isTerminal(job.status)) && Date.now() < until) {
      await sleep(Math.min(WAIT_POLL_MS, until - Date.now()));
      current = await tokenJobs(jobs, current.map((job) => job.id));
    }
    return current;
  }

  async function statuses(jobs: ScopedJobs, views: JobView[], detailed: boolean) {
    return Promise.all(views.map(async (job) => presentJobStatus(job, (await jobs.events(job.id)).at(-1), detailed)));
  }

  function jobId(params: unknown): string {
    const id = isRecord(params) && typeof params.jobId === 'string' ? params.jobId : '';
    // Not a darkroom id is the same as an unknown one, as it is to the orchestrator.
    if (!UUID_PATTERN.test(id)) throw new CivitaiProblem(404, `Job ${id} does not exist.`);
    return id;
  }

  /** Cancels, treating "already finished" as done: cancelling is idempotent here, as upstream. */
  async function cancel(jobs: ScopedJobs, job: JobView, force: boolean): Promise<boolean> {
    if (isTerminal(job.status) || (!force && job.status === 'running')) return false;
    try {
      await jobs.cancel(job.id);
      return true;
    } catch (error) {
      if (error instanceof DarkroomError && error.status === 409) return false;
      throw error;
    }
  }

  async function create(jobs: ScopedJobs, planned: PlannedJob[]): Promise<JobView[]> {
    const [only] = planned;
    if (planned.length === 1 && only) return [await jobs.create(only.input, { dialect: DIALECT, dialectData: { ...only.data } })];
    // One batch keeps it all or nothing, each job with its own data.
    const batch = await jobs.createBatch(
      planned.map((job) => job.input),
      { dialect: DIALECT, dialectDataOf: (index) => ({ ...planned[index]?.data }) },
    );
    return batch.jobs;
  }

  app.post('/v1/consumer/jobs', { config: { idempotent: true, group: 'generate' } }, async (request, reply) => {
    const jobs = service.for(request.caller);
    const errors: FieldErrors = {};
    const wait = waitMs(request.query, errors);
    const detailed = queryBoolean(request.query, 'detailed', false, errors);
    const { body } = request;
    requireBody(body);
    const batch = 'jobs' in body && !('$type' in body);
    const items: unknown[] = batch ? (Array.isArray(body.jobs) ? body.jobs : []) : [body];
    if (batch && (!Array.isArray(body.jobs) || items.length === 0 || items.length > MAX_JOBS_PER_REQUEST)) {
      addError(errors, 'jobs', `must be a list of 1 to ${MAX_JOBS_PER_REQUEST} job requests`);
    }
    const planned = items.flatMap((item, index) => planJobRequest(item, batch ? `jobs[${index}]` : '', errors) ?? []);
    await Promise.all(
      items.map(async (item, index) => {
        if (!isRecord(item) || typeof item.callbackUrl !== 'string') return;
        const refusal = await service.webhookRefusal(item.callbackUrl);
        if (refusal) addError(errors, batch ? `jobs[${index}].callbackUrl` : 'callbackUrl', refusal);
      }),
    );
    throwIfErrors(errors);

    const created = await create(jobs, planned);
    const views = await settle(jobs, created, wait);
    const done = views.every((job) => isTerminal(job.status));
    return reply.code(wait > 0 && !done ? 202 : 200).send({ token: encodeJobToken(views.map((job) => job.id)), jobs: await statuses(jobs, views, detailed) });
  });

  app.get('/v1/consumer/jobs', async (request, reply) => {
    const jobs = service.for(request.caller);
    const errors: FieldErrors = {};
    const wait = waitMs(request.query, errors);
    const detailed = queryBoolean(request.query, 'detailed', false, errors);
    throwIfErrors(errors);
    const views = await settle(jobs, await tokenJobs(jobs, tokenIds(request.query)), wait);
    const done = views.every((job) => isTerminal(job.status));
    return reply.code(wait > 0 && !done ? 202 : 200).send({ token: queryValue(request.query, 'token'), jobs: await statuses(jobs, views, detailed) });
  });

  app.delete('/v1/consumer/jobs', async (request, reply) => {
    const jobs = service.for(request.caller);
    const errors: FieldErrors = {};
    const force = queryBoolean(request.query, 'force', true, errors);
    throwIfErrors(errors);
    for (const job of await tokenJobs(jobs, tokenIds(request.query))) await cancel(jobs, job, force);
    return reply.code(200).send();
  });

  app.get('/v1/consumer/jobs/:jobId', async (request) => {
    const jobs = service.for(request.caller);
    const errors: FieldErrors = {};
    const detailed = queryBoolean(request.query, 'detailed', false, errors);
    throwIfErrors(errors);
    const [status] = await statuses(jobs, [await jobs.get(jobId(request.params))], detailed);
    return status;
  });

  app.delete('/v1/consumer/jobs/:jobId', async (request, reply) => {
    const jobs = service.for(request.caller);
    const errors: FieldErrors = {};
    const force = queryBoolean(request.query, 'force', true, errors);
    throwIfErrors(errors);
    const job = await jobs.get(jobId(request.params));
    if (!force && job.status === 'running') {
      throw new CivitaiProblem(409, `Job ${job.id} is being worked on; cancel it with force=true.`);
    }
    await cancel(jobs, job, force);
    return reply.code(200).send();
  });

  app.post('/v1/consumer/jobs/query', async (request) => {
    const jobs = service.for(request.caller);
    const errors: FieldErrors = {};
    const detailed = queryBoolean(request.query, 'detailed', false, errors);
    const body = request.body ?? {};
    requireBody(body);
    collectErrors(validateQuery, body, errors);
    throwIfErrors(errors);
    const wanted = isRecord(body.properties) ? Object.entries(body.properties) : [];
    const matches = (job: JobView) => {
      const properties = job.dialectData.properties;
      return wanted.every(([key, value]) => isRecord(properties) && isDeepStrictEqual(properties[key], value));
    };

    // Newest first, resuming after the cursor; a page may hold fewer than QUERY_PAGE matches when
    // matching jobs are rare, and its cursor then says where the scan stopped.
    const found: JobView[] = [];
    let cursor = typeof body.cursor === 'string' && body.cursor !== '' ? body.cursor : undefined;
    let scanned = 0;
    do {
      const page = await jobs.list({ dialect: DIALECT, limit: 100, cursor });
      found.push(...page.items.filter(matches));
      scanned += page.items.length;
      cursor = page.nextCursor ?? undefined;
    } while (cursor && found.length < QUERY_PAGE && scanned < QUERY_SCAN_LIMIT);
    return { cursor: cursor ?? null, jobs: await statuses(jobs, found, detailed) };
  });

  app.get('/v1/consumer/coverage', async (request) => {
    const errors: FieldErrors = {};
    const models = queryValues(request.query, 'model');
    if (models.length === 0) addError(errors, 'model', 'The model field is required.');
    models.forEach((air, index) => {
      const mistake = airMistake(air);
      if (mistake) addError(errors, `model[${index}]`, mistake);
    });
    throwIfErrors(errors);
    // Capacity is the service's, not the caller's: counted over every worker.
    const { workers = [] } = await service.for(SYSTEM_CALLER).queueStats();
    const slots = workers.reduce((sum, worker) => sum + worker.concurrency, 0);
    // darkroom runs any model through its providers: coverage is whether workers are there to run it.
    const availability = { availability: slots > 0 ? 'Available' : 'Unavailable', workers: slots };
    return Object.fromEntries(models.map((air) => [air, availability]));
  });
}
