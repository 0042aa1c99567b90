import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { KEY_SCOPES, type ApiKey, type KeyStore } from '../../../core/ports/stores.ts';
import { MAX_BATCH_SIZE } from '../../../core/job-service.ts';
import { notFound } from '../../../core/errors.ts';
import { logComponent } from '../../http/log-component.ts';
import { JobIdParams, problemResponses } from '../../../protocols/native/schemas.ts';

const DateTime = Type.String({ format: 'date-time' });

export const NewKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', description: 'What the key is for, shown in lists' }),
    scopes: Type.Optional(Type.Array(Type.Enum([...KEY_SCOPES]), { maxItems: KEY_SCOPES.length, description: '`admin`: keys, queue-wide stats, the admin UI' })),
    maxActiveJobs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Queued plus running jobs at once; default MAX_ACTIVE_JOBS_PER_KEY' })),
    maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_BATCH_SIZE, description: 'Jobs per batch; default MAX_BATCH_SIZE, never above it' })),
  },
  { additionalProperties: false },
);

export const KeySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
  scopes: Type.Array(Type.String()),
  maxActiveJobs: Type.Union([Type.Integer(), Type.Null()]),
  maxBatchSize: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: DateTime,
  revokedAt: Type.Union([DateTime, Type.Null()]),
});

export const CreatedKeySchema = Type.Intersect([
  KeySchema,
  Type.Object({ key: Type.String({ description: 'The secret: shown this once, never again' }) }),
]);

export function presentKey(key: ApiKey): Static<typeof KeySchema> {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    maxActiveJobs: key.maxActiveJobs,
    maxBatchSize: key.maxBatchSize,
    createdAt: key.createdAt.toISOString(),
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}

const tags = ['keys'];

/** API key management under /api/v1/keys: admin scope only. */
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
