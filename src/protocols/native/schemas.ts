import { Type, type Static } from 'typebox';
import { DEFAULT_STRENGTH, INPUT_ROLES, JOB_STAGES, JOB_STATUSES, MAX_BATCH_SIZE, MAX_INPUTS, MAX_PAGE_SIZE } from './jobs.ts';

/**
 * darkroom's own HTTP API (`/api/v1`) on the wire: every request and response schema, from which
 * the server validates, the OpenAPI document is generated and the typed client takes its types.
 * Pure data: no server, no database, no environment.
 */

export const NetworkSchema = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 64 }),
    strength: Type.Optional(Type.Number({ minimum: -10, maximum: 10 })),
    triggerWord: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

/** What a job's webhook is told of: terminal statuses (`completed`, the default), every status change, each stored image, each move to another provider, its batch's end. */
export const WEBHOOK_EVENT_FILTERS = ['completed', 'status', 'image', 'failover', 'batch.completed'] as const;
export type WebhookEventFilter = (typeof WEBHOOK_EVENT_FILTERS)[number];
export const WEBHOOK_URL_MAX_LENGTH = 2000;

export const InputSourceSchema = Type.Object(
  {
    role: Type.Enum(INPUT_ROLES, { description: '`init`: the picture to start from; `mask`: which of its pixels may change (white) and which stay (black); `reference`: a picture to take after.' }),
    uploadId: Type.Optional(Type.String({ format: 'uuid', description: 'An upload of this caller (POST /uploads).' })),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'An http(s) URL darkroom fetches once, at submission.' })),
    data: Type.Optional(Type.String({ minLength: 1, description: 'The image as base64, or a base64 data URI.' })),
  },
  { additionalProperties: false, description: 'One input image: exactly one of uploadId, url or data.' },
);

const dimension = (description: string) =>
  Type.Integer({ minimum: 64, maximum: 2048, multipleOf: 8, default: 512, description });

/** Options shared by a single job and by every job of a batch. */
export const GenerationOptionsSchema = Type.Object(
  {
    negativePrompt: Type.Optional(Type.String({ maxLength: 4000 })),
    width: Type.Optional(dimension('Image width in pixels: 64–2048, a multiple of 8.')),
    height: Type.Optional(dimension('Image height in pixels: 64–2048, a multiple of 8.')),
    steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 150 })),
    cfgScale: Type.Optional(Type.Number({ minimum: 1, maximum: 30 })),
    seed: Type.Optional(
      Type.Integer({ minimum: -1, maximum: 4294967295, description: 'Absent or -1 means a random seed.' }),
    ),
    scheduler: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    style: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'Model AIR.' })),
    additionalNetworks: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 500 }), NetworkSchema, { maxProperties: 20 }),
    ),
    numImages: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, default: 1 })),
    images: Type.Optional(
      Type.Array(InputSourceSchema, {
        maxItems: MAX_INPUTS,
        description: 'Input images: at most one init, at most one mask (it needs an init of the same size), references.',
      }),
    ),
    strength: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: `How much the init image may change: 0 keeps it, 1 ignores it (default ${DEFAULT_STRENGTH} with an init image).` }),
    ),
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Runs the job on this provider only, unless `fallback` is true.' })),
    fallback: Type.Optional(
      Type.Boolean({
        description:
          "Whether the job may move to the next provider of its provider's fallback chain (PROVIDER_FALLBACK) when that provider is down. Default: true, unless `provider` names one.",
      }),
    ),
    priority: Type.Optional(
      Type.Integer({ minimum: -100, maximum: 100, default: 0, description: 'Higher runs first.' }),
    ),
    deadline: Type.Optional(
      Type.String({ format: 'date-time', description: 'The job expires if it has not succeeded by then.' }),
    ),
    metadata: Type.Optional(
      Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
        maxProperties: 50,
        description: 'Free JSON kept with the job (at most 16 KiB serialised).',
      }),
    ),
    workflow: Type.Optional(
      Type.Object({}, {
        additionalProperties: true,
        maxProperties: 500,
        description:
          'A ComfyUI graph in API format, run as given by providers that run workflows (comfyui; the mock renders the parameters read from it). Its LoadImage nodes take `images` in node id order.',
      }),
    ),
    webhook: Type.Optional(
      Type.String({
        format: 'uri',
        pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
        maxLength: WEBHOOK_URL_MAX_LENGTH,
        description: 'http(s) URL that darkroom POSTs the events of `webhookEvents` to, signed as Standard Webhooks.',
      }),
    ),
    webhookEvents: Type.Optional(
      Type.Array(Type.Enum(WEBHOOK_EVENT_FILTERS), {
        minItems: 1,
        maxItems: WEBHOOK_EVENT_FILTERS.length,
        uniqueItems: true,
        description: 'Which events reach `webhook` (default: completed).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PromptSchema = Type.String({ minLength: 1, maxLength: 4000 });

export const CreateJobSchema = Type.Object(
  { prompt: PromptSchema, ...GenerationOptionsSchema.properties },
  { additionalProperties: false },
);
export type CreateJobInput = Static<typeof CreateJobSchema>;

const DateTime = Type.String({ format: 'date-time' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const DEFAULT_PAGE_SIZE = 20;

export const JobIdParams = Type.Object({ id: Type.String({ format: 'uuid', description: 'Job id (UUID)' }) });

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ in: Type.String(), field: Type.String(), message: Type.String() })),
    ),
  },
  { description: 'RFC 9457 problem details' },
);

export const ImageSchema = Type.Object({
  index: Type.Integer(),
  width: Type.Integer(),
  height: Type.Integer(),
  contentType: Type.String(),
  bytes: Type.Integer(),
  sha256: Type.String(),
  seed: Nullable(Type.Integer()),
  url: Type.String({ description: 'Signed link to the original' }),
  thumbnailUrl: Type.String({ description: 'Signed link to the 128×128 WebP thumbnail' }),
  expiresAt: DateTime,
});

export const InputSchema = Type.Object({
  role: Type.Enum(INPUT_ROLES),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  bytes: Type.Integer(),
  sha256: Type.String(),
  url: Type.String({ description: 'Signed link to the stored input image' }),
});

export const UploadSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    contentType: Type.String(),
    width: Type.Integer(),
    height: Type.Integer(),
    bytes: Type.Integer(),
    sha256: Type.String(),
    expiresAt: DateTime,
    url: Type.Optional(Type.String({ description: 'Signed link to the image (GET only)' })),
  },
  { description: 'An uploaded input image, usable by the jobs of its owner until it expires' },
);

export const UploadIdParams = Type.Object({ id: Type.String({ format: 'uuid', description: 'Upload id (UUID)' }) });

export const JobErrorSchema = Type.Object({ code: Type.String(), message: Type.String(), retryable: Type.Boolean() });

export const JobSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    batchId: Nullable(Type.String()),
    status: Type.Enum(JOB_STATUSES),
    stage: Nullable(Type.Enum(JOB_STAGES)),
    progress: Nullable(Type.Number()),
    queuePosition: Nullable(Type.Integer()),
    priority: Type.Integer(),
    attempts: Type.Integer(),
    maxAttempts: Type.Integer(),
    provider: Type.String(),
    providerJobId: Nullable(Type.String()),
    fallback: Type.Boolean({ description: 'Whether the job may move along its fallback chain (false: pinned to its provider)' }),
    providerHistory: Type.Array(
      Type.Object({
        provider: Type.String(),
        attempts: Type.Integer({ description: 'Attempts made on this provider' }),
        at: DateTime,
      }),
      { description: 'Every provider the job has been on, the current one last; a move is a `failover` event' },
    ),
    request: Type.Object({ prompt: Type.String(), ...GenerationOptionsSchema.properties }),
    error: Nullable(JobErrorSchema),
    timings: Type.Object({ providerMs: Type.Number(), imageMs: Type.Number(), storageMs: Type.Number() }),
    createdAt: DateTime,
    startedAt: Nullable(DateTime),
    completedAt: Nullable(DateTime),
    deadlineAt: Nullable(DateTime),
    images: Type.Array(ImageSchema),
    imagesExpiredAt: Nullable(DateTime),
    cost: Nullable(
      Type.Object(
        {
          estimated: Nullable(Type.Number({ description: 'At submission, from the request' })),
          actual: Nullable(Type.Number({ description: 'When the job ended: images stored, their pixels, upstream seconds, tokens' })),
          currency: Type.String(),
        },
        { description: 'What the job costs on its provider (PROVIDER_PRICES); null when the provider is not priced' },
      ),
    ),
    usage: Nullable(
      Type.Object(
        {
          inputTokens: Type.Integer(),
          outputTokens: Type.Integer(),
          inputTextTokens: Type.Optional(Type.Integer()),
          inputImageTokens: Type.Optional(Type.Integer()),
        },
        { description: "The tokens the job's provider reported once it succeeded (OpenAI's GPT image models); null when it reported none" },
      ),
    ),
    inputs: Type.Array(InputSchema),
  },
  { description: 'A job, its input images and its images' },
);

export const CreateJobBody = CreateJobSchema;

export const BatchBody = Type.Object(
  {
    prompts: Type.Optional(Type.Array(PromptSchema, { minItems: 1, maxItems: MAX_BATCH_SIZE })),
    jobs: Type.Optional(Type.Array(CreateJobSchema, { minItems: 1, maxItems: MAX_BATCH_SIZE })),
    ...GenerationOptionsSchema.properties,
  },
  {
    additionalProperties: false,
    description: 'Either `prompts` (one job per prompt) or `jobs`; the other options are defaults for every job.',
  },
);

export const BatchResponse = Type.Object({ batchId: Type.String(), jobs: Type.Array(JobSchema) });

const StatusCounts = Type.Object(Object.fromEntries(JOB_STATUSES.map((status) => [status, Type.Integer()])));

export const BatchStatusResponse = Type.Object({
  batchId: Type.String(),
  total: Type.Integer(),
  counts: StatusCounts,
  jobs: Type.Array(JobSchema),
});

export const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Enum(JOB_STATUSES)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const ListResponse = Type.Object({ items: Type.Array(JobSchema), nextCursor: Nullable(Type.String()) });

export const ImageParams = Type.Object({
  id: Type.String({ format: 'uuid' }),
  index: Type.Integer({ minimum: 0, maximum: 99 }),
});

export const ImageQuery = Type.Object(
  {
    type: Type.Optional(Type.Enum(['original', 'thumbnail'], { default: 'original' })),
    redirect: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

export const ImageLinkResponse = Type.Object({
  url: Type.String(),
  expiresAt: DateTime,
  width: Type.Integer(),
  height: Type.Integer(),
  contentType: Type.String(),
});

export const EventsResponse = Type.Object({
  items: Type.Array(
    Type.Object({
      id: Type.Integer(),
      type: Type.String(),
      status: Type.String(),
      stage: Nullable(Type.String()),
      data: Type.Record(Type.String(), Type.Unknown()),
      createdAt: DateTime,
    }),
  ),
});

export const QueueStatsResponse = Type.Object({
  queue: Type.String(),
  jobs: StatusCounts,
  pending: Type.Object(
    { waiting: Type.Integer(), delayed: Type.Integer(), active: Type.Integer() },
    { description: 'Queue entries of every caller: how much work is ahead' },
  ),
  workers: Type.Optional(Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String({ description: 'host-pid-suffix: which process this is' }),
      host: Type.String(),
      pid: Type.Integer(),
      concurrency: Type.Integer(),
      startedAt: DateTime,
      lastHeartbeat: DateTime,
    }),
    { description: 'Live workers; only with the admin scope' },
  )),
  costs: Type.Array(
    Type.Object({
      owner: Nullable(Type.String({ description: '`key:<id>`, `guest:<ip>`, or null for jobs without an owner' })),
      currency: Type.String(),
      jobs: Type.Integer({ description: 'Priced jobs' }),
      estimated: Type.Number(),
      actual: Type.Number({ description: 'Of the jobs that ended' }),
    }),
    { description: "What priced jobs cost per key: the caller's own, or with the admin scope every key's" },
  ),
  budget: Type.Optional(
    Type.Object(
      {
        amount: Type.Number(),
        period: Type.Union([Type.Literal('day'), Type.Literal('month')]),
        currency: Type.String(),
        current: Type.String({ description: 'The UTC day (`2026-12-06`) or month (`2026-12`) the figures are of' }),
        spent: Type.Number({ description: 'Actual costs of the jobs that ended, estimates of those that have not' }),
        left: Type.Number(),
      },
      { description: "The caller's budget, when its key has one" },
    ),
  ),
});

export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, { ...ProblemSchema, description: 'Problem details' }]));

export const ProviderStatusSchema = Type.Object({
  name: Type.String(),
  default: Type.Boolean({ description: 'Used when a job names no provider and no routing rule applies' }),
  healthy: Type.Boolean(),
  detail: Type.String(),
  latencyMs: Type.Integer({ description: 'How long the check took' }),
});

const NullableDateTime = Nullable(DateTime);

/** One provider in GET /providers: its check, its circuit, what it has done lately and what waits for it. */
export const ProviderOverviewSchema = Type.Intersect([
  ProviderStatusSchema,
  Type.Object({
    circuit: Type.Object({
      state: Type.Enum(['closed', 'open', 'half_open'], { description: '`open`: no work is sent to it; `half_open`: one probe job may go' }),
      openedAt: NullableDateTime,
      retryAt: Nullable(Type.String({ format: 'date-time', description: 'While open: when one probe job may go through' })),
      consecutiveFailures: Type.Integer(),
      pausedUntil: Nullable(Type.String({ format: 'date-time', description: "While the upstream's Retry-After lasts: nothing is sent to it before then" })),
    }),
    fallback: Type.Array(Type.String(), { description: 'Where its jobs move when it is down (PROVIDER_FALLBACK)' }),
    recent: Type.Object(
      {
        calls: Type.Integer(),
        errorRate: Nullable(Type.Number({ description: 'Share of the calls that failed (retryable failures and timeouts)' })),
        p50LatencyMs: Nullable(Type.Integer({ description: 'Median duration of the calls that succeeded' })),
      },
      { description: 'Submits and polls of the last 5 minutes, by every worker' },
    ),
    queued: Type.Integer({ description: 'Jobs queued for it' }),
  }),
]);

export const ProviderParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9_-]+$' }) });

export const GetJobQuery = Type.Object(
  {
    wait: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 60, description: 'Seconds to wait for the job to finish before answering (long poll)' }),
    ),
  },
  { additionalProperties: false },
);

const streamEventBase = {
  id: Type.Integer({ description: 'The event id (monotonic); send the last one back as Last-Event-ID to resume' }),
  jobId: Type.String({ format: 'uuid' }),
  status: Type.Enum(JOB_STATUSES),
  stage: Nullable(Type.Enum(JOB_STAGES)),
  at: DateTime,
};

/** What each server-sent event's `data` holds; the SSE `event` field is its `type`. */
export const StatusStreamEvent = Type.Object(
  { type: Type.Literal('status'), ...streamEventBase, error: Nullable(JobErrorSchema) },
  { description: 'The job changed status (the first event of a job is its creation, queued); the last one is terminal' },
);
export const StageStreamEvent = Type.Object(
  { type: Type.Literal('stage'), ...streamEventBase },
  { description: 'A running job moved to another stage' },
);
export const ProgressStreamEvent = Type.Object(
  {
    type: Type.Literal('progress'),
    ...streamEventBase,
    progress: Nullable(Type.Number({ description: '0 to 1, when the provider tells' })),
    queuePosition: Nullable(Type.Integer({ description: "Place in the provider's queue, when it tells" })),
  },
  { description: "The provider reported progress or a queue position" },
);
export const ImageStreamEvent = Type.Object(
  {
    type: Type.Literal('image'),
    ...streamEventBase,
    image: Type.Object({
      index: Type.Integer(),
      width: Type.Integer(),
      height: Type.Integer(),
      contentType: Type.String(),
      url: Nullable(Type.String({ description: 'Signed link to the original (null if the image has since been replaced)' })),
      thumbnailUrl: Nullable(Type.String()),
      expiresAt: Nullable(DateTime),
    }),
  },
  { description: 'One image is stored; its links work at once' },
);
export const FailoverStreamEvent = Type.Object(
  {
    type: Type.Literal('failover'),
    ...streamEventBase,
    from: Type.String({ description: 'The provider the job left' }),
    to: Type.String({ description: 'The provider it moved to' }),
    reason: Type.String({ description: '`circuit_open`, or the code of the failure that made it move' }),
  },
  { description: "The job moved to the next provider of its chain; it is queued there" },
);
export const JobStreamEventSchema = Type.Union([StatusStreamEvent, StageStreamEvent, ProgressStreamEvent, ImageStreamEvent, FailoverStreamEvent]);

/** `text/event-stream`: `id: <event id>`, `event: <type>`, `data: <JSON of JobStreamEventSchema>`; `:` lines are heartbeats. */
export const EventStreamResponse = Type.String({
  description:
    'Server-sent events. Each has `id` (send the last one back as Last-Event-ID to resume), `event` (status, stage, progress, image or failover) and `data` (JSON). Lines starting with `:` are heartbeats.',
});

export const LastEventIdHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: '^\\d{1,15}$', description: 'Resume after this event id (what EventSource sends when it reconnects)' })),
});
