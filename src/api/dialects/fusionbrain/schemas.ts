import { Type } from 'typebox';

export const ErrorSchema = Type.Object(
  {
    timestamp: Type.String({ format: 'date-time' }),
    status: Type.Integer(),
    error: Type.String({ description: 'Reason phrase' }),
    message: Type.String(),
    path: Type.String(),
  },
  { description: "Fusion Brain's error shape" },
);

export const errorResponses = (...statuses: number[]) => Object.fromEntries(statuses.map((status) => [status, ErrorSchema]));

export const PipelineSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  nameEn: Type.String(),
  description: Type.String(),
  descriptionEn: Type.String(),
  tags: Type.Array(Type.Object({ name: Type.String(), name_en: Type.String() })),
  version: Type.Number(),
  status: Type.String(),
  type: Type.String(),
  createdDate: Type.String({ format: 'date-time' }),
  lastModified: Type.String({ format: 'date-time' }),
});

export const PipelinesQuery = Type.Object({ type: Type.Optional(Type.String({ description: 'Only pipelines of this type' })) });

export const PipelineParams = Type.Object({ id: Type.String() });

export const AvailabilitySchema = Type.Object({
  status: Type.String({ description: 'As the SDK reads it' }),
  pipeline_status: Type.String({ description: 'As the docs spell it' }),
});

export const RunResponse = Type.Object({
  uuid: Type.String({ format: 'uuid' }),
  status: Type.Literal('INITIAL'),
  status_time: Type.Integer({ description: 'When the generation was accepted (epoch milliseconds)' }),
});

export const StatusParams = Type.Object({ uuid: Type.String() });

export const StatusResponse = Type.Object({
  uuid: Type.String({ format: 'uuid' }),
  status: Type.Union([Type.Literal('INITIAL'), Type.Literal('PROCESSING'), Type.Literal('DONE'), Type.Literal('FAIL')]),
  errorDescription: Type.Optional(Type.String()),
  result: Type.Optional(
    Type.Object({
      files: Type.Array(Type.String(), { description: 'Base64 images (one)' }),
      censored: Type.Boolean({ description: 'Moderation blocked the image; files is then empty' }),
    }),
  ),
  generationTime: Type.Optional(Type.Integer({ description: 'Seconds from acceptance to completion' })),
});
