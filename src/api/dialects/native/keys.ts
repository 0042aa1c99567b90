import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { KeyStore } from '../../../core/ports/stores.ts';
import { badRequest, notFound } from '../../../core/errors.ts';
import { unstorableText } from '../../../core/storable.ts';
import { logComponent } from '../../http/log-component.ts';
import { JobIdParams, problemResponses } from '../../../protocols/native/schemas.ts';
import { CreatedKeySchema, KeySchema, NewKeyBody } from './schemas.ts';
import { presentKey } from './present.ts';

const tags = ['keys'];

export const keyRoutes: FastifyPluginAsyncTypebox<{ keys: KeyStore }> = async (app, { keys }) => {
  logComponent(app, 'keys-api');
  app.post(
    '/keys',
    {
      config: { admin: true },
      schema: {
        tags,
        summary: 'Create an API key (the secret is in this answer only)',
        body: NewKeyBody,
        response: { 201: CreatedKeySchema, ...problemResponses(400, 401, 403, 413, 415) },
      },
    },
    async (request, reply) => {
      const refusal = unstorableText(request.body.name);
      if (refusal) throw badRequest(`name ${refusal}`, [{ field: 'name', message: refusal }]);
      const { key, secret } = await keys.create({ ...request.body, name: request.body.name.trim() });
      request.log.info({ keyId: key.id, scopes: key.scopes }, 'api key created');
      return reply.code(201).send({ ...presentKey(key), key: secret });
    },
  );

  app.get(
    '/keys',
    {
      config: { admin: true },
      schema: {
        tags,
        summary: 'Every API key, revoked ones included (never the secrets)',
        response: { 200: Type.Object({ items: Type.Array(KeySchema) }), ...problemResponses(401, 403) },
      },
    },
    async () => ({ items: (await keys.list()).map(presentKey) }),
  );

  app.delete(
    '/keys/:id',
    {
      config: { admin: true },
      schema: {
        tags,
        summary: 'Revoke an API key: it stops working at once',
        params: JobIdParams,
        response: { 204: Type.Null({ description: 'Revoked (or already revoked)' }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const revoked = await keys.revoke(request.params.id);
      if (!revoked) throw notFound('API key', request.params.id);
      request.log.info({ keyId: revoked.id }, 'api key revoked');
      return reply.code(204).send(null);
    },
  );
};
