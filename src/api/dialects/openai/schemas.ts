import { Type, type TSchema } from 'typebox';
import { BACKGROUNDS, MODERATIONS, OUTPUT_FORMATS, QUALITIES, RESPONSE_FORMATS, STYLES } from '../../../protocols/openai/index.ts';

const nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));
const choice = (values: readonly string[], description: string) => nullable(Type.Union(values.map((value) => Type.Literal(value)), { description }));

/**
 * POST /v1/images/generations as the `openai` package sends it. Only types are checked here; the
 * values (sizes, counts and prompt lengths of each model) are checked by the protocol's
 * readImageParams, which words its refusals as OpenAI does and names the parameter.
 */
export const GenerateBody = Type.Object(
  {
    prompt: Type.Unknown({ description: 'What to draw (up to 32000 characters for the GPT image models, 4000 for dall-e-3 and other models, 1000 for dall-e-2)' }),
    model: nullable(Type.String({ description: 'A model a configured provider claims runs there; any other runs on the default provider' })),
    n: nullable(Type.Unknown({ description: 'Images to make: 1–10 (dall-e-3: 1)' })),
    size: nullable(Type.Unknown({ description: "WIDTHxHEIGHT among the model's sizes, or auto" })),
    quality: choice(QUALITIES, 'Passed on to the job as asked; the mock ignores it'),
    style: choice(STYLES, 'dall-e-3 only'),
    response_format: choice(RESPONSE_FORMATS, 'url: darkroom signed links; b64_json: the bytes. Default: b64_json for the GPT image models, url otherwise'),
    output_format: choice(OUTPUT_FORMATS, 'The stored original converted to this format in the answer'),
    output_compression: nullable(Type.Unknown({ description: '0–100, for jpeg and webp' })),
    background: choice(BACKGROUNDS, 'Reported back as asked'),
    moderation: choice(MODERATIONS, 'Accepted'),
    user: nullable(Type.String({ description: 'Kept with the job' })),
    stream: nullable(Type.Boolean({ description: 'Server-sent events: image_generation.completed per image' })),
    partial_images: nullable(Type.Unknown({ description: '0–3; partial images are sent only by providers that report previews' })),
  },
  { additionalProperties: true },
);

export const ImageSchema = Type.Object({
  b64_json: Type.Optional(Type.String()),
  url: Type.Optional(Type.String()),
  revised_prompt: Type.Optional(Type.String()),
});

export const ImagesResponseSchema = Type.Object({
  created: Type.Integer({ description: 'Seconds since the epoch' }),
  data: Type.Array(ImageSchema),
  background: Type.Optional(Type.String()),
  output_format: Type.Optional(Type.String()),
  quality: Type.Optional(Type.String()),
  size: Type.Optional(Type.String()),
  usage: Type.Optional(
    Type.Object(
      {
        input_tokens: Type.Integer(),
        input_tokens_details: Type.Object({ image_tokens: Type.Integer(), text_tokens: Type.Integer() }),
        output_tokens: Type.Integer(),
        total_tokens: Type.Integer(),
      },
      { description: "The tokens the job's provider counted; only when it counted them (OpenAI's GPT image models do)" },
    ),
  ),
});

export const ErrorSchema = Type.Object(
  {
    error: Type.Object(
      {
        message: Type.String(),
        type: Type.String(),
        param: Type.Union([Type.String(), Type.Null()]),
        code: Type.Union([Type.String(), Type.Null()]),
        job_id: Type.Optional(Type.String({ description: 'On a 504: the job still running; GET /api/v1/jobs/{job_id} with the same key reads it' })),
      },
      { additionalProperties: true },
    ),
  },
  { description: "OpenAI's error shape" },
);

export const errorResponses = (...statuses: number[]) => Object.fromEntries(statuses.map((status) => [status, ErrorSchema]));

export const ModelSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer(),
  owned_by: Type.String({ description: 'The provider that runs it' }),
});

export const ModelListSchema = Type.Object({ object: Type.Literal('list'), data: Type.Array(ModelSchema) });

export const ModelParams = Type.Object({ model: Type.String({ minLength: 1, maxLength: 500 }) });
