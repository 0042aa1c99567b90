import { Type, type Static, type TSchema } from 'typebox';

/** Sides when the request leaves them out, and steps: what darkroom sends for an SDXL-class model. */
export const DEFAULTS = { width: 1024, height: 1024, steps: 30 } as const;
export const MAX_PROMPTS = 10;

/** `Optional[X] = None` in the service's models: absent and null both mean "not given". */
function nullable<T extends TSchema>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [(schema as unknown as { type: string }).type, 'null'] });
}

const side = (name: string, fallback: number) =>
  Type.Optional(nullable(Type.Integer({ minimum: 512, maximum: 2048, multipleOf: 8, description: `${name} in pixels: 512–2048, a multiple of 8 (default ${fallback})` })));

// A prompt of only spaces describes nothing: refused like an empty one.
const Prompt = Type.String({ minLength: 1, maxLength: 2000, pattern: '\\S', description: '1–2000 characters' });

/** The options a single task and every prompt of a batch share. Unknown fields are ignored, as the service's models do. */
const options = {
  width: side('Width', DEFAULTS.width),
  height: side('Height', DEFAULTS.height),
  steps: Type.Optional(nullable(Type.Integer({ minimum: 1, maximum: 150, description: `Sampling steps (default ${DEFAULTS.steps})` }))),
  cfg_scale: Type.Optional(nullable(Type.Number({ minimum: 1, maximum: 20, description: 'Guidance scale; absent: the provider’s default' }))),
  seed: Type.Optional(nullable(Type.Integer({ minimum: -1, maximum: 4294967295, description: 'Absent, null or -1: random' }))),
  sampler_name: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 64, description: 'A1111 spelling (`Euler a`, `DPM++ 2M`); becomes darkroom’s `scheduler`' }))),
  scheduler: Type.Optional(
    nullable(Type.String({ minLength: 1, maxLength: 64, description: 'ComfyUI noise schedule: `karras` is added to the sampler name; others are recorded, not sent' })),
  ),
  negative_prompt: Type.Optional(nullable(Type.String({ maxLength: 4000 }))),
  use_enhanced_prompts: Type.Optional(
    Type.Boolean({ default: true, description: 'Accepted for compatibility and recorded with the task; darkroom sends the prompt as written' }),
  ),
};

export const GenerateBody = Type.Object({ prompt: Prompt, ...options });
export type GenerateBody = Static<typeof GenerateBody>;

export const BatchBody = Type.Object({
  prompts: Type.Array(Prompt, { minItems: 1, maxItems: MAX_PROMPTS, description: `1–${MAX_PROMPTS} prompts, one image each` }),
  ...options,
});
export type BatchBody = Static<typeof BatchBody>;
export type TaskOptions = Omit<GenerateBody, 'prompt'>;

export const TaskParams = Type.Object({ task_id: Type.String({ maxLength: 200, description: 'As /generate, /generate/batch or /test answered it' }) });

export const TestQuery = Type.Object({
  provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Which provider to check (default: the default provider)' })),
});

export const TaskAccepted = Type.Object({
  task_id: Type.String(),
  status: Type.Literal('pending'),
  message: Type.String(),
});

export const TaskCancelled = Type.Object({
  task_id: Type.String(),
  status: Type.Literal('cancelled'),
  message: Type.String(),
});

const ImageResult = Type.Object({
  success: Type.Literal(true),
  image_url: Type.String({ description: 'Signed link to the original; expires after SIGNED_URL_TTL seconds' }),
  prompt: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  steps: Type.Union([Type.Integer(), Type.Null()]),
  seed: Type.Union([Type.Integer(), Type.Null()]),
});

const BatchResult = Type.Object({
  success: Type.Boolean({ description: 'false only in a cancelled batch' }),
  images: Type.Array(
    Type.Object({ prompt: Type.String(), image_url: Type.String(), width: Type.Integer(), height: Type.Integer(), seed: Type.Union([Type.Integer(), Type.Null()]) }),
    { description: 'The prompts that succeeded, in request order' },
  ),
  errors: Type.Optional(Type.Array(Type.Object({ prompt: Type.String(), error: Type.String() }), { description: 'The prompts that did not succeed' })),
});

const ProgressResult = Type.Object({
  progress: Type.Integer({ minimum: 0, maximum: 100, description: 'Percent done' }),
  completed: Type.Optional(Type.Integer({ description: 'Batches: prompts finished' })),
  total: Type.Optional(Type.Integer({ description: 'Batches: prompts in all' })),
});

const CheckResult = Type.Object({
  success: Type.Boolean(),
  provider: Type.String(),
  healthy: Type.Boolean(),
  detail: Type.String(),
  latency_ms: Type.Integer(),
});

export const TASK_STATUSES = ['pending', 'started', 'generating', 'success', 'failed', 'cancelled'] as const;

export const TaskStatusResponse = Type.Object({
  task_id: Type.String(),
  status: Type.Enum(TASK_STATUSES),
  result: Type.Union([ImageResult, BatchResult, CheckResult, ProgressResult, Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});

export type TaskBody = Static<typeof TaskStatusResponse>;
export type TaskStatus = TaskBody['status'];

export const QueueStatsResponse = Type.Object({
  active_tasks: Type.Integer({ description: 'Running now' }),
  reserved_tasks: Type.Integer({ description: 'Queued and due: waiting for a free worker slot' }),
  scheduled_tasks: Type.Integer({ description: 'Queued for a later attempt (retry backoff)' }),
  workers: Type.Array(Type.String(), { description: 'Live workers: their ids with the admin scope, otherwise worker-1…n' }),
});

const ValidationItem = Type.Object({
  type: Type.String({ description: 'pydantic’s error type: missing, int_type, string_too_long, multiple_of, json_invalid …' }),
  loc: Type.Array(Type.Union([Type.String(), Type.Integer()]), { description: 'Where: body, query or path, then the field' }),
  msg: Type.String(),
  input: Type.Optional(Type.Unknown()),
  ctx: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

const ErrorDetail = Type.Object({ detail: Type.String() }, { description: 'FastAPI-style error' });
const Unprocessable = Type.Object(
  { detail: Type.Union([Type.Array(ValidationItem), Type.String()]) },
  { description: 'FastAPI’s validation error (HTTPValidationError): pydantic’s list of problems; a sentence for a reused Idempotency-Key' },
);

export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, status === 422 ? Unprocessable : ErrorDetail]));
