import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { JobService } from '../../../core/job-service.ts';
import { DialectError } from '../../http/errors.ts';
import { failureOf, STATUS } from './present.ts';
import { CreateBody, Created, DEFAULT_SIDE, errorResponses, GetQuery, Link, ListQuery, ListResponse, StillGenerating } from './schemas.ts';

export interface ImagesRoutesOptions {
  jobs: JobService;
}

const DIALECT = 'images';
const tags = ['images'];

/**
 * The Fusion-service origin's own API (NestJS) under /image: create an image from a prompt and a
 * style, fetch a signed link to its original or thumbnail, list one's images page by page. An image
 * id is the darkroom job id. Errors are NestJS's `{statusCode, message, error}`.
 */
export const imagesRoutes: FastifyPluginAsyncTypebox<ImagesRoutesOptions> = async (app, { jobs: service }) => {

  app.post(
    '/create',
    {
      config: { group: 'generate', idempotent: true },
      schema: {
        tags,
        summary: 'Create an image from a prompt and a style',
        description: `Answers 201 with {id}. Sides default to ${DEFAULT_SIDE}×${DEFAULT_SIDE}. Fetch the result with GET /image/get.`,
        body: CreateBody,
        response: { 201: Created, ...errorResponses(400, 401, 413, 415, 422, 429) },
      },
    },
    async (request, reply) => {
      const { prompt, style, width, height } = request.body;
      const job = await service.for(request.caller).create(
        { prompt, width: width ?? DEFAULT_SIDE, height: height ?? DEFAULT_SIDE, ...(style === undefined ? {} : { style }) },
        { dialect: DIALECT },
      );
      request.log.info({ imageId: job.id, provider: job.provider }, 'image created');
      return reply.code(201).send({ id: job.id });
    },
  );

  app.get(
    '/get',
    {
      schema: {
        tags,
        summary: 'A signed link to an image’s original or thumbnail; 202 while it is still being generated',
        description:
          '200 {id, type, url, expiresAt, expiresIn} once done; 202 {id, status, message} (with Retry-After) while created or pending; ' +
          '422 with the reason when the generation failed; 404 for an id that is not one of the caller’s images.',
        querystring: GetQuery,
        response: { 200: Link, 202: StillGenerating, ...errorResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) => {
      const jobs = service.for(request.caller);
      const id = request.query.id.toLowerCase();
      const type = request.query.type ?? 'original';
      const [job] = await jobs.getMany([id]);
      if (!job || job.dialect !== DIALECT) throw new DialectError(404, `Image ${id} not found`);
      const status = STATUS[job.status];
      if (status === 'created' || status === 'pending') {
        const message = status === 'created' ? 'The image is queued; ask again shortly' : 'The image is being generated; ask again shortly';
        return reply.code(202).header('retry-after', '1').send({ id, status, message });
      }
      if (status === 'error') throw new DialectError(422, `Image ${id} could not be generated: ${failureOf(job)}`, { extra: { status } });
      const link = await jobs.imageLink(id, 0, type);
      return {
        id,
        type,
        url: link.url,
        expiresAt: link.expiresAt.toISOString(),
        expiresIn: Math.max(0, Math.round((link.expiresAt.getTime() - Date.now()) / 1000)),
      };
    },
  );

  app.get(
    '/get-all',
    {
      schema: {
        tags,
        summary: 'The caller’s images, newest first, a page at a time',
        description: 'Each with a signed link to its thumbnail once done (null before, and for one that failed).',
        querystring: ListQuery,
        response: { 200: ListResponse, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const page = await service.for(request.caller).page({ dialect: DIALECT, page: request.query.page, pageSize: request.query.pageSize });
      return page.map((job) => ({
        id: job.id,
        status: STATUS[job.status],
        thumbnailUrl: job.status === 'succeeded' ? (job.images[0]?.thumbnailUrl ?? null) : null,
      }));
    },
  );
};
