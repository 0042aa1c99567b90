import type { FastifyPluginAsync } from 'fastify';
import type { LinkSigner, ObjectStorage } from '../../core/ports/storage.ts';
import { problem, sendProblem } from './problem.ts';

export interface FilesRoutesOptions {
  storage: ObjectStorage;
  signer: LinkSigner;
  /** When retention removed the object at `key`, if it did: its link then answers 410 instead of 404. */
  removedAt?: (key: string) => Promise<Date | null>;
}

/** Serves stored objects behind signed, expiring links (filesystem storage). */
export const filesRoutes: FastifyPluginAsync<FilesRoutesOptions> = async (app, { storage, signer, removedAt }) => {
  app.get<{ Params: { '*': string }; Querystring: { expires?: string; signature?: string } }>(
    '/files/*',
    { schema: { hide: true } },
    async (request, reply) => {
      const key = request.params['*'];
      const verdict = signer.verify(key, request.query.expires, request.query.signature);
      if (verdict !== 'valid') {
        const detail = verdict === 'expired' ? 'This link has expired; ask the API for a new one' : 'This link is not valid';
        return sendProblem(reply, problem(403, verdict === 'expired' ? 'link_expired' : 'link_invalid', detail));
      }
      const object = await storage.get(key);
      if (!object) {
        const removed = await removedAt?.(key);
        if (removed) return sendProblem(reply, problem(410, 'images_expired', `This image was removed at ${removed.toISOString()} (RETAIN_IMAGES)`));
        return sendProblem(reply, problem(404, 'not_found', 'The object no longer exists'));
      }
      const maxAge = Math.max(0, Number(request.query.expires) - Math.floor(Date.now() / 1000));
      return reply
        .type(object.contentType)
        .header('content-length', object.size)
        .header('cache-control', `private, max-age=${maxAge}, immutable`)
        .header('x-content-type-options', 'nosniff')
        .send(object.body);
    },
  );
};
