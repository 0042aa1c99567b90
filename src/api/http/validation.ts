import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const base: Options = { allErrors: true, removeAdditional: false, strict: false };

function makeAjv(coerceTypes: Options['coerceTypes'], useDefaults: boolean) {
  const ajv = new Ajv({ ...base, coerceTypes, useDefaults });
  addFormats.default(ajv);
  return ajv;
}

// Body defaults are documentation only: the core applies them (normaliseRequest). Filling them in
// here would make every batch entry carry width 512 and so hide the batch's shared options.
const strict = makeAjv(false, false);
const coercing = makeAjv('array', true);

/**
 * Bodies are JSON and must carry the right types ("512" is not a width). Query strings and path
 * parameters are text by nature, so those are coerced (`?limit=10`). Every error is reported, not
 * just the first, so one answer lists every bad field.
 */
export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? strict : coercing).compile(schema);
