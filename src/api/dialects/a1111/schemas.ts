import { Type, type Static, type TSchema } from 'typebox';
import { MAX_INPUTS } from '../../../core/request.ts';

/** Every field of the webui's request models is Optional: null means "the default", like absent. */
const nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

/** The most images one request makes (batch_size × n_iter): darkroom's limit of a job. */
export const MAX_IMAGES = 10;
/** A base64 picture: at most 40 MB of text (the body limit still applies). */
const Picture = Type.String({ minLength: 1, maxLength: 40_000_000, description: 'Base64 or a data URI' });

const generationFields = {
  prompt: nullable(Type.String({ maxLength: 4000, description: 'Empty makes the picture of nothing in particular, as in the webui' })),
  negative_prompt: nullable(Type.String({ maxLength: 4000 })),
  styles: nullable(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 20, description: 'Accepted; darkroom has no saved styles to apply' })),
  seed: nullable(Type.Integer({ minimum: -1, maximum: 4294967295, description: '-1 (the default): random' })),
  subseed: nullable(Type.Integer({ minimum: -1, maximum: 4294967295 })),
  subseed_strength: nullable(Type.Number({ minimum: 0, maximum: 1 })),
  sampler_name: nullable(Type.String({ minLength: 1, maxLength: 64, description: 'See GET /sdapi/v1/samplers; becomes darkroom’s `scheduler`' })),
  sampler_index: nullable(Type.String({ minLength: 1, maxLength: 64, description: 'The old spelling of sampler_name' })),
  scheduler: nullable(Type.String({ minLength: 1, maxLength: 64, description: 'See GET /sdapi/v1/schedulers' })),
  batch_size: nullable(Type.Integer({ minimum: 1, maximum: MAX_IMAGES })),
  n_iter: nullable(Type.Integer({ minimum: 1, maximum: MAX_IMAGES, description: `batch_size × n_iter images, at most ${MAX_IMAGES}` })),
  steps: nullable(Type.Integer({ minimum: 1, maximum: 150 })),
  cfg_scale: nullable(Type.Number({ minimum: 1, maximum: 30 })),
  width: nullable(Type.Integer({ minimum: 64, maximum: 2048, description: '64–2048; rounded down to a multiple of 8, as the webui does' })),
  height: nullable(Type.Integer({ minimum: 64, maximum: 2048, description: '64–2048; rounded down to a multiple of 8, as the webui does' })),
  restore_faces: nullable(Type.Boolean()),
  tiling: nullable(Type.Boolean()),
  denoising_strength: nullable(Type.Number({ minimum: 0, maximum: 1 })),
  override_settings: nullable(
    Type.Object(
      { sd_model_checkpoint: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'Becomes the job’s model' })) },
      { maxProperties: 100, description: 'sd_model_checkpoint picks the model; other settings are accepted and not applied' },
    ),
  ),
  override_settings_restore_afterwards: nullable(Type.Boolean()),
  force_task_id: nullable(
    Type.String({ minLength: 1, maxLength: 200, description: 'The id POST /internal/progress knows this request by' }),
  ),
  send_images: nullable(Type.Boolean()),
  save_images: nullable(Type.Boolean()),
  script_name: nullable(Type.String({ maxLength: 200 })),
  script_args: nullable(Type.Array(Type.Unknown(), { maxItems: 100 })),
  alwayson_scripts: nullable(Type.Object({}, { maxProperties: 50 })),
};

/** POST /sdapi/v1/txt2img. Fields the webui has and darkroom does not use are accepted and ignored, as pydantic ignores unknown ones. */
export const Txt2ImgBody = Type.Object(
  {
    ...generationFields,
    enable_hr: nullable(Type.Boolean({ description: 'Accepted; darkroom runs no hires pass' })),
  },
  { additionalProperties: true },
);
export type Txt2ImgBody = Static<typeof Txt2ImgBody>;

export const Img2ImgBody = Type.Object(
  {
    ...generationFields,
    init_images: nullable(Type.Array(Picture, { minItems: 1, maxItems: MAX_INPUTS, description: 'The first is the picture to start from' })),
    mask: nullable(Type.String({ maxLength: 40_000_000, description: 'Base64 mask: white is repainted, black kept' })),
    resize_mode: nullable(Type.Integer({ minimum: 0, maximum: 3 })),
    mask_blur: nullable(Type.Integer({ minimum: 0, maximum: 64 })),
    inpainting_fill: nullable(Type.Integer({ minimum: 0, maximum: 3 })),
    inpaint_full_res: nullable(Type.Union([Type.Boolean(), Type.Integer({ minimum: 0, maximum: 1 })])),
    inpaint_full_res_padding: nullable(Type.Integer({ minimum: 0, maximum: 256 })),
    inpainting_mask_invert: nullable(Type.Integer({ minimum: 0, maximum: 1, description: '1 repaints the mask’s black instead of its white' })),
    include_init_images: nullable(Type.Boolean()),
  },
  { additionalProperties: true },
);
export type Img2ImgBody = Static<typeof Img2ImgBody>;

export const GenerationResponse = Type.Object({
  images: Type.Array(Type.String(), { description: 'Base64 PNGs (whatever the provider made), batch_size × n_iter of them' }),
  parameters: Type.Object({}, { additionalProperties: true, description: 'The request as received' }),
  info: Type.String({ description: 'JSON text: seed, all_seeds, infotexts, …' }),
});

export const ProgressQuery = Type.Object({
  skip_current_image: Type.Optional(Type.Boolean()),
});

export const ProgressResponse = Type.Object({
  progress: Type.Number(),
  eta_relative: Type.Number(),
  state: Type.Object({
    skipped: Type.Boolean(),
    interrupted: Type.Boolean(),
    job: Type.String(),
    job_count: Type.Integer(),
    job_timestamp: Type.String(),
    job_no: Type.Integer(),
    sampling_step: Type.Integer(),
    sampling_steps: Type.Integer(),
  }),
  current_image: Type.Union([Type.String(), Type.Null()]),
  textinfo: Type.Union([Type.String(), Type.Null()]),
});

export const TaskProgressBody = Type.Object(
  {
    id_task: Type.String({ minLength: 1, maxLength: 200 }),
    id_live_preview: Type.Optional(Type.Integer({ minimum: -1 })),
    live_preview: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

export const TaskProgressResponse = Type.Object({
  active: Type.Boolean(),
  queued: Type.Boolean(),
  completed: Type.Boolean(),
  progress: Type.Union([Type.Number(), Type.Null()]),
  eta: Type.Union([Type.Number(), Type.Null()]),
  live_preview: Type.Union([Type.String(), Type.Null()]),
  id_live_preview: Type.Union([Type.Integer(), Type.Null()]),
  textinfo: Type.Union([Type.String(), Type.Null()]),
});

/** POST /sdapi/v1/options: settings by name. */
export const OptionsBody = Type.Record(Type.String({ maxLength: 200 }), Type.Unknown(), { maxProperties: 500 });

const ErrorBody = Type.Object(
  { error: Type.String(), detail: Type.String(), body: Type.String(), errors: Type.String() },
  { description: 'The webui’s error middleware' },
);
const ValidationBody = Type.Object(
  { detail: Type.Array(Type.Object({ loc: Type.Array(Type.Union([Type.String(), Type.Integer()])), msg: Type.String(), type: Type.String() })) },
  { description: 'FastAPI’s schema failure' },
);

export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, status === 422 ? Type.Union([ValidationBody, ErrorBody]) : ErrorBody]));
