import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { JobService, JobView, ScopedJobs } from '../../../core/job-service.ts';
import { DarkroomError } from '../../../core/errors.ts';
import { isTerminal } from '../../../core/job.ts';
import type { ResourceStore } from '../../../core/ports/stores.ts';
import type { CreateJobInput, InputSource } from '../../../core/request.ts';
import { A1111_DEFAULT_SAMPLER, A1111_SAMPLERS, A1111_SCHEDULERS, darkroomScheduler, type A1111GenerationResponse } from '../../../protocols/a1111/index.ts';
import { DialectError } from '../../http/errors.ts';
import { presentInfo, timestamp, type A1111JobData } from './present.ts';
import {
  errorResponses,
  GenerationResponse,
  Img2ImgBody,
  MAX_IMAGES,
  OptionsBody,
  ProgressQuery,
  ProgressResponse,
  TaskProgressBody,
  TaskProgressResponse,
  Txt2ImgBody,
} from './schemas.ts';

export interface A1111RoutesOptions {
  jobs: JobService;
  resources: ResourceStore;
}

const DIALECT = 'a1111';
const tags = ['a1111'];
/** How long one wait on a job lasts (waitFor takes a bound). */
const WAIT_SLICE_MS = 30_000;
/** The model name that means "whatever the provider runs by default". */
const DEFAULT_MODEL = 'default';
const MAX_CATALOGUE = 100;

type GenerationBody = Txt2ImgBody & Partial<Img2ImgBody>;

const unprocessable = (message: string, field?: string) =>
  new DialectError(422, message, field === undefined ? {} : { fields: [{ field, message }] });

/** The core names input images by their place in `images` (init first, then the mask): the client sent init_images and mask. */
function inWebuiTerms(error: unknown): unknown {
  if (!(error instanceof DarkroomError) || error.fieldErrors.length === 0) return error;
  const rename = (field: string) => field.replace(/^\/?images\/(\d+)(?:\/\w+)?/, (_, index: string) => (index === '0' ? 'init_images/0' : 'mask'));
  const renamed = error.fieldErrors.map((problem) => ({ ...problem, field: rename(problem.field) }));
  const message = error.message.replace(/images\.(\d+)(?:\.\w+)?/g, (_, index: string) => (index === '0' ? 'init_images.0' : 'mask'));
  return new DialectError(error.status === 400 ? 422 : error.status, message, { code: error.code, fields: renamed });
}

/** A data URI's payload, or the text itself (the webui takes both). */
const base64Of = (picture: string) => (picture.startsWith('data:') ? picture.slice(picture.indexOf(',') + 1) : picture);

/** The mask with black and white swapped (inpainting_mask_invert), as a PNG in base64. */
async function invertedMask(mask: string): Promise<string> {
  // sharp (libvips) loads with the first image, not with the server.
  const { default: sharp } = await import('sharp');
  try {
    const inverted = await sharp(Buffer.from(base64Of(mask), 'base64')).removeAlpha().negate().png().toBuffer();
    return inverted.toString('base64');
  } catch {
    throw unprocessable('mask is not an image darkroom can read', 'mask');
  }
}

/**
 * AUTOMATIC1111's (and Forge's) web API under /sdapi/v1 (docs/dialects/a1111.md). Like the webui,
 * the generation routes hold the request until the job ends and answer base64 images; unlike it,
 * the work is a darkroom job, queued durably and run by whichever provider routing picks, so any
 * number of clients can share a fleet. An A1111 client changes only its base URL.
 */
export const a1111Routes: FastifyPluginAsyncTypebox<A1111RoutesOptions> = async (app, { jobs: service, resources }) => {
  const scoped = (request: FastifyRequest) => service.for(request.caller);
  // Room for an init image and a mask as base64 (4 bytes per 3) besides the rest of the request.
  const img2imgBodyLimit = Math.max(app.initialConfig.bodyLimit ?? 0, 2 * Math.ceil((service.inputLimits.maxBytes * 4) / 3) + 1_048_576);

  /** Checkpoints (and LoRAs) named in the AIR catalogue. */
  async function catalogue(type: 'checkpoint' | 'lora'): Promise<string[]> {
    const { items } = await resources.list({ limit: MAX_CATALOGUE, offset: 0, prefix: 'urn:air:' });
    return items.map((item) => item.air).filter((air) => air.split(':')[3]?.toLowerCase() === type);
  }

  async function translate(body: GenerationBody, img2img: boolean): Promise<{ input: CreateJobInput; data: A1111JobData }> {
    const batch = (body.batch_size ?? 1) * (body.n_iter ?? 1);
    if (batch > MAX_IMAGES) throw unprocessable(`batch_size × n_iter is ${batch}; darkroom makes at most ${MAX_IMAGES} images a request`, 'n_iter');
    const sampler = body.sampler_name ?? body.sampler_index ?? A1111_DEFAULT_SAMPLER;
    const scheduler = body.scheduler ?? undefined;
    if (scheduler !== undefined && !A1111_SCHEDULERS.some((item) => item.name === scheduler.toLowerCase())) {
      throw unprocessable(`Scheduler ${scheduler} not found`, 'scheduler');
    }
    const checkpoint = body.override_settings?.sd_model_checkpoint;
    const images: InputSource[] = [];
    if (img2img) {
      const init = body.init_images?.[0];
      // The webui's own answer to an img2img without a picture.
      if (init === undefined) throw new DialectError(404, 'Init image not found');
      images.push({ role: 'init', data: init });
      if (body.mask) images.push({ role: 'mask', data: body.inpainting_mask_invert === 1 ? await invertedMask(body.mask) : body.mask });
    }
    const input: CreateJobInput = {
      prompt: body.prompt ?? '',
      numImages: batch,
      // The webui works in multiples of 8 and rounds a side down to one.
      width: Math.floor((body.width ?? 512) / 8) * 8,
      height: Math.floor((body.height ?? 512) / 8) * 8,
      ...(body.negative_prompt ? { negativePrompt: body.negative_prompt } : {}),
      ...(body.steps == null ? {} : { steps: body.steps }),
      ...(body.cfg_scale == null ? {} : { cfgScale: body.cfg_scale }),
      ...(body.seed == null ? {} : { seed: body.seed }),
      scheduler: darkroomScheduler(sampler, scheduler) ?? sampler,
      ...(checkpoint === undefined || checkpoint === DEFAULT_MODEL ? {} : { model: checkpoint }),
      ...(images.length > 0 ? { images, strength: body.denoising_strength ?? 0.75 } : {}),
    };
    const data: A1111JobData = { sampler, ...(scheduler === undefined ? {} : { scheduler }), ...(body.force_task_id ? { taskId: body.force_task_id } : {}) };
    return { input, data };
  }

  /**
   * Waits for the job like the webui's request waits for the GPU: until it ends. A client that left
   * meanwhile is still answered, so an Idempotency-Key repeat (a client back after a restart) gets
   * the stored answer.
   */
  async function settle(jobs: ScopedJobs, id: string): Promise<JobView> {
    for (;;) {
      const job = await jobs.waitFor(id, WAIT_SLICE_MS);
      if (isTerminal(job.status)) return job;
    }
  }

  async function answer(request: FastifyRequest, body: GenerationBody, img2img: boolean): Promise<A1111GenerationResponse> {
    const jobs = scoped(request);
    const { input, data } = await translate(body, img2img);
    const created = await jobs.create(input, { dialect: DIALECT, dialectData: { ...data } }).catch((error: unknown) => {
      throw inWebuiTerms(error);
    });
    request.log.info({ jobId: created.id, provider: created.provider }, img2img ? 'img2img job created' : 'txt2img job created');
    const job = await settle(jobs, created.id);
    if (job.status === 'failed' || job.status === 'expired') {
      const message = job.error?.message ?? 'The generation failed';
      // A failure another try could fix is the server's (500), one it never will is the request's (422).
      throw new DialectError(job.error?.retryable ? 500 : 422, message);
    }
    const parameters: Record<string, unknown> = { ...body };
    if (img2img && !body.include_init_images) {
      parameters.init_images = null;
      parameters.mask = null;
    }
    // Interrupted: the webui answers with what it has, which in darkroom is nothing.
    const images =
      job.status === 'succeeded' && body.send_images !== false
        ? await Promise.all(job.images.map(async (image) => (await jobs.readImage(job.id, image.index)).bytes.toString('base64')))
        : [];
    return { images, parameters, info: JSON.stringify(presentInfo(job, data, body.styles ?? [])) };
  }

  const generation = (summary: string, body: typeof Txt2ImgBody | typeof Img2ImgBody, bodyLimit?: number) => ({
    config: { group: 'generate' as const, idempotent: true },
    ...(bodyLimit === undefined ? {} : { bodyLimit }),
    schema: {
      tags,
      summary,
      description:
        'Holds the request until the darkroom job ends, then answers base64 images, the request as `parameters` and `info` (JSON text with `seed`, `all_seeds`, `infotexts`). ' +
        'A failed job answers 500 (retryable) or 422 (permanent) with the reason; an interrupted one answers 200 with no images.',
      body,
      response: { 200: GenerationResponse, ...errorResponses(401, 404, 413, 422, 429, 500) },
    },
  });

  app.post('/sdapi/v1/txt2img', generation('Text to image', Txt2ImgBody), async (request) => answer(request, request.body, false));

  app.post('/sdapi/v1/img2img', generation('Image to image and inpainting', Img2ImgBody, img2imgBodyLimit), async (request) => answer(request, request.body, true));

  /** The caller's running job (the oldest: the one the webui would be on), if any, and how many it has waiting. */
  async function current(jobs: ScopedJobs): Promise<{ running: JobView | undefined; queued: number }> {
    const [running, counts] = await Promise.all([jobs.list({ status: 'running', dialect: DIALECT, limit: 20 }), jobs.countByStatus({ dialect: DIALECT })]);
    return { running: running.items.at(-1), queued: counts.queued };
  }

  app.get(
    '/sdapi/v1/progress',
    {
      schema: {
        tags,
        summary: 'Progress of the caller’s running generation',
        description: 'The oldest of the caller’s running A1111 jobs (the webui runs one at a time); progress 0 and job_count 0 when none runs. No preview image.',
        querystring: ProgressQuery,
        response: { 200: ProgressResponse, ...errorResponses(401, 422) },
      },
    },
    async (request) => {
      const { running, queued } = await current(scoped(request));
      const steps = running?.request.steps ?? 0;
      const progress = running ? Math.min(1, Math.max(0.01, running.progress ?? 0)) : 0;
      const elapsed = running?.startedAt ? (Date.now() - running.startedAt.getTime()) / 1000 : 0;
      return {
        progress,
        eta_relative: running && progress > 0 ? Math.max(0, elapsed / progress - elapsed) : 0,
        state: {
          skipped: false,
          interrupted: false,
          job: running ? `darkroom ${running.id}` : '',
          job_count: running ? 1 + queued : 0,
          job_timestamp: running ? timestamp(running.startedAt ?? running.createdAt) : '0',
          job_no: 0,
          sampling_step: Math.round(progress * steps),
          sampling_steps: steps,
        },
        current_image: null,
        textinfo: running ? `${running.stage ?? running.status}` : null,
      };
    },
  );

  app.post(
    '/internal/progress',
    {
      schema: {
        tags,
        summary: 'Progress of one generation by its force_task_id',
        body: TaskProgressBody,
        response: { 200: TaskProgressResponse, ...errorResponses(401, 422) },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      const counts = await jobs.countByStatus({ dialect: DIALECT, dialectData: { taskId: request.body.id_task } });
      const active = counts.running > 0;
      const queued = !active && counts.queued > 0;
      const completed = counts.succeeded + counts.failed + counts.cancelled + counts.expired > 0;
      if (!active) {
        return { active, queued, completed, progress: null, eta: null, live_preview: null, id_live_preview: -1, textinfo: queued ? 'In queue' : 'Waiting...' };
      }
      const { items } = await jobs.list({ status: 'running', dialect: DIALECT, limit: 20 });
      const job = items.find((item) => (item.dialectData as Partial<A1111JobData>).taskId === request.body.id_task);
      const progress = job?.progress ?? 0;
      return { active, queued, completed, progress, eta: null, live_preview: null, id_live_preview: -1, textinfo: job?.stage ?? null };
    },
  );

  app.post(
    '/sdapi/v1/interrupt',
    {
      schema: {
        tags,
        summary: 'Stops the caller’s running generation',
        description: 'Cancels the caller’s oldest running A1111 job (its provider is told to stop too); its request answers with no images.',
        response: { 200: { type: 'object' }, ...errorResponses(401) },
      },
    },
    async (request) => {
      const jobs = scoped(request);
      const { running } = await current(jobs);
      if (running) {
        await jobs.cancel(running.id).catch((error: unknown) => {
          // It finished meanwhile: nothing left to interrupt, as in the webui.
          if (!(error instanceof Error && 'status' in error && error.status === 409)) throw error;
        });
      }
      return {};
    },
  );

  app.post(
    '/sdapi/v1/skip',
    {
      schema: {
        tags,
        summary: 'Accepted; a darkroom job is not split into images that can be skipped one by one',
        response: { 200: { type: 'null' }, ...errorResponses(401) },
      },
    },
    async () => null,
  );

  app.get(
    '/sdapi/v1/sd-models',
    { schema: { tags, summary: 'The checkpoints in darkroom’s AIR catalogue, and `default` (the provider’s own)' } },
    async () => {
      const airs = await catalogue('checkpoint');
      return [DEFAULT_MODEL, ...airs].map((name) => ({ title: name, model_name: name, hash: null, sha256: null, filename: name, config: null }));
    },
  );

  app.get('/sdapi/v1/loras', { schema: { tags, summary: 'The LoRAs in darkroom’s AIR catalogue' } }, async () => {
    const airs = await catalogue('lora');
    return airs.map((air) => ({ name: air, alias: air, path: air, metadata: {} }));
  });

  app.get('/sdapi/v1/samplers', { schema: { tags, summary: 'The webui’s samplers' } }, async () =>
    A1111_SAMPLERS.map((sampler) => ({ name: sampler.name, aliases: sampler.aliases, options: {} })),
  );

  app.get('/sdapi/v1/schedulers', { schema: { tags, summary: 'The webui’s schedulers' } }, async () =>
    A1111_SCHEDULERS.map((scheduler) => ({ name: scheduler.name, label: scheduler.label, aliases: null, default_rho: -1, need_inner_model: false })),
  );

  app.get('/sdapi/v1/upscalers', { schema: { tags, summary: 'None: darkroom runs no upscalers' } }, async () => []);

  app.get('/sdapi/v1/options', { schema: { tags, summary: 'The settings clients read: the model, the image format' } }, async () => ({
    sd_model_checkpoint: DEFAULT_MODEL,
    samples_format: 'png',
    sd_checkpoint_hash: null,
    CLIP_stop_at_last_layers: 1,
  }));

  app.post(
    '/sdapi/v1/options',
    {
      schema: {
        tags,
        summary: 'Checks settings; darkroom is shared, so none is kept: name the model per request with override_settings',
        body: OptionsBody,
        response: { 200: { type: 'null' }, ...errorResponses(401, 422, 500) },
      },
    },
    async (request) => {
      const checkpoint = request.body.sd_model_checkpoint;
      if (checkpoint !== undefined) {
        const known = [DEFAULT_MODEL, ...(await catalogue('checkpoint'))];
        // The webui raises a RuntimeError (a 500) for an unknown model.
        if (typeof checkpoint !== 'string' || !known.includes(checkpoint)) throw new DialectError(500, `model ${JSON.stringify(checkpoint)} not found`);
      }
      return null;
    },
  );
};
