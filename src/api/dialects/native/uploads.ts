import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyError, FastifyRequest } from 'fastify';
import { badRequest, DarkroomError } from '../../../core/errors.ts';
import type { JobService } from '../../../core/job-service.ts';
import { problemResponses, UploadIdParams, UploadSchema } from '../../../protocols/native/schemas.ts';

export interface UploadRoutesOptions {
  jobs: JobService;
}

const ACCEPTED = ['image/png', 'image/jpeg', 'image/webp'];
const tags = ['uploads'];

const unsupported = (type: string) =>
  new DarkroomError(415, 'unsupported_media_type', `Send the image as multipart/form-data (a part named file) or as the raw body with Content-Type ${ACCEPTED.join(', ')}; got ${type}`);

const mediaType = (request: FastifyRequest) => (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

/** The image of a multipart upload: the part named `file`, with the type its client declared (when it declared an image type). */
async function readFilePart(request: FastifyRequest, maxBytes: number): Promise<{ bytes: Buffer; declared?: string }> {
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'file' || part.fieldname !== 'file') {
        if (part.type === 'file') await part.toBuffer();
        continue;
      }
      const bytes = await part.toBuffer();
      // A browser or curl sends application/octet-stream for a file it cannot name; only an image type is a claim.
      return { bytes, declared: part.mimetype.startsWith('image/') ? part.mimetype.toLowerCase() : undefined };
    }
  } catch (error) {
    const { code } = error as FastifyError;
    if (code === 'FST_REQ_FILE_TOO_LARGE') {
      throw new DarkroomError(413, 'payload_too_large', `The file is larger than ${maxBytes} bytes (UPLOAD_MAX_BYTES)`, [{ field: 'file', message: `must be at most ${maxBytes} bytes` }]);
    }
    if (code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      throw badRequest('The form has too many parts: send one part named file');
    }
    throw badRequest(`The multipart body is malformed: ${error instanceof Error ? error.message : 'unreadable'}`);
  }
  throw badRequest('The form has no part named file', [{ field: 'file', message: 'is required: the image, as a file part' }]);
}

/** Input images uploaded ahead of the jobs that use them (`images: [{role, uploadId}]`). */
export const uploadRoutes: FastifyPluginAsyncTypebox<UploadRoutesOptions> = async (app, { jobs }) => {
  const maxBytes = jobs.inputLimits.maxBytes;
  await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, parts: 4, fields: 3, fieldSize: 1024 } });
  // Every image type reaches the handler, so one that is not accepted gets a 415 that says which are.
  app.addContentTypeParser(/^image\//, { parseAs: 'buffer', bodyLimit: maxBytes }, (_request, body, done) => done(null, body));

  app.post(
    '/uploads',
    {
      config: { idempotent: true },
      // The file and a multipart envelope around it.
      bodyLimit: maxBytes + 65_536,
      schema: {
        tags,
        summary: 'Upload an input image (multipart part `file`, or the raw body as image/png, image/jpeg or image/webp)',
        consumes: ['multipart/form-data', ...ACCEPTED],
        response: { 201: UploadSchema, ...problemResponses(400, 413, 415) },
      },
    },
    async (request, reply) => {
      const type = mediaType(request);
      let image: { bytes: Buffer; declared?: string };
      if (request.isMultipart()) image = await readFilePart(request, maxBytes);
      else if (ACCEPTED.includes(type) && Buffer.isBuffer(request.body)) image = { bytes: request.body, declared: type };
      else throw unsupported(type || 'no Content-Type');
      const upload = await jobs.for(request.caller).upload(image.bytes, image.declared);
      return reply.code(201).send({ ...upload, expiresAt: upload.expiresAt.toISOString() });
    },
  );

  app.get(
    '/uploads/:id',
    {
      schema: {
        tags,
        summary: 'An upload, with a signed link to its image',
        params: UploadIdParams,
        response: { 200: UploadSchema, ...problemResponses(400, 404) },
      },
    },
    async (request) => {
      const upload = await jobs.for(request.caller).getUpload(request.params.id);
      return { ...upload, expiresAt: upload.expiresAt.toISOString() };
    },
  );
};
