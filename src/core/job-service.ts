import { v7 as uuidv7 } from 'uuid';
import { ActiveCapExceeded, BudgetExceeded, type BudgetCharge, type CountFilter, type NewJob, type JobStore } from './ports/job-store.ts';
import { readObject, THUMBNAIL_SIZE, type ObjectStorage } from './ports/storage.ts';
import type { Caller } from './caller.ts';
import type { Logger } from './ports/logger.ts';
import type { EventBus } from './ports/events.ts';
import { entryOptions, type JobQueue } from './ports/queue.ts';
import { CAPABILITY_NAMES, neededCapabilities, type ProviderRegistry } from './ports/provider.ts';
import { badRequest, conflict, DarkroomError, notFound } from './errors.ts';
import { ACTIVE_STATUSES, isTerminal, JOB_STATUSES, type Job, type JobImage, type JobStatus } from './job.ts';
import { canDo, routeProvider } from './routing.ts';
import type { InputService, InputView } from './inputs.ts';
import { actualCost, estimateCost, priceRuleFor, type Pricing } from './pricing.ts';
import { METADATA_MAX_BYTES, normaliseRequest, type CreateJobInput, type GenerationRequest } from './request.ts';
import { findUnstorable, pointerOf } from './storable.ts';
import type { DeliveryLogEntry } from './ports/webhooks.ts';
import type { CircuitStore } from './ports/circuits.ts';
import { firstStint, type FallbackChains } from './failover.ts';

export interface JobServiceDeps {
  repo: JobStore;
  events: EventBus;
  queue: JobQueue;
  providers: ProviderRegistry;
  storage: ObjectStorage;
  defaultProvider: string;
  maxAttempts: number;
  signedUrlTtlSeconds: number;
  logger: Logger;
  webhooks: WebhookPort;
  inputs: InputService;
  pricing: Pricing;
  /** Each provider's circuit and recent figures, for GET /providers and readiness. */
  circuits: CircuitStore;
  /** PROVIDER_FALLBACK: where each provider's jobs move when it is down. */
  fallbackChains: FallbackChains;
}

/** What the core needs of webhooks: the check of a submitted URL, and the delivery log. */
export interface WebhookPort {
  /** Why webhooks may not go to `url` (not http(s), a private address, …), or null when they may. */
  refusal(url: string): Promise<string | null>;
  /** The deliveries about a job (its batch's completion included), each with its attempts. */
  deliveriesOf(job: Job): Promise<DeliveryLogEntry[]>;
}

export interface ImageView {
  index: number;
  width: number;
  height: number;
  contentType: string;
  bytes: number;
  sha256: string;
  seed: number | null;
  url: string;
  thumbnailUrl: string;
  expiresAt: Date;
}

export interface JobView extends Job {
  images: ImageView[];
  /** The job's input images, with signed links. */
  inputs: InputView[];
}

export interface CreateContext {
  dialect: string;
  /** Kept with the job for the dialect's own answers (see Job.dialectData). */
  dialectData?: Record<string, unknown>;
  /** In a batch: job `index`'s own dialect data, merged over `dialectData`. */
  dialectDataOf?: (index: number) => Record<string, unknown>;
}

export type ImageType = 'original' | 'thumbnail';

export const MAX_BATCH_SIZE = 100;
export const MAX_PAGE_SIZE = 100;
/** A worker not heard from for this long is left out of queue stats. */
const WORKER_STALE_MS = 30_000;

export type JobService = ReturnType<typeof makeJobService>;
/** The job use cases bound to one caller (JobService.for). */
export type ScopedJobs = ReturnType<JobService['for']>;

/** The core's use cases. Dialects translate to and from these; nothing here knows about HTTP. */
export function makeJobService(deps: JobServiceDeps) {
  const { repo, queue, storage, logger } = deps;

  function prepare(input: CreateJobInput, field: string, batched: boolean): { request: GenerationRequest; deadlineAt: Date | null } {
    const request = normaliseRequest(input);
    const needed = neededCapabilities({ inputs: input.images, workflow: input.workflow });
    const provider = routeProvider(request, deps.providers.all(), deps.defaultProvider, needed);
    const chosen = deps.providers.get(provider);
    if (!chosen) {
      const available = deps.providers.names().join(', ');
      throw badRequest(`Provider "${provider}" is not configured (available: ${available})`, [
        { field: `${field}/provider`, message: `"${provider}" is not a configured provider; available: ${available}` },
      ]);
    }
    if (!canDo(chosen, needed)) {
      const missing = needed.filter((capability) => !chosen.capabilities[capability]).map((capability) => CAPABILITY_NAMES[capability]).join(' and ');
      const able = deps.providers.all().filter((candidate) => canDo(candidate, needed)).map((candidate) => candidate.name);
      const others = able.length > 0 ? `configured providers that can: ${able.join(', ')}` : `no configured provider can (configured: ${deps.providers.names().join(', ')})`;
      throw badRequest(`Provider "${provider}" cannot do ${missing}; ${others}`, [
        { field: `${field}/${input.provider === undefined ? 'images' : 'provider'}`, message: `"${provider}" cannot do ${missing}; ${others}` },
      ]);
    }
    const most = chosen.capabilities.maxInputs;
    if (most !== undefined && (input.images?.length ?? 0) > most) {
      throw badRequest(`Provider "${provider}" takes at most ${most} input images`, [{ field: `${field}/images`, message: `"${provider}" takes at most ${most} images` }]);
    }
    request.provider = provider;
    if (request.metadata && Buffer.byteLength(JSON.stringify(request.metadata)) > METADATA_MAX_BYTES) {
      throw badRequest('metadata is too large', [
        { field: `${field}/metadata`, message: `must serialise to at most ${METADATA_MAX_BYTES} bytes` },
      ]);
    }
    if (request.webhookEvents && request.webhook === undefined) {
      throw badRequest('webhookEvents needs a webhook', [{ field: `${field}/webhookEvents`, message: 'needs webhook: the URL to send the events to' }]);
    }
    if (batched === false && request.webhookEvents?.includes('batch.completed')) {
      throw badRequest('batch.completed is an event of batches', [
        { field: `${field}/webhookEvents`, message: 'batch.completed is sent for batches only (POST /jobs/batch)' },
      ]);
    }
    let deadlineAt: Date | null = null;
    if (request.deadline) {
      deadlineAt = new Date(request.deadline);
      if (Number.isNaN(deadlineAt.getTime()) || deadlineAt.getTime() <= Date.now()) {
        throw badRequest('deadline must be a date-time in the future', [
          { field: `${field}/deadline`, message: 'must be a date-time in the future' },
        ]);
      }
    }
    return { request, deadlineAt };
  }

  /** Job `index`'s dialect data: the shared data with its own merged over. */
  const dialectDataOf = (context: CreateContext, index: number): Record<string, unknown> => ({ ...context.dialectData, ...context.dialectDataOf?.(index) });

  /** What in `value` the database cannot store, each part named under `field` (a JSON pointer). */
  function unstorable(value: unknown, field: string): { field: string; message: string }[] {
    return findUnstorable(value).map((part) => ({ field: `${field}${pointerOf(part.path)}`, message: part.message }));
  }

  /** Refuses the request when it holds anything the database cannot store, naming every such field. */
  function refuseUnstorable(problems: { field: string; message: string }[]): void {
    // A batch sharing one bad option is one problem per field, not one per job.
    const distinct = [...new Map(problems.map((problem) => [`${problem.field} ${problem.message}`, problem])).values()];
    const first = distinct[0];
    if (!first) return;
    const more = distinct.length > 1 ? ` (and ${distinct.length - 1} more)` : '';
    throw badRequest(`${first.field.replace(/^\//, '').replaceAll('/', '.')} ${first.message}${more}`, distinct);
  }

  /**
   * Every job is checked whole before anything is stored: a NUL, a lone surrogate or nesting beyond
   * MAX_STORED_DEPTH in any field of its request or of its dialect data refuses the request. One
   * check for every dialect; each answers the refusal in its own error format.
   */
  function checkStorable(inputs: CreateJobInput[], context: CreateContext, fieldOf: (index: number) => string): void {
    // Base64 image data is decoded, never stored as text.
    const storedPart = (input: CreateJobInput) => ({ ...input, images: input.images?.map(({ data: _data, ...source }) => source) });
    refuseUnstorable(
      inputs.flatMap((input, index) => [
        ...unstorable(storedPart(input), fieldOf(index)),
        ...unstorable(dialectDataOf(context, index), `${fieldOf(index)}/dialectData`),
      ]),
    );
  }

  /**
   * Fetches, checks and stores every input image of the jobs before any job is stored, so a job
   * never exists with an input it cannot read; a batch that repeats a source fetches it once.
   */
  async function attachInputs(caller: Caller, inputs: CreateJobInput[], rows: NewJob[], fieldOf: (index: number) => string): Promise<void> {
    for (const [index, input] of inputs.entries()) {
      if (input.images?.length || input.strength !== undefined) await deps.inputs.precheck(input.images ?? [], input.strength, fieldOf(index));
    }
    const cache: Parameters<InputService['resolve']>[3] = new Map();
    await Promise.all(
      rows.map(async (row, index) => {
        const sources = inputs[index]?.images;
        if (!sources?.length) return;
        row.request.inputs = await deps.inputs.resolve(caller, sources, fieldOf(index), cache);
        const strength = deps.inputs.strengthOf(sources, inputs[index]?.strength);
        if (strength === undefined) delete row.request.strength;
        else row.request.strength = strength;
      }),
    );
  }

  function row(caller: Caller, input: CreateJobInput, context: CreateContext, batchId: string | null, field: string, index = 0): NewJob {
    const { request, deadlineAt } = prepare(input, field, batchId !== null);
    return {
      // A caller who named the provider keeps the job there unless it asked for fallback.
      fallback: input.fallback ?? input.provider === undefined,
      providerHistory: [firstStint(request.provider as string, new Date())],
      id: uuidv7(),
      owner: caller.owner,
      batchId,
      dialect: context.dialect,
      status: 'queued',
      priority: request.priority,
      provider: request.provider as string,
      request,
      dialectData: dialectDataOf(context, index),
      maxAttempts: deps.maxAttempts,
      deadlineAt,
      cost: priceRuleFor(deps.pricing, request.provider as string, request) ? estimateCost(deps.pricing, request.provider as string, request) : null,
    };
  }

  /** Refuses the request when a webhook URL may not be called (each distinct URL is looked up once). */
  async function checkWebhooks(rows: NewJob[], fieldOf: (index: number) => string): Promise<void> {
    const refusals = new Map<string, Promise<string | null>>();
    const problems = await Promise.all(
      rows.map(async (row, index) => {
        const url = row.request.webhook;
        if (url === undefined) return null;
        if (!refusals.has(url)) refusals.set(url, deps.webhooks.refusal(url));
        const refusal = await refusals.get(url);
        return refusal ? { field: `${fieldOf(index)}/webhook`, message: refusal } : null;
      }),
    );
    const found = problems.filter((problem) => problem !== null);
    // A shared URL refused for every job of a batch is one problem, not a hundred.
    const distinct = [...new Map(found.map((problem) => [`${problem.field} ${problem.message}`, problem])).values()];
    const first = distinct[0];
    if (first) throw badRequest(`${first.field.replace(/^\//, '').replaceAll('/', '.')} ${first.message}`, distinct);
  }

  async function enqueueAll(jobs: Job[]): Promise<void> {
    for (const job of jobs) {
      await queue.enqueue(job.id, entryOptions(job)).catch((error: unknown) => {
        // The row is committed; a later resume (or the reconciler) enqueues it again.
        logger.error({ err: error, jobId: job.id }, 'could not enqueue a stored job');
      });
    }
  }

  /** The budget period now is in: its UTC day (`2026-12-06`) or month (`2026-12`). */
  const currentPeriod = (period: 'day' | 'month') => new Date().toISOString().slice(0, period === 'day' ? 10 : 7);

  /** What the rows are estimated to cost against the caller's budget, or undefined when it has none (unpriced jobs count nothing). */
  function budgetCharge(caller: Caller, rows: NewJob[]): BudgetCharge | undefined {
    if (!caller.budget || caller.owner === null) return undefined;
    const cost = Math.round(rows.reduce((sum, row) => sum + (row.cost?.estimated ?? 0), 0) * 1e6) / 1e6;
    return { owner: caller.owner, period: currentPeriod(caller.budget.period), amount: caller.budget.amount, cost };
  }

  /** The caller's budget in the current period: what its jobs cost there so far (estimates until they end) and what is left. */
  async function budgetUse(caller: Caller) {
    if (!caller.budget || caller.owner === null) return undefined;
    const current = currentPeriod(caller.budget.period);
    const spent = await repo.spendOf(caller.owner, current);
    const left = Math.max(0, Math.round((caller.budget.amount - spent) * 1e6) / 1e6);
    return { ...caller.budget, currency: deps.pricing.currency, current, spent, left };
  }

  /** Stores the rows unless they would take the caller over its active-jobs cap (then nothing is stored: 429). */
  async function insert(caller: Caller, rows: NewJob[]): Promise<Job[]> {
    const cap = caller.maxActiveJobs === null ? undefined : { owner: caller.owner, max: caller.maxActiveJobs };
    const charge = budgetCharge(caller, rows);
    try {
      return await repo.insertJobs(rows, cap, charge);
    } catch (error) {
      if (error instanceof BudgetExceeded && caller.budget) {
        const { currency } = deps.pricing;
        const left = Math.max(0, Math.round((error.amount - error.spent) * 1e6) / 1e6);
        throw new DarkroomError(
          402,
          'budget_exceeded',
          `This key's budget is ${error.amount} ${currency} a ${caller.budget.period} and ${left} ${currency} of it is left; ${rows.length === 1 ? 'this job is' : 'these jobs are'} estimated at ${error.cost} ${currency}`,
        );
      }
      if (!(error instanceof ActiveCapExceeded)) throw error;
      const asked = rows.length === 1 ? 'one more' : `${rows.length} more`;
      throw new DarkroomError(
        429,
        'too_many_active_jobs',
        `This caller has ${error.active} queued or running jobs and may have at most ${error.max}; ${asked} would exceed that. Wait for some to finish, or cancel some.`,
      );
    }
  }

  async function view(job: Job, images?: JobImage[]): Promise<JobView> {
    // Images marked expired may already be gone from storage: never hand out a link to one.
    const own = job.imagesExpiredAt ? [] : (images ?? (await repo.listImages([job.id])));
    const [imageViews, inputViews] = await Promise.all([Promise.all(own.map(imageView)), deps.inputs.views(job.request.inputs)]);
    return { ...job, images: imageViews, inputs: inputViews };
  }

  async function imageView(image: JobImage): Promise<ImageView> {
    const [original, thumbnail] = await Promise.all([
      storage.signedUrl(image.originalKey, deps.signedUrlTtlSeconds),
      storage.signedUrl(image.thumbnailKey, deps.signedUrlTtlSeconds),
    ]);
    return {
      index: image.index,
      width: image.width,
      height: image.height,
      contentType: image.contentType,
      bytes: image.bytes,
      sha256: image.sha256,
      seed: image.seed,
      url: original.url,
      thumbnailUrl: thumbnail.url,
      expiresAt: original.expiresAt,
    };
  }

  async function views(jobs: Job[]): Promise<JobView[]> {
    const images = await repo.listImages(jobs.map((job) => job.id));
    return Promise.all(jobs.map((job) => view(job, images.filter((image) => image.jobId === job.id))));
  }

  const visible = (caller: Caller, job: Job) => caller.owner === null || job.owner === caller.owner;

  /** The job when it exists and the caller may see it; someone else's job does not exist for them. */
  async function getJob(caller: Caller, id: string): Promise<Job> {
    const job = await repo.get(id);
    if (!job || !visible(caller, job)) throw notFound('Job', id);
    return job;
  }

  const ownerFilter = (caller: Caller) => (caller.owner === null ? undefined : caller.owner);

  /** The use cases that read or change jobs, each limited to what `caller` owns. */
  const scoped = (caller: Caller) => ({
    async create(input: CreateJobInput, context: CreateContext): Promise<JobView> {
      checkStorable([input], context, () => '');
      const stored = row(caller, input, context, null, '');
      await checkWebhooks([stored], () => '');
      await attachInputs(caller, [input], [stored], () => '');
      const [job] = await insert(caller, [stored]);
      if (!job) throw new Error('insert returned no row');
      await enqueueAll([job]);
      return view(job, []);
    },

    /**
     * All or nothing: one bad job refuses the whole batch, and nothing is stored. `fieldOf` names
     * where job `index` came from in the caller's request, for error messages.
     */
    async createBatch(
      inputs: CreateJobInput[],
      context: CreateContext,
      fieldOf: (index: number) => string = (index) => `/jobs/${index}`,
    ): Promise<{ batchId: string; jobs: JobView[] }> {
      const most = Math.min(MAX_BATCH_SIZE, caller.maxBatchSize);
      if (inputs.length === 0 || inputs.length > most) {
        throw badRequest(`A batch has 1 to ${most} jobs${most < MAX_BATCH_SIZE ? ' for this caller' : ''}; this one has ${inputs.length}`);
      }
      checkStorable(inputs, context, fieldOf);
      const batchId = uuidv7();
      const rows = inputs.map((input, index) => row(caller, input, context, batchId, fieldOf(index), index));
      await checkWebhooks(rows, fieldOf);
      await attachInputs(caller, inputs, rows, fieldOf);
      const jobs = await insert(caller, rows);
      await enqueueAll(jobs);
      return { batchId, jobs: await Promise.all(jobs.map((job) => view(job, []))) };
    },

    async get(id: string): Promise<JobView> {
      return view(await getJob(caller, id));
    },

    /** Stores one input image for later jobs; `declared` is the type the client claimed, checked against the bytes. */
    async upload(bytes: Buffer, declared?: string) {
      return deps.inputs.upload(caller, bytes, declared);
    },

    async getUpload(id: string) {
      return deps.inputs.getUpload(caller, id);
    },

    async webhookDeliveries(id: string): Promise<DeliveryLogEntry[]> {
      return deps.webhooks.deliveriesOf(await getJob(caller, id));
    },

    /**
     * Waits up to `timeoutMs` for the job to finish (any terminal status), then returns it as it is
     * then. Driven by job events, so it costs nothing while it waits and works across processes.
     */
    async waitFor(id: string, timeoutMs: number): Promise<JobView> {
      let wake: () => void = () => undefined;
      const woken = new Promise<void>((resolve) => (wake = resolve));
      const unsubscribe = deps.events.subscribe((message) => {
        if (message.jobId === id && isTerminal(message.status)) wake();
      });
      const timer = setTimeout(wake, timeoutMs);
      try {
        // Subscribed before reading, so a finish between the read and the wait is not missed.
        const job = await getJob(caller, id);
        if (!isTerminal(job.status)) await woken;
      } finally {
        clearTimeout(timer);
        unsubscribe();
      }
      return view(await getJob(caller, id));
    },

    /** The jobs that exist among `ids`, in id order (unknown ids are left out). */
    async getMany(ids: string[]): Promise<JobView[]> {
      return views((await repo.getMany(ids)).filter((job) => visible(caller, job)));
    },

    async mergeDialectData(id: string, data: Record<string, unknown>): Promise<void> {
      refuseUnstorable(unstorable(data, '/dialectData'));
      if (!(await repo.mergeDialectData(id, data, ownerFilter(caller)))) throw notFound('Job', id);
    },

    /** Sets `key` in the job's dialect data unless already set; true only for the caller that set it. */
    async claimDialectKey(id: string, key: string, value: unknown): Promise<boolean> {
      refuseUnstorable(unstorable({ [key]: value }, '/dialectData'));
      if (await repo.claimDialectKey(id, key, value, ownerFilter(caller))) return true;
      // Not claimed: already set (false), or not a job this caller may see (404).
      await getJob(caller, id);
      return false;
    },

    /** The stored bytes of one image of a succeeded job (for dialects that answer with base64). */
    async readImage(id: string, index: number, type: ImageType = 'original'): Promise<{ bytes: Buffer; contentType: string }> {
      const job = await getJob(caller, id);
      if (job.imagesExpiredAt) throw imagesGone(job);
      const image = (await repo.listImages([id])).find((candidate) => candidate.index === index);
      if (!image) throw notFound('Image', `${index} of job ${id}`);
      const object = await readObject(storage, type === 'original' ? image.originalKey : image.thumbnailKey);
      if (!object) throw notFound('Image', `${index} of job ${id}`);
      return object;
    },

    /** The stored bytes of input image `index` of a job (a dialect that runs a job again sends them anew). */
    async readInput(id: string, index: number): Promise<{ bytes: Buffer; contentType: string }> {
      const input = (await getJob(caller, id)).request.inputs?.[index];
      const object = input && (await readObject(storage, input.key));
      if (!object) throw notFound('Input image', `${index} of job ${id}`);
      return object;
    },

    async list(query: { status?: JobStatus; dialect?: string; dialectData?: Record<string, unknown>; limit: number; cursor?: string }): Promise<{ items: JobView[]; nextCursor: string | null }> {
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const page = await repo.list({ owner: ownerFilter(caller), status: query.status, dialect: query.dialect, dialectData: query.dialectData, limit: query.limit + 1, after });
      const items = page.slice(0, query.limit);
      const last = items.at(-1);
      return { items: await views(items), nextCursor: page.length > query.limit && last ? encodeCursor(last.id) : null };
    },

    /** One numbered page of the caller's jobs, newest first (`page` from 1); for dialects whose lists are paged so. */
    async page(query: { dialect?: string; page: number; pageSize: number }): Promise<JobView[]> {
      const pageSize = Math.min(MAX_PAGE_SIZE, query.pageSize);
      const items = await repo.list({ owner: ownerFilter(caller), dialect: query.dialect, limit: pageSize, offset: (query.page - 1) * pageSize });
      return views(items);
    },

    async getBatch(batchId: string) {
      const jobs = (await repo.listByBatch(batchId)).filter((job) => visible(caller, job));
      if (jobs.length === 0) throw notFound('Batch', batchId);
      const counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
      for (const job of jobs) counts[job.status] += 1;
      return { batchId, total: jobs.length, counts, jobs: await views(jobs) };
    },

    /** Cancels a queued or running job, here and upstream. A finished job is a 409. */
    async cancel(id: string): Promise<JobView> {
      const before = await getJob(caller, id);
      const cancelled = await repo.transition(id, ACTIVE_STATUSES, 'cancelled', {
        stage: null,
        queuePosition: null,
        completedAt: new Date(),
        // Upstream time already spent is billed, images never made are not.
        ...(before.cost ? { cost: actualCost(deps.pricing, before.provider, before.request, { images: [], upstreamMs: before.timings.providerMs }, before.cost) } : {}),
      });
      if (!cancelled) {
        const current = await getJob(caller, id);
        throw conflict(`Job ${id} has already finished (${current.status}) and cannot be cancelled`);
      }
      await queue.remove(id);
      // The upstream job, and any a failover left on a provider the job moved away from.
      const upstream = [
        ...cancelled.providerHistory.flatMap((stint) => (stint.cancel ? [{ provider: stint.provider, providerJobId: stint.cancel }] : [])),
        ...(cancelled.providerJobId ? [{ provider: cancelled.provider, providerJobId: cancelled.providerJobId }] : []),
      ];
      for (const { provider: name, providerJobId } of upstream) {
        await deps.providers
          .get(name)
          ?.cancel({ providerJobId, request: cancelled.request })
          .catch((error: unknown) => logger.warn({ err: error, jobId: id, provider: name }, 'could not cancel the upstream job'));
      }
      return view(cancelled);
    },

    async imageLink(id: string, index: number, type: ImageType) {
      const job = await getJob(caller, id);
      if (job.imagesExpiredAt) throw imagesGone(job);
      if (job.status !== 'succeeded') {
        throw new DarkroomError(409, 'job_unfinished', `Job ${id} is ${job.status}; its images exist once it has succeeded`);
      }
      const image = (await repo.listImages([id])).find((candidate) => candidate.index === index);
      if (!image) throw notFound('Image', `${index} of job ${id}`);
      const key = type === 'original' ? image.originalKey : image.thumbnailKey;
      const link = await storage.signedUrl(key, deps.signedUrlTtlSeconds);
      const thumbnail = type === 'thumbnail';
      return {
        url: link.url,
        expiresAt: link.expiresAt,
        width: thumbnail ? THUMBNAIL_SIZE : image.width,
        height: thumbnail ? THUMBNAIL_SIZE : image.height,
        contentType: thumbnail ? 'image/webp' : image.contentType,
      };
    },

    async events(id: string) {
      await getJob(caller, id);
      return repo.listEvents(id);
    },

    /** The caller's jobs per status (`filter` narrows further). */
    async countByStatus(filter: Omit<CountFilter, 'owner'> = {}) {
      return repo.countByStatus({ ...filter, owner: ownerFilter(caller) });
    },

    /**
     * Jobs per status and pending queue entries; an admin sees every job and the live workers,
     * anyone else their own jobs and how much work is waiting overall (not who does it).
     */
    async queueStats() {
      const [jobs, pending, workers, costs, budget] = await Promise.all([
        repo.countByStatus(caller.admin ? {} : { owner: ownerFilter(caller) }),
        queue.stats(),
        caller.admin ? repo.listWorkers(new Date(Date.now() - WORKER_STALE_MS)) : Promise.resolve(undefined),
        repo.costsByOwner(caller.admin ? undefined : ownerFilter(caller)),
        budgetUse(caller),
      ]);
      return { queue: queue.kind, jobs, pending, workers, costs, budget };
    },

    /** Of the jobs queueStats counts as queued, those waiting out a retry backoff (not due yet). */
    async countScheduled(): Promise<number> {
      const counts = await repo.countByStatus({ ...(caller.admin ? {} : { owner: ownerFilter(caller) }), scheduledAfter: new Date() });
      return counts.queued;
    },
  });

  return {
    /** The job use cases as `caller` may run them. */
    for: scoped,

    /** Largest input image in bytes, however it arrives: dialects size their body limits from it. */
    inputLimits: deps.inputs.limits,

    /** A job as it was at some moment (a webhook's snapshot), with freshly signed image links. */
    async viewAt(job: Job, images: JobImage[]): Promise<JobView> {
      return view(job, images);
    },

    /** When retention removed a job's images, or null (also for a job that does not exist). */
    async imagesExpiredAt(jobId: string): Promise<Date | null> {
      return (await repo.get(jobId))?.imagesExpiredAt ?? null;
    },

    /** Why webhooks may not go to `url`, or null: for dialects that answer the refusal in their own words. */
    async webhookRefusal(url: string): Promise<string | null> {
      return deps.webhooks.refusal(url);
    },

    /** The models configured providers declare, each with the provider that runs it (first claimant wins). */
    models(): { model: string; provider: string }[] {
      const seen = new Map<string, string>();
      for (const provider of deps.providers.all()) for (const model of provider.models ?? []) if (!seen.has(model)) seen.set(model, provider.name);
      return [...seen].map(([model, provider]) => ({ model, provider }));
    },

    /** The provider a request naming `model` (and no provider) is routed to, when one claims it; undefined: the default provider. */
    claimantOf(model: string): string | undefined {
      const request = normaliseRequest({ prompt: '', model });
      return deps.providers.all().find((provider) => provider.claims?.(request))?.name;
    },

    /** The provider a request naming no provider and no claimed model goes to. */
    get defaultProvider(): string {
      return deps.defaultProvider;
    },

    /** Every configured provider with the result of its health check, its circuit, its recent calls and the jobs queued for it. */
    async providers() {
      const names = deps.providers.names();
      const circuits = await deps.circuits.overview(names);
      // A provider that asked for a pause (429 Retry-After) is sent nothing before it ends, not even a health check.
      const checks = await Promise.all(
        circuits.map((circuit) =>
          circuit.pausedUntil
            ? {
                name: circuit.provider,
                default: circuit.provider === deps.defaultProvider,
                healthy: false,
                detail: `Paused until ${circuit.pausedUntil.toISOString()}: the upstream answered 429 with Retry-After, and darkroom sends it nothing before then`,
                latencyMs: 0,
              }
            : this.testProvider(circuit.provider),
        ),
      );
      return checks.map((check, index) => {
        const circuit = circuits[index] as (typeof circuits)[number];
        return {
          ...check,
          circuit: {
            state: circuit.state,
            openedAt: circuit.openedAt,
            retryAt: circuit.retryAt,
            consecutiveFailures: circuit.consecutiveFailures,
            pausedUntil: circuit.pausedUntil,
          },
          fallback: [...(deps.fallbackChains[check.name] ?? [])],
          recent: { calls: circuit.recentCalls, errorRate: circuit.errorRate, p50LatencyMs: circuit.p50LatencyMs },
          queued: circuit.queued,
        };
      });
    },

    /** Which configured providers can take work (their circuit is closed) and which are down. */
    async availability(): Promise<{ available: string[]; down: string[] }> {
      const unavailable = await deps.circuits.unavailable();
      const names = deps.providers.names();
      return { available: names.filter((name) => !unavailable.has(name)), down: names.filter((name) => unavailable.has(name)) };
    },

    /** Checks one provider's connection (credentials, reachability), never throwing for an unhealthy one. */
    async testProvider(name: string) {
      const provider = deps.providers.get(name);
      if (!provider) throw new DarkroomError(404, 'not_found', `Provider ${name} is not configured (available: ${deps.providers.names().join(', ')})`);
      const started = performance.now();
      const check = await provider.check().catch((error: unknown) => ({
        ok: false,
        detail: error instanceof Error ? error.message : 'the check failed',
      }));
      return {
        name,
        default: name === deps.defaultProvider,
        healthy: check.ok,
        detail: check.detail,
        latencyMs: Math.round(performance.now() - started),
      };
    },


    /** Enqueues every unfinished job again: how a restarted process picks up where it stopped. */
    async resume(): Promise<number> {
      const unfinished = await repo.listUnfinished();
      for (const job of unfinished) {
        const delayMs = Math.max(0, job.runAfter.getTime() - Date.now());
        await queue.enqueue(job.id, entryOptions(job, delayMs));
      }
      return unfinished.length;
    },
  };
}

/** The answer for an image that retention removed. */
export const imagesGone = (job: Pick<Job, 'id' | 'imagesExpiredAt'>) =>
  new DarkroomError(410, 'images_expired', `The images of job ${job.id} were removed at ${job.imagesExpiredAt?.toISOString()} (RETAIN_IMAGES)`);

export function encodeCursor(id: string): string {
  return Buffer.from(id).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
    throw badRequest('cursor is not one this API handed out', [{ field: 'cursor', message: 'is malformed', in: 'querystring' }]);
  }
  return id;
}
