import { Type, type Static } from 'typebox';
import { FUSIONBRAIN_LIMITS } from '../../../protocols/fusionbrain/index.ts';

/** Fusion Brain's side, which the service used for every image. */
export const DEFAULT_SIDE = 1024;
export const DEFAULT_PAGE_SIZE = 10;
export const MAX_PAGE_SIZE = 100;
export const IMAGE_TYPES = ['original', 'thumbnail'] as const;
/** Plain hyphenated UUIDs only: the `uuid` format alone also lets `urn:uuid:…` through. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const NOT_BLANK_PATTERN = '\\S';

const side = (name: string) =>
  Type.Optional(Type.Integer({ minimum: 64, maximum: 2048, multipleOf: 8, description: `${name} in pixels: 64–2048, a multiple of 8 (default ${DEFAULT_SIDE}); a darkroom addition` }));

/** Unknown fields are ignored, as the service's ValidationPipe did. */
export const CreateBody = Type.Object({
  // A prompt of only spaces describes nothing: refused like an empty one.
  prompt: Type.String({ minLength: 1, maxLength: FUSIONBRAIN_LIMITS.maxQueryLength, pattern: NOT_BLANK_PATTERN, description: `1–${FUSIONBRAIN_LIMITS.maxQueryLength} characters (Fusion Brain’s limit)` }),
  style: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'A Kandinsky style (KANDINSKY, UHD, ANIME, DEFAULT) sends the job to Fusion Brain when that provider is configured; otherwise the default provider gets it',
    }),
  ),
  width: side('Width'),
  height: side('Height'),
});
export type CreateBody = Static<typeof CreateBody>;

export const Created = Type.Object({ id: Type.String({ format: 'uuid', description: 'The image id for /image/get' }) });

export const GetQuery = Type.Object({
  id: Type.String({ format: 'uuid', pattern: UUID_PATTERN }),
  type: Type.Optional(Type.Enum(IMAGE_TYPES, { default: 'original', description: 'The original, or its 128×128 WebP thumbnail' })),
});

export const Link = Type.Object({
  id: Type.String(),
  type: Type.Enum(IMAGE_TYPES),
  url: Type.String({ description: 'Signed link; works without credentials until it expires' }),
  expiresAt: Type.String({ format: 'date-time' }),
  expiresIn: Type.Integer({ description: 'Seconds the link stays valid (SIGNED_URL_TTL, default 3600)' }),
});

/** The service's statuses: created (queued), pending (generating), done, and error (which it never set). */
export const ImageStatus = Type.Enum(['created', 'pending', 'done', 'error']);

export const StillGenerating = Type.Object({
  id: Type.String(),
  status: ImageStatus,
  message: Type.String(),
});

export const ListQuery = Type.Object({
  page: Type.Integer({ minimum: 1, default: 1 }),
  pageSize: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
});

export const ListResponse = Type.Array(
  Type.Object({
    id: Type.String(),
    status: ImageStatus,
    thumbnailUrl: Type.Union([Type.String(), Type.Null()], { description: 'null until the image is done' }),
  }),
  { description: 'Newest first' },
);

const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    message: Type.Union([Type.String(), Type.Array(Type.String())], { description: 'A list for a request that failed validation' }),
    error: Type.String({ description: 'Reason phrase' }),
    status: Type.Optional(ImageStatus),
  },
  { description: 'NestJS-style error' },
);

export const errorResponses = (...statuses: number[]) => Object.fromEntries(statuses.map((status) => [status, ErrorSchema]));
