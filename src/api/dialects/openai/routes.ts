import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DarkroomError } from '../../../core/errors.ts';
import type { JobService, JobView, ScopedJobs } from '../../../core/job-service.ts';
import { isTerminal } from '../../../core/job.ts';
import { MAX_INPUTS, type CreateJobInput, type InputSource } from '../../../core/request.ts';
import {
  CONTENT_POLICY_CODES,
  DEFAULT_IMAGE_MODEL,
  IMAGE_MODELS,
  pixelsOf,
  readImageParams,
  streamEventType,
  type ImageEditParams,
  type ImageGenerateParams,
  type ImageVariationParams,
  type ModelObject,
  type ParamProblem,
} from '../../../protocols/openai/index.ts';
import { DialectError } from '../../http/errors.ts';
import { openSse, type SseStream } from '../../http/sse.ts';
import { readImageForm, registerImageForms, type ImageForm } from './form.ts';
import { presentCompletedEvents, presentImages, type OpenAIJobData } from './present.ts';
import { errorResponses, GenerateBody, ImagesResponseSchema, ModelListSchema, ModelParams, ModelSchema } from './schemas.ts';

export interface OpenAIRoutesOptions {
  jobs: JobService;
  /** How long a request waits for its job before a 504 (OPENAI_WAIT_MS). */
  waitMs: number;
  sseHeartbeatMs: number;
}

const DIALECT = 'openai';
const tags = ['openai'];
/** When the listed models were "created": a fixed instant, since darkroom's models have no release date. */
const MODELS_CREATED = 1_735_689_600;
/** What a variation asks of the provider: a variation has no prompt, so the job gets this one. */
const VARIATION_PROMPT = 'A variation of the given image, same subject and composition';
const VARIATION_STRENGTH = 0.6;

/** A parameter refused, as OpenAI answers it: 400, `invalid_request_error`, the parameter named. */
export const paramError = (problem: ParamProblem) => new DialectError(400, problem.message, { extra: { param: problem.param, code: problem.code } });

/**
 * The OpenAI Images API under /v1 (docs/dialects/openai.md): generations, edits and variations
 * become darkroom jobs and the request waits for its job, as OpenAI's does, answering the images as
 * signed links or base64; `stream: true` answers server-sent events. GET /v1/models lists the
 * models darkroom takes.
 */
export const openaiRoutes: FastifyPluginAsyncTypebox<OpenAIRoutesOptions> = async (app, options) => {
  const { jobs: service, waitMs } = options;
  await registerImageForms(app);
  const streams = new Set<SseStream>();
  // An open stream would hold the server's close until its job ended.
  app.addHook('preClose', async () => {
    for (const sse of streams) sse.end();
  });

  /** The job input and dialect data every operation shares: the model routed, the size in pixels, the answer's format. */
  function common(params: ImageGenerateParams | ImageEditParams | ImageVariationParams, operation: OpenAIJobData['operation']) {
    const model = params.model?.trim() || DEFAULT_IMAGE_MODEL;
    const { width, height } = pixelsOf(params.size, model);
    const input: Omit<CreateJobInput, 'prompt'> = {
      width,
      height,
      numImages: params.n ?? 1,
      // Only a model some provider claims travels with the job: any other is the default provider's to interpret, which
      // it cannot do with another service's model name.
      ...(service.claimantOf(model) ? { model } : {}),
    };
    const full = params as ImageGenerateParams & ImageEditParams;
    const data: OpenAIJobData = {
      operation,
      model,
      ...(params.response_format ? { responseFormat: params.response_format } : {}),
      ...(full.output_format ? { outputFormat: full.output_format } : {}),
      ...(full.output_compression !== undefined ? { outputCompression: full.output_compression } : {}),
      ...(full.quality ? { quality: full.quality } : {}),
      ...(full.background ? { background: full.background } : {}),
      ...(params.user ? { user: params.user } : {}),
    };
    return { input, data };
  }

  async function run(request: FastifyRequest, reply: FastifyReply, input: CreateJobInput, data: OpenAIJobData, stream: boolean) {
    const jobs = service.for(request.caller);
    const job = await jobs.create(input, { dialect: DIALECT, dialectData: { ...data } }).catch((error: unknown) => {
      throw inputRefusal(error, input.images ?? []);
    });
    reply.header('darkroom-job-id', job.id);
    if (stream) return streamJob(jobs, job.id, reply, data.operation === 'generations' ? 'generations' : 'edits');
    const done = await jobs.waitFor(job.id, waitMs);
    if (done.status !== 'succeeded') throw refusalOf(done, reply);
    return presentImages(jobs, done);
  }

  /**
   * The core names an input image it refuses by its place in the job (`images/2/data`); the client
   * sent it as `image` (or `image[n]`) or `mask`, so that is the parameter named.
   */
  function inputRefusal(error: unknown, images: InputSource[]): unknown {
    if (!(error instanceof DarkroomError)) return error;
    // What the dialect keeps with the job is named as the client sent it (`user`).
    const kept = error.fieldErrors.find((problem) => /^\/?dialectData\//.test(problem.field));
    if (kept) {
      const param = kept.field.replace(/^\/?dialectData\//, '').split('/')[0] ?? null;
      return new DialectError(error.status, `Invalid '${param}': ${kept.message}.`, { extra: { param, code: 'invalid_value' } });
    }
    const field = error.fieldErrors.find((problem) => /^\/?images\b/.test(problem.field))?.field;
    if (field === undefined) return error;
    const index = Number(/^\/?images\/(\d+)/.exec(field)?.[1]);
    const source = images[index];
    const pictures = images.filter((image) => image.role !== 'mask');
    const param = source?.role === 'mask' ? 'mask' : source && pictures.length > 1 ? `image[${pictures.indexOf(source)}]` : 'image';
    return new DialectError(error.status, `Invalid '${param}': ${error.message}`, { extra: { param, code: error.status === 413 ? 'file_too_large' : 'invalid_value' } });
  }

  /** The job's images as server-sent events once it ends: a `completed` event per image, or an `error` event. */
  async function streamJob(jobs: ScopedJobs, id: string, reply: FastifyReply, operation: 'generations' | 'edits'): Promise<FastifyReply> {
    const sse = openSse(reply, { heartbeatMs: options.sseHeartbeatMs });
    streams.add(sse);
    const pump = async () => {
      const done = await Promise.race([
        jobs.waitFor(id, waitMs),
        new Promise<undefined>((resolve) => sse.signal.addEventListener('abort', () => resolve(undefined), { once: true })),
      ]);
      if (!done) return;
      if (done.status === 'succeeded') {
        const events = await presentCompletedEvents(jobs, done, streamEventType(operation, 'completed'));
        for (const [index, event] of events.entries()) await sse.send({ id: index + 1, event: event.type, data: event });
        return;
      }
      const refusal = refusalOf(done);
      await sse.send({ id: 1, event: 'error', data: { type: 'error', error: { message: refusal.message, type: 'server_error', param: null, ...refusal.extra } } });
    };
    pump()
      .catch((error: unknown) => app.log.warn({ err: error, jobId: id }, 'an image stream failed'))
      .finally(() => {
        streams.delete(sse);
        sse.end();
      });
    return reply;
  }

  /**
   * A job that did not succeed, as OpenAI's error: a content refusal is a 400 (as OpenAI's own); an
   * unfinished job a 504 naming the job, whose result can still be read. darkroom has already
   * retried, so the client is told not to (`x-should-retry`, which the openai package honours):
   * repeating the request would make another job.
   */
  function refusalOf(job: JobView, reply?: FastifyReply): DialectError {
    reply?.header('x-should-retry', 'false');
    const jobId = job.id;
    if (!isTerminal(job.status)) {
      return new DialectError(
        504,
        `The image is not ready after ${waitMs < 10_000 ? `${waitMs} ms` : `${Math.round(waitMs / 1000)} s`}; darkroom job ${jobId} goes on. ` +
          `Read it, with its images once it has succeeded, with GET /api/v1/jobs/${jobId} (same key; ?wait=60 waits up to a minute for it).`,
        { extra: { type: 'timeout', param: null, code: 'job_not_finished', job_id: jobId } },
      );
    }
    if (job.status === 'failed' && job.error && CONTENT_POLICY_CODES.concat(['content_filtered', 'rejected']).includes(job.error.code)) {
      return new DialectError(400, `Your request was rejected by the safety system: ${job.error.message}`, {
        extra: { type: 'image_generation_user_error', param: 'prompt', code: 'content_policy_violation', job_id: jobId },
      });
    }
    const reason = job.status === 'failed' ? `failed: ${job.error?.message ?? 'no reason given'}` : job.status === 'expired' ? 'did not finish before its deadline' : 'was cancelled';
    return new DialectError(500, `The image could not be made: darkroom job ${jobId} ${reason}`, {
      extra: { param: null, code: job.status === 'failed' ? (job.error?.code ?? 'job_failed') : `job_${job.status}`, job_id: jobId },
    });
  }

  app.post(
    '/images/generations',
    {
      config: { idempotent: true, group: 'generate' },
      preValidation: async (request) => {
        if (request.isMultipart()) throw new DialectError(415, 'Send a generation as application/json', { extra: { param: null, code: 'unsupported_media_type' } });
      },
      schema: {
        tags,
        summary: 'OpenAI: create images from a prompt',
        description: 'Waits for the job (OPENAI_WAIT_MS), then answers its images; `stream: true` answers server-sent events.',
        body: GenerateBody,
        response: { 200: ImagesResponseSchema, ...errorResponses(400, 401, 429, 500, 504) },
      },
    },
    async (request, reply) => {
      const read = readImageParams('generations', request.body as Record<string, unknown>);
      if ('problem' in read) throw paramError(read.problem);
      const { params } = read;
      const { input, data } = common(params, 'generations');
      return run(request, reply, { ...input, prompt: params.prompt }, data, params.stream === true);
    },
  );

  const forms = new WeakMap<FastifyRequest, ImageForm>();
  const readForm = async (request: FastifyRequest) => {
    forms.set(request, await readImageForm(request, service.inputLimits.maxBytes));
  };
  const formOf = (request: FastifyRequest): ImageForm => forms.get(request) ?? { fields: {}, images: [] };
  const source = (role: InputSource['role'], bytes: Buffer): InputSource => ({ role, data: bytes.toString('base64') });

  app.post(
    '/images/edits',
    {
      config: { idempotent: true, group: 'generate' },
      preValidation: readForm,
      schema: {
        tags,
        summary: 'OpenAI: edit an image (multipart: image or image[], mask, prompt, …)',
        description:
          'The first image is the init image, `mask` its mask (transparent pixels change), further images are references. ' +
          'Waits for the job like generations; `stream: true` answers server-sent events.',
        consumes: ['multipart/form-data'],
        response: { 200: ImagesResponseSchema, ...errorResponses(400, 401, 413, 415, 429, 500, 504) },
      },
    },
    async (request, reply) => {
      const form = formOf(request);
      const read = readImageParams('edits', form.fields, { form: true });
      if ('problem' in read) throw paramError(read.problem);
      const { params } = read;
      const [init, ...references] = form.images;
      if (!init) throw paramError({ param: 'image', message: "Missing required parameter: 'image'.", code: 'missing_required_parameter' });
      const model = params.model ?? DEFAULT_IMAGE_MODEL;
      // darkroom keeps at most MAX_INPUTS images a job, the mask included: fewer than gpt-image-1's 16.
      const most = Math.min(IMAGE_MODELS[model]?.maxEditImages ?? MAX_INPUTS, MAX_INPUTS - (form.mask ? 1 : 0));
      if (form.images.length > most) {
        throw paramError({ param: 'image', message: `Invalid 'image': ${model} takes at most ${most} image${most === 1 ? '' : 's'} here; ${form.images.length} were sent.`, code: 'invalid_value' });
      }
      const { input, data } = common(params, 'edits');
      const images = [source('init', init.bytes), ...(form.mask ? [source('mask', form.mask.bytes)] : []), ...references.map((image) => source('reference', image.bytes))];
      return run(request, reply, { ...input, prompt: params.prompt, images }, data, params.stream === true);
    },
  );

  app.post(
    '/images/variations',
    {
      config: { idempotent: true, group: 'generate' },
      preValidation: readForm,
      schema: {
        tags,
        summary: 'OpenAI: variations of an image (multipart: image, n, size, …)',
        description: `The image is the init image of a job with strength ${VARIATION_STRENGTH}; waits for the job like generations.`,
        consumes: ['multipart/form-data'],
        response: { 200: ImagesResponseSchema, ...errorResponses(400, 401, 413, 415, 429, 500, 504) },
      },
    },
    async (request, reply) => {
      const form = formOf(request);
      const read = readImageParams('variations', form.fields, { form: true });
      if ('problem' in read) throw paramError(read.problem);
      const [image, ...more] = form.images;
      if (!image) throw paramError({ param: 'image', message: "Missing required parameter: 'image'.", code: 'missing_required_parameter' });
      if (more.length > 0 || form.mask) throw paramError({ param: more.length > 0 ? 'image' : 'mask', message: 'A variation takes one image and no mask.', code: 'invalid_value' });
      const { input, data } = common(read.params, 'variations');
      return run(request, reply, { ...input, prompt: VARIATION_PROMPT, images: [source('init', image.bytes)], strength: VARIATION_STRENGTH }, data, false);
    },
  );

  /** OpenAI's image models (each on the provider that claims it, else the default one), then every model a provider declares. */
  function models(): ModelObject[] {
    const listed = new Map<string, string>();
    for (const model of Object.keys(IMAGE_MODELS)) listed.set(model, service.claimantOf(model) ?? service.defaultProvider);
    for (const { model, provider } of service.models()) if (!listed.has(model)) listed.set(model, provider);
    return [...listed].map(([id, owner]) => ({ id, object: 'model', created: MODELS_CREATED, owned_by: owner }));
  }

  app.get(
    '/models',
    { schema: { tags, summary: 'OpenAI: the models darkroom takes (any other name runs on the default provider)', response: { 200: ModelListSchema, ...errorResponses(401) } } },
    async () => ({ object: 'list' as const, data: models() }),
  );

  app.get(
    '/models/:model',
    {
      schema: {
        tags,
        summary: 'OpenAI: one model; a name nobody claims is the default provider’s',
        params: ModelParams,
        response: { 200: ModelSchema, ...errorResponses(401) },
      },
    },
    async (request) => {
      const { model } = request.params;
      return (
        models().find((candidate) => candidate.id === model) ?? {
          id: model,
          object: 'model' as const,
          created: MODELS_CREATED,
          owned_by: service.claimantOf(model) ?? service.defaultProvider,
        }
      );
    },
  );
};
