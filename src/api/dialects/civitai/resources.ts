import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { ResourceStore } from '../../../core/ports/stores.ts';
import { AIR_PATTERN, canonicalAir, isRecord, parseAir } from '../../../protocols/civitai/orchestration.ts';
import { CivitaiProblem, type FieldErrors } from './errors.ts';
import { addError, collectErrors, collectUnstorable, compile, queryInteger, queryValue, requireBody, throwIfErrors } from './validation.ts';

export interface CivitaiResourceRoutesOptions {
  resources: ResourceStore;
}

const nullableString = (maxLength = 500) => Type.Optional(Type.String({ maxLength, nullable: true }));
const nullableDate = () => Type.Optional(Type.String({ format: 'date-time', nullable: true }));

/** ResourceInfo fields (v2 spec), every one optional: the shape of a PATCH. */
const resourceFields = {
  air: Type.Optional(Type.String({ pattern: AIR_PATTERN, maxLength: 500 })),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  hashes: Type.Optional(Type.Record(Type.String({ maxLength: 50 }), Type.String({ maxLength: 200 }), { maxProperties: 20 })),
  downloadUrls: Type.Optional(Type.Array(Type.String({ format: 'uri', maxLength: 2000 }), { maxItems: 20 })),
  resourceName: nullableString(),
  versionName: nullableString(),
  modelName: nullableString(),
  invalidateAt: nullableDate(),
  earlyAccessEndsAt: nullableDate(),
  publishedAt: nullableDate(),
  checkPermission: Type.Optional(Type.Boolean()),
  canGenerate: Type.Optional(Type.Boolean()),
  requiresAuthorization: Type.Optional(Type.Boolean({ nullable: true })),
  hasMatureContentRestriction: Type.Optional(Type.Boolean()),
  hasNSFWContentRestriction: Type.Optional(Type.Boolean()),
  isFeatured: Type.Optional(Type.Boolean({ nullable: true })),
  freeTrialLimit: Type.Optional(Type.Integer({ minimum: 0, nullable: true })),
  popularityRank: Type.Optional(Type.Number({ minimum: 0, maximum: 1, nullable: true })),
  fileFormat: Type.Optional(Type.String({ enum: ['unknown', 'safeTensor', 'pickleTensor', 'diffusers', 'coreML', 'onnx'] })),
};

// Fields beyond the spec are kept: real answers carry some (`modelName`) that the spec does not list.
const validatePatch = compile(Type.Object(resourceFields));
/** A whole ResourceInfo: the spec's required fields present. */
const validateResource = compile(Type.Object(resourceFields, { required: ['air', 'size', 'hashes', 'downloadUrls'] }));

/**
 * The paths of one resource. An AIR always holds a `:` (raw or URL-encoded), and only a segment that
 * does is an AIR: `/v2/resources/health` stays RunPod's health of an endpoint named `resources`.
 * The second form takes an AIR raw with its `/` as typed.
 */
const RESOURCE_PATHS = ['/v2/resources/:air(^.*(?::|%3[Aa]).*$)', '/v2/resources/:air(^.*(?::|%3[Aa]).*$)/*'];

/** The AIR of a resource path, raw or URL-encoded, canonicalised: every spelling of one AIR names one resource. */
function pathAir(request: FastifyRequest): string {
  const params = isRecord(request.params) ? request.params : {};
  const first = typeof params.air === 'string' ? params.air : '';
  const raw = typeof params['*'] === 'string' ? `${first}/${params['*']}` : first;
  if (!parseAir(raw)) throw new CivitaiProblem(400, `'${raw}' is not a valid AIR.`, { air: [`'${raw}' is not a valid AIR`] });
  return canonicalAir(raw);
}

function notFound(air: string): CivitaiProblem {
  return new CivitaiProblem(404, `Resource ${air} does not exist.`);
}

/** `/v2/resources`: the real service's read and invalidate, plus the original mock's catalogue CRUD. */
export async function civitaiResourceRoutes(app: FastifyInstance, { resources }: CivitaiResourceRoutesOptions): Promise<void> {
  app.get('/v2/resources', async (request) => {
    const errors: FieldErrors = {};
    const limit = queryInteger(request.query, 'limit', 20, { min: 1, max: 100 }, errors);
    const page = queryInteger(request.query, 'page', 1, { min: 1, max: 1_000_000 }, errors);
    const q = queryValue(request.query, 'q');
    if (q !== undefined && q.length > 500) addError(errors, 'q', 'must be at most 500 characters');
    throwIfErrors(errors);
    // `q` is an AIR prefix in any spelling: `sdxl:`, `air:sdxl:` and `urn:air:sdxl:` find the same.
    const prefix = q ? canonicalAir(q) : undefined;
    const { total, items } = await resources.list({ limit, offset: (page - 1) * limit, prefix });
    return { page, limit, total, items: items.map((item) => item.data) };
  });

  app.post('/v2/resources', { config: { admin: true } }, async (request, reply) => {
    const { body } = request;
    requireBody(body);
    const errors: FieldErrors = {};
    collectErrors(validateResource, body, errors);
    collectUnstorable(body, errors);
    throwIfErrors(errors);
    const air = canonicalAir(body.air as string);
    const created = await resources.insert(air, { ...body, air });
    if (!created) throw new CivitaiProblem(409, `Resource ${air} already exists; replace it with PUT or change it with PATCH.`);
    return reply.code(201).header('location', `/v2/resources/${encodeURIComponent(air)}`).send(created.data);
  });

  for (const path of RESOURCE_PATHS) {
    app.get(path, async (request) => {
      const air = pathAir(request);
      const found = await resources.get(air);
      if (!found) throw notFound(air);
      return found.data;
    });

    app.put(path, { config: { admin: true } }, async (request) => {
      const air = pathAir(request);
      const { body } = request;
      requireBody(body);
      const errors: FieldErrors = {};
      if (collectErrors(validateResource, body, errors) && canonicalAir(body.air as string) !== air) {
        addError(errors, 'air', `must be the AIR of the path (${air})`);
      }
      collectUnstorable(body, errors);
      throwIfErrors(errors);
      const replaced = await resources.replace(air, { ...body, air });
      if (!replaced) throw notFound(air);
      return replaced.data;
    });

    app.patch(path, { config: { admin: true } }, async (request) => {
      const air = pathAir(request);
      const { body } = request;
      requireBody(body);
      const errors: FieldErrors = {};
      if (collectErrors(validatePatch, body, errors) && typeof body.air === 'string' && canonicalAir(body.air) !== air) {
        addError(errors, 'air', 'cannot be changed; create a new resource instead');
      }
      collectUnstorable(body, errors);
      throwIfErrors(errors);
      const merged = await resources.merge(air, { ...body, air });
      if (!merged) throw notFound(air);
      return merged.data;
    });

    app.delete(path, { config: { admin: true } }, async (request, reply) => {
      const air = pathAir(request);
      if (!(await resources.delete(air))) throw notFound(air);
      return reply.code(204).send();
    });
  }
}
