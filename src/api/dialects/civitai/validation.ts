import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { TSchema } from 'typebox';
import { findUnstorable } from '../../../core/storable.ts';
import { CivitaiProblem, validationProblem, type FieldErrors } from './errors.ts';

// Bodies are checked here rather than by route schemas: a JobRequest may come alone or inside
// `{jobs: […]}`, and every bad field of every job must be reported under its own ASP.NET-style name.
// `nullable` is OpenAPI's keyword, which the Civitai specs use for optional fields sent as null.
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);

export function compile(schema: TSchema): ValidateFunction {
  return ajv.compile(schema);
}

/** Steps (`jobs`, 0, `params`, `width`) named the way ASP.NET names fields: `jobs[0].params.width`. */
function aspNetName(prefix: string, segments: (string | number)[]): string {
  return segments.reduce<string>(
    (name, segment) => (typeof segment === 'number' || /^\d+$/.test(segment) ? `${name}[${segment}]` : name ? `${name}.${segment}` : segment),
    prefix,
  );
}

/** `/jobs/0/params/width` → `jobs[0].params.width`. */
function fieldName(prefix: string, error: ErrorObject): string {
  const segments = error.instancePath.split('/').filter(Boolean);
  if (typeof error.params.missingProperty === 'string') segments.push(error.params.missingProperty);
  return aspNetName(prefix, segments);
}

/**
 * Adds every part of `value` the database cannot store (a NUL or a lone surrogate in any string or
 * name, or nesting too deep) to `errors`, named under `prefix`. The dialect keeps whole requests
 * (unknown fields included), so it checks them itself, to name each field the way its clients wrote it.
 */
export function collectUnstorable(value: unknown, errors: FieldErrors, prefix = ''): boolean {
  const problems = findUnstorable(value);
  for (const problem of problems) addError(errors, aspNetName(prefix, problem.path), problem.message);
  return problems.length === 0;
}

/** Adds every schema violation of `value` to `errors`, each field named under `prefix`. */
export function collectErrors(validate: ValidateFunction, value: unknown, errors: FieldErrors, prefix = ''): boolean {
  if (validate(value)) return true;
  for (const error of validate.errors ?? []) {
    const field = fieldName(prefix, error);
    const message = typeof error.params.missingProperty === 'string' ? 'is required' : (error.message ?? 'is invalid');
    const messages = (errors[field] ??= []);
    if (!messages.includes(message)) messages.push(message);
  }
  return false;
}

export function addError(errors: FieldErrors, field: string, message: string): void {
  (errors[field] ??= []).push(message);
}

export function throwIfErrors(errors: FieldErrors): void {
  if (Object.keys(errors).length > 0) throw validationProblem(errors);
}

export function requireBody(body: unknown): asserts body is Record<string, unknown> {
  if (body === undefined) throw new CivitaiProblem(400, 'A non-empty request body is required.', { '': ['A non-empty request body is required.'] });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CivitaiProblem(400, 'The request body must be a JSON object.', { $: ['must be a JSON object'] });
  }
}

/**
 * Query values as the orchestrator's ASP.NET binder reads them: one value per name (the last when
 * repeated), booleans as true/false in any case.
 */
export function queryValue(query: unknown, name: string): string | undefined {
  const value = typeof query === 'object' && query !== null ? (query as Record<string, unknown>)[name] : undefined;
  const last = Array.isArray(value) ? value.at(-1) : value;
  return typeof last === 'string' ? last : undefined;
}

export function queryValues(query: unknown, name: string): string[] {
  const value = typeof query === 'object' && query !== null ? (query as Record<string, unknown>)[name] : undefined;
  return (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string');
}

export function queryBoolean(query: unknown, name: string, fallback: boolean, errors: FieldErrors): boolean {
  const raw = queryValue(query, name);
  if (raw === undefined || raw === '') return fallback;
  if (/^true$/i.test(raw)) return true;
  if (/^false$/i.test(raw)) return false;
  addError(errors, name, `The value '${raw}' is not valid for ${name}; use true or false.`);
  return fallback;
}

export function queryInteger(query: unknown, name: string, fallback: number, range: { min: number; max: number }, errors: FieldErrors): number {
  const raw = queryValue(query, name);
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw) || value < range.min || value > range.max) {
    addError(errors, name, `must be a whole number from ${range.min} to ${range.max}`);
    return fallback;
  }
  return value;
}
