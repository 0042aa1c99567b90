import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { SYSTEM_CALLER } from '../../../core/caller.ts';
import { conflict, DarkroomError } from '../../../core/errors.ts';
import { isTerminal } from '../../../core/job.ts';
import type { JobService, JobView } from '../../../core/job-service.ts';
import type { ProviderCheck, ProviderChecks } from '../../../core/provider-checks.ts';
import type { CreateJobInput } from '../../../core/request.ts';
import { DIALECT, isTasksJob, presentBatch, presentCheck, presentJob, type TaskJobData } from './present.ts';
import { BatchBody, DEFAULTS, errorResponses, GenerateBody, QueueStatsResponse, TaskAccepted, TaskCancelled, TaskParams, TaskStatusResponse, TestQuery, type TaskOptions } from './schemas.ts';
import { UUID_PATTERN } from '../../../core/ids.ts';
import { unstorableBody } from '../../http/storable-input.ts';

export interface TasksRoutesOptions {
  jobs: JobService;
  checks: ProviderChecks;
}

const tags = ['tasks'];

/** Text the database cannot store, located the FastAPI way (`["body", "prompts", 3]`) rather than by the core's field names. */
function refuseUnstorable(body: unknown): void {
  const refusal = unstorableBody(body);
  if (refusal) throw refusal;
}
const STARTED = 'Use /status/{task_id} to check progress.';

type Task = { kind: 'job'; job: JobView } | { kind: 'batch'; id: string; jobs: JobView[] } | { kind: 'check'; check: ProviderCheck };

/** The origin's request as a darkroom job: its defaults applied, `sampler_name` (plus a `karras` schedule) as darkroom's scheduler. */
function jobOf(prompt: string, options: TaskOptions): { input: CreateJobInput; data: TaskJobData } {
  const sampler = options.sampler_name ?? undefined;
  const schedule = options.scheduler ?? undefined;
  const foldsIn = sampler !== undefined && schedule?.toLowerCase() === 'karras';
  const scheduler = foldsIn && !/karras/i.test(sampler) ? `${sampler} Karras` : sampler;
  const input: CreateJobInput = {
    prompt,
    width: options.width ?? DEFAULTS.width,
    height: options.height ?? DEFAULTS.height,
    steps: options.steps ?? DEFAULTS.steps,
    ...(options.cfg_scale == null ? {} : { cfgScale: options.cfg_scale }),
    ...(options.seed == null ? {} : { seed: options.seed }),
    ...(scheduler === undefined ? {} : { scheduler }),
    ...(options.negative_prompt ? { negativePrompt: options.negative_prompt } : {}),
  };
  const data: TaskJobData = {
    useEnhancedPrompts: options.use_enhanced_prompts ?? true,
    ...(schedule !== undefined && !foldsIn ? { scheduler: schedule } : {}),
  };
  return { input, data };
}

/**
 * The RunPod-endpoints origin's own API (FastAPI + Celery) under /api/v1/runpod: tasks that
 * generate one image or a batch, polled by task id. A task id is a darkroom job id (one prompt), a
 * darkroom batch id (several), or a provider check's id (/test). Errors are FastAPI's `{detail}`.
 */
export const tasksRoutes: FastifyPluginAsyncTypebox<TasksRoutesOptions> = async (app, { jobs: service, checks }) => {
  const scoped = (request: FastifyRequest) => service.for(request.caller);


  const missing = (taskId: string) => new DarkroomError(404, 'not_found', `Task ${taskId} not found`);

  /** The caller's task with this id, of whichever kind; anything else (another key's task included) is a 404. */
  async function find(request: FastifyRequest, taskId: string): Promise<Task> {
    if (!UUID_PATTERN.test(taskId)) throw missing(taskId);
    const id = taskId.toLowerCase();
    const jobs = scoped(request);
    const [job] = await jobs.getMany([id]);
    if (job) {
      if (!isTasksJob(job)) throw missing(taskId);
      return { kind: 'job', job };
    }
    const batch = await jobs.getBatch(id).catch((error: unknown) => {
      if (error instanceof DarkroomError && error.status === 404) return null;
      throw error;
    });
    if (batch) {
      if (!batch.jobs.every(isTasksJob)) throw missing(taskId);
      return { kind: 'batch', id, jobs: batch.jobs };
    }
    const check = await checks.get(request.caller, id);
    if (check) return { kind: 'check', check };
    throw missing(taskId);
  }

  app.post(
    '/generate',
    {
      config: { group: 'generate', idempotent: true },
      schema: {
        tags,
        summary: 'Start generating one image',
        description: `Defaults: ${DEFAULTS.width}×${DEFAULTS.height}, ${DEFAULTS.steps} steps. Poll GET /status/{task_id}.`,
        body: GenerateBody,
        response: { 200: TaskAccepted, ...errorResponses(401, 413, 415, 422, 429) },
      },
    },
    async (request) => {
      refuseUnstorable(request.body);
      const { prompt, ...options } = request.body;
      const { input, data } = jobOf(prompt, options);
      const job = await scoped(request).create(input, { dialect: DIALECT, dialectData: { ...data } });
      request.log.info({ taskId: job.id, jobs: 1 }, 'task created');
      return { task_id: job.id, status: 'pending' as const, message: `Image generation started. ${STARTED}` };
    },
  );

  app.post(
    '/generate/batch',
    {
      config: { group: 'generate', idempotent: true },
      schema: {
        tags,
        summary: 'Start generating one image per prompt (1–10), as one task',
        body: BatchBody,
        response: { 200: TaskAccepted, ...errorResponses(400, 401, 413, 415, 422, 429) },
      },
    },
    async (request) => {
      refuseUnstorable(request.body);
      const { prompts, ...options } = request.body;
      const made = prompts.map((prompt) => jobOf(prompt, options));
      const batch = await scoped(request).createBatch(
        made.map((job) => job.input),
        // Every prompt shares the options, so every job has the same dialect data.
        { dialect: DIALECT, dialectData: { ...made[0]?.data } },
        (index) => `/prompts/${index}`,
      );
      request.log.info({ taskId: batch.batchId, jobs: batch.jobs.length }, 'task created');
      return { task_id: batch.batchId, status: 'pending' as const, message: `Batch generation of ${prompts.length} images started. ${STARTED}` };
    },
  );

  app.get(
    '/status/:task_id',
    {
      schema: {
        tags,
        summary: 'A task’s status, with its result once finished',
        description:
          'pending (queued) → started (running) → generating (result.progress, percent) → success | failed (error) | cancelled. ' +
          'One image: result {success, image_url, prompt, width, height, steps, seed}; a batch: result {success, images, errors?}; ' +
          'a connection test: result {success, provider, healthy, detail, latency_ms}.',
        params: TaskParams,
        response: { 200: TaskStatusResponse, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const task = await find(request, request.params.task_id);
      if (task.kind === 'job') return presentJob(task.job);
      if (task.kind === 'batch') return presentBatch(task.id, task.jobs);
      return presentCheck(task.check);
    },
  );

  app.delete(
    '/cancel/:task_id',
    {
      schema: {
        tags,
        summary: 'Cancel a task, here and upstream (every unfinished image of a batch); a finished task is a 409',
        params: TaskParams,
        response: { 200: TaskCancelled, ...errorResponses(401, 404, 409) },
      },
    },
    async (request) => {
      const taskId = request.params.task_id;
      const task = await find(request, taskId);
      const jobs = scoped(request);
      const finished = (status: string) => conflict(`Task ${taskId} has already finished (${status}) and cannot be cancelled`);
      let stopped = 0;
      if (task.kind === 'check') throw conflict(`Task ${taskId} is a connection test, which cannot be cancelled`);
      if (task.kind === 'job') {
        await jobs.cancel(task.job.id).catch(async (error: unknown) => {
          if (error instanceof DarkroomError && error.status === 409) throw finished(presentJob(await jobs.get(task.job.id)).status);
          throw error;
        });
        stopped = 1;
      } else {
        for (const job of task.jobs.filter((candidate) => !isTerminal(candidate.status))) {
          // One that finished since it was read is left as it is.
          const cancelled = await jobs.cancel(job.id).then(
            () => true,
            (error: unknown) => {
              if (error instanceof DarkroomError && error.status === 409) return false;
              throw error;
            },
          );
          if (cancelled) stopped += 1;
        }
        if (stopped === 0) throw finished(presentBatch(task.id, await Promise.all(task.jobs.map((job) => jobs.get(job.id)))).status);
      }
      request.log.info({ taskId, jobs: stopped }, 'task cancelled');
      const message = task.kind === 'job' ? 'Task cancelled' : `Batch cancelled: ${stopped} unfinished of ${task.jobs.length} images stopped`;
      return { task_id: taskId, status: 'cancelled' as const, message };
    },
  );

  app.post(
    '/test',
    {
      config: { group: 'generate', idempotent: true },
      schema: {
        tags,
        summary: 'Start a check of the provider connection, as a task',
        description: 'GET /status/{task_id} then answers success (healthy) or failed, with result {success, provider, healthy, detail, latency_ms}.',
        querystring: TestQuery,
        response: { 200: TaskAccepted, ...errorResponses(401, 422, 429) },
      },
    },
    async (request) => {
      const check = await checks.start(request.caller, request.query.provider);
      request.log.info({ taskId: check.id, provider: check.provider }, 'provider test started');
      return { task_id: check.id, status: 'pending' as const, message: `Connection test of provider ${check.provider} started. Use /status/{task_id} to see the result.` };
    },
  );

  app.get(
    '/queue/stats',
    {
      schema: {
        tags,
        summary: 'Running, waiting and scheduled tasks, and the live workers',
        description:
          'Counts are the caller’s own jobs (every job with the admin scope or AUTH=off), of every dialect. Worker ids are shown with the admin scope; ' +
          'others see worker-1…n.',
        response: { 200: QueueStatsResponse, ...errorResponses(401) },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      const [stats, scheduled] = await Promise.all([jobs.queueStats(), jobs.countScheduled()]);
      // Live workers are the service's, whoever asks; who they are (host, pid) only admins see.
      const workers = (stats.workers ?? (await service.for(SYSTEM_CALLER).queueStats()).workers ?? []).filter((worker) => worker.concurrency > 0);
      return {
        active_tasks: stats.jobs.running,
        reserved_tasks: Math.max(0, stats.jobs.queued - scheduled),
        scheduled_tasks: scheduled,
        workers: request.caller.admin ? workers.map((worker) => worker.id) : workers.map((_, index) => `worker-${index + 1}`),
      };
    },
  );
};
