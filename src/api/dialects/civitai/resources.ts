import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { ResourceStore } from '../../../core/ports/stores.ts';
import { airMistake, canonicalAir, isRecord } from '../../../protocols/civitai/orchestration.ts';
import { CivitaiProblem, type FieldErrors } from './errors.ts';
import { addError, collectErrors, collectUnstorable, compile, queryInteger, queryValue, requireBody, throwIfErrors } from './validation.ts';

export interface CivitaiResourceRoutesOptions {
  resources: ResourceStore;
}

const nullableString = (maxLength = 500) => Type.Optional(Type.String({ maxLength, nullable: true }));
const nullableDate = () => Type.Optional(Type.String({ format: 'date-time', nullable: true }));

/**
 * ResourceInfo's fields (v2 spec), each checked only when present. A document needs nothing but its
 * `air`, as in the original catalogue mock; a full ResourceInfo is a document too. Fields beyond
 * these are kept as sent: real answers carry some (`modelName`) that the spec does not list.
 */
const resourceFields = {
  // Checked by airMistake, which says what an AIR looks like rather than quoting the pattern.
  air: Type.Optional(Type.String({ maxLength: 500 })),
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

const validateFields = compile(Type.Object(resourceFields));

/**
 * The problems of a document sent to the catalogue: fields present with the wrong type, an `air`
 * that is not an AIR, or none when `airRequired` (a create; a replace or patch has the path's).
 */
function documentErrors(body: Record<string, unknown>, airRequired: boolean): FieldErrors {
  const errors: FieldErrors = {};
  collectErrors(validateFields, body, errors);
  if (body.air === undefined) {
    if (airRequired) addError(errors, 'air', 'is required');
  } else if (typeof body.air === 'string' && !errors.air) {
    const mistake = airMistake(body.air);
    if (mistake) addError(errors, 'air', mistake);
  }
  return errors;
}

/** Whether the body names an AIR (a valid one, by now) other than the path's. */
const namesAnotherAir = (body: Record<string, unknown>, air: string, errors: FieldErrors) =>
  !errors.air && typeof body.air === 'string' && canonicalAir(body.air) !== air;

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
  const mistake = airMistake(raw);
  if (mistake) throw new CivitaiProblem(400, mistake, { air: [mistake] });
  return canonicalAir(raw);
}

function notFound(air: string): CivitaiProblem {
  return new CivitaiProblem(404, `Resource ${air} does not exist.`);
}

/**
 * `/v2/resources`: the real service's read and invalidate, plus the original mock's catalogue CRUD.
 * Writes need the admin scope (the HTTP kit's auth checks it before the handler runs).
 */
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
    const errors = documentErrors(body, true);
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
      const errors = documentErrors(body, false);
      if (namesAnotherAir(body, air, errors)) addError(errors, 'air', `must be the AIR of the path (${air}), or left out`);
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
      const errors = documentErrors(body, false);
      if (namesAnotherAir(body, air, errors)) addError(errors, 'air', 'cannot be changed; create a new resource instead');
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
