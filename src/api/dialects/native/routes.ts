import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { badRequest } from '../../../core/errors.ts';
import type { JobService } from '../../../core/job-service.ts';
import type { CreateJobInput } from '../../../core/request.ts';
import type { EventFeed } from '../../../core/event-feed.ts';
import { wantsEventStream } from '../../http/sse.ts';
import { workflowFields } from '../../../protocols/comfyui/index.ts';
import { presentEvents, presentJob } from './present.ts';
import { makeEventStreams } from './streams.ts';
import { BatchBody, DEFAULT_PAGE_SIZE, ListQuery, ListResponse, QueueStatsResponse, BatchResponse, BatchStatusResponse, CreateJobBody, EventsResponse, EventStreamResponse, GetJobQuery, ImageLinkResponse, ImageParams, ImageQuery, JobIdParams, JobSchema, LastEventIdHeaders, problemResponses, ProviderOverviewSchema, ProviderParams, ProviderStatusSchema } from '../../../protocols/native/schemas.ts';

export interface NativeRoutesOptions {
  jobs: JobService;
  feed: EventFeed;
  /** How often an idle event stream gets a heartbeat. */
  sseHeartbeatMs: number;
}

const tags = ['jobs'];

/** A job with a ComfyUI `workflow`: what it leaves out is read from its graph; a graph darkroom cannot read is a 400. */
function withWorkflow<T extends { workflow?: object }>(input: T, field = ''): Omit<T, 'workflow'> & { workflow?: Record<string, unknown> } {
  if (input.workflow === undefined) return input as Omit<T, 'workflow'>;
  const read = workflowFields(input.workflow);
  if (!read.ok) {
    throw badRequest(`workflow: ${read.problems[0]}`, read.problems.map((message) => ({ field: `${field}workflow`, message })));
  }
  const own = Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
  return { ...read.fields, ...own } as Omit<T, 'workflow'> & { workflow: Record<string, unknown> };
}

/** darkroom's own API under /api/v1. */
export const nativeRoutes: FastifyPluginAsyncTypebox<NativeRoutesOptions> = async (app, { jobs, feed, sseHeartbeatMs }) => {
  const context = { dialect: 'native' };
  // Room for one input image as base64 (4 bytes per 3) besides the rest of the request.
  const bodyLimit = Math.max(app.initialConfig.bodyLimit ?? 0, Math.ceil((jobs.inputLimits.maxBytes * 4) / 3) + 1_048_576);

  app.post(
    '/jobs',
    {
      config: { idempotent: true, group: 'generate' },
      bodyLimit,
      schema: {
        tags,
        summary: 'Create a job: text-to-image, or from input images (image-to-image, inpainting, references)',
        body: CreateJobBody,
        response: { 202: JobSchema, ...problemResponses(400, 413, 415) },
      },
    },
    async (request, reply) => reply.code(202).send(presentJob(await jobs.for(request.caller).create(withWorkflow(request.body), context))),
  );

  app.post(
    '/jobs/batch',
    {
      config: { idempotent: true, group: 'generate' },
      bodyLimit,
      schema: {
        tags,
        summary: 'Create several jobs at once (all or nothing)',
        body: BatchBody,
        response: { 202: BatchResponse, ...problemResponses(400, 413, 415) },
      },
    },
    async (request, reply) => {
      const { prompts, jobs: items, ...shared } = request.body;
      if ((prompts === undefined) === (items === undefined)) {
        throw badRequest('Give exactly one of `prompts` or `jobs`', [
          { field: 'prompts', message: 'exactly one of prompts or jobs is required' },
        ]);
      }
      const inputs: CreateJobInput[] = (
        prompts ? prompts.map((prompt) => ({ ...shared, prompt })) : (items ?? []).map((item) => ({ ...shared, ...item }))
      ).map((input, index) => withWorkflow(input, prompts ? '' : `jobs.${index}.`));
      // Shared options are top-level fields; only a `jobs` entry has a place of its own.
      const batch = await jobs.for(request.caller).createBatch(inputs, context, prompts ? () => '' : (index) => `/jobs/${index}`);
      return reply.code(202).send({ batchId: batch.batchId, jobs: batch.jobs.map(presentJob) });
    },
  );

  app.get(
    '/batches/:id',
    {
      schema: {
        tags,
        summary: 'A batch: counts per status and its jobs',
        params: JobIdParams,
        response: { 200: BatchStatusResponse, ...problemResponses(400, 404) },
      },
    },
    async (request) => {
      const batch = await jobs.for(request.caller).getBatch(request.params.id);
      return { ...batch, jobs: batch.jobs.map(presentJob) };
    },
  );

  app.get(
    '/jobs',
    {
      schema: {
        tags,
        summary: 'List jobs, newest first (cursor pagination)',
        querystring: ListQuery,
        response: { 200: ListResponse, ...problemResponses(400) },
      },
    },
    async (request) => {
      const page = await jobs.for(request.caller).list({ ...request.query, limit: request.query.limit ?? DEFAULT_PAGE_SIZE });
      return { items: page.items.map(presentJob), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        tags,
        summary: 'A job with its images; `wait` holds the answer until it finishes (or the wait ends)',
        params: JobIdParams,
        querystring: GetJobQuery,
        response: { 200: JobSchema, ...problemResponses(400, 404) },
      },
    },
    async (request) => {
      const { wait } = request.query;
      return presentJob(wait ? await jobs.for(request.caller).waitFor(request.params.id, wait * 1000) : await jobs.for(request.caller).get(request.params.id));
    },
  );

  const cancelSchema = {
    tags,
    params: JobIdParams,
    response: { 200: JobSchema, ...problemResponses(400, 404, 409) },
  };
  app.post('/jobs/:id/cancel', { schema: { ...cancelSchema, summary: 'Cancel a queued or running job' } }, async (request) =>
    presentJob(await jobs.for(request.caller).cancel(request.params.id)),
  );
  app.delete('/jobs/:id', { schema: { ...cancelSchema, summary: 'Cancel a queued or running job' } }, async (request) =>
    presentJob(await jobs.for(request.caller).cancel(request.params.id)),
  );

  app.get(
    '/jobs/:id/images/:index',
    {
      schema: {
        tags,
        summary: 'A signed link to one image (or a redirect to it)',
        params: ImageParams,
        querystring: ImageQuery,
        response: { 200: ImageLinkResponse, 302: { type: 'null', description: 'Redirect to the link' }, ...problemResponses(400, 404, 409, 410) },
      },
    },
    async (request, reply) => {
      const link = await jobs.for(request.caller).imageLink(request.params.id, request.params.index, request.query.type ?? 'original');
      if (request.query.redirect) return reply.redirect(link.url, 302);
      return { ...link, expiresAt: link.expiresAt.toISOString() };
    },
  );

  const streams = makeEventStreams({ jobs, feed, heartbeatMs: sseHeartbeatMs, logger: app.log });
  app.addHook('preClose', async () => streams.closeAll());

  app.get(
    '/jobs/:id/events',
    {
      schema: {
        tags,
        summary: "A job's history (JSON), or its live events (Accept: text/event-stream)",
        description:
          'With `Accept: text/event-stream` the answer is a stream of server-sent events: the history (after `Last-Event-ID`, when given), then live events, ' +
          'ending after the terminal status event. Otherwise the whole history as JSON.',
        params: JobIdParams,
        headers: LastEventIdHeaders,
        response: {
          200: { description: 'History or live events', content: { 'application/json': { schema: EventsResponse }, 'text/event-stream': { schema: EventStreamResponse } } },
          ...problemResponses(400, 404),
        },
      },
    },
    async (request, reply) => {
      if (!wantsEventStream(request.headers.accept)) return presentEvents(await jobs.for(request.caller).events(request.params.id));
      await jobs.for(request.caller).get(request.params.id);
      const after = request.headers['last-event-id'];
      return streams.stream(reply, request.caller, { jobId: request.params.id, after: after === undefined ? undefined : Number(after) });
    },
  );

  // Every job of the caller's (every job at all when AUTH=off).
  app.get(
    '/events',
    {
      schema: {
        tags,
        summary: "Live events of every job of the caller's (server-sent events)",
        description:
          "Events of every job of the caller's (every job when AUTH=off) from now on, or after `Last-Event-ID` when given (a resume replays what was missed). In order within each job; never ends by itself.",
        headers: LastEventIdHeaders,
        response: { 200: { description: 'Live events', content: { 'text/event-stream': { schema: EventStreamResponse } } }, ...problemResponses(400) },
      },
    },
    async (request, reply) => {
      const after = request.headers['last-event-id'];
      return streams.stream(reply, request.caller, { after: after === undefined ? undefined : Number(after) });
    },
  );

  app.get(
    '/providers',
    {
      schema: {
        tags: ['operations'],
        summary: 'Configured providers: whether each is healthy, its circuit breaker, its recent error rate and latency, and the jobs queued for it',
        response: { 200: Type.Object({ items: Type.Array(ProviderOverviewSchema) }) },
      },
    },
    async () => {
      const iso = (date: Date | null) => date?.toISOString() ?? null;
      const items = await jobs.providers();
      return {
        items: items.map((item) => ({
          ...item,
          circuit: { ...item.circuit, openedAt: iso(item.circuit.openedAt), retryAt: iso(item.circuit.retryAt), pausedUntil: iso(item.circuit.pausedUntil) },
        })),
      };
    },
  );

  app.post(
    '/providers/:name/test',
    {
      schema: {
        tags: ['operations'],
        summary: "Check one provider's connection",
        params: ProviderParams,
        response: { 200: ProviderStatusSchema, ...problemResponses(400, 404) },
      },
    },
    async (request) => jobs.testProvider(request.params.name),
  );

  app.get(
    '/queue/stats',
    {
      schema: {
        tags: ['operations'],
        summary: "The caller's jobs per status and pending queue entries; with the admin scope every job and the live workers",
        response: { 200: QueueStatsResponse },
      },
    },
    async (request) => {
      const stats = await jobs.for(request.caller).queueStats();
      return {
        ...stats,
        workers: stats.workers?.map((worker) => ({
          id: worker.id,
          name: worker.id,
          host: worker.host,
          pid: worker.pid,
          concurrency: worker.concurrency,
          startedAt: worker.startedAt.toISOString(),
          lastHeartbeat: worker.heartbeatAt.toISOString(),
        })),
      };
    },
  );
};
