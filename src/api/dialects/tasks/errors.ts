import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { DarkroomError } from '../../../core/errors.ts';
import { IllegalTransitionError } from '../../../core/job.ts';

/** One entry of FastAPI's 422 body, as pydantic writes it. */
export interface ValidationItem {
  type: string;
  loc: (string | number)[];
  msg: string;
  input?: unknown;
  ctx?: Record<string, unknown>;
}

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** FastAPI's names for the parts of a request. */
const LOCATION: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let value = root;
  for (const step of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string | number, unknown>)[step];
  }
  return value;
}

/** What pydantic says for a value of the wrong type. */
function typeError(expected: string, input: unknown, atRoot: boolean): Pick<ValidationItem, 'type' | 'msg'> {
  switch (expected) {
    case 'integer':
      return typeof input === 'number'
        ? { type: 'int_from_float', msg: 'Input should be a valid integer, got a number with a fractional part' }
        : { type: 'int_type', msg: 'Input should be a valid integer' };
    case 'number':
      return { type: 'float_type', msg: 'Input should be a valid number' };
    case 'string':
      return { type: 'string_type', msg: 'Input should be a valid string' };
    case 'boolean':
      return { type: 'bool_type', msg: 'Input should be a valid boolean' };
    case 'array':
      return { type: 'list_type', msg: 'Input should be a valid list' };
    default:
      return atRoot
        ? { type: 'model_attributes_type', msg: 'Input should be a valid dictionary or object to extract fields from' }
        : { type: 'dict_type', msg: 'Input should be a valid dictionary' };
  }
}

/** One Ajv error in pydantic's words, located the FastAPI way (`["body", "prompts", 3]`). */
function toItem(error: AjvError, where: string, root: unknown): ValidationItem {
  const path: (string | number)[] = error.instancePath
    .split('/')
    .filter(Boolean)
    .map((step) => (/^\d+$/.test(step) ? Number(step) : step.replaceAll('~1', '/').replaceAll('~0', '~')));
  const loc = [LOCATION[where] ?? where, ...path];
  const input = valueAt(root, path);
  const limit = error.params.limit as number;
  const item = (type: string, msg: string, ctx?: Record<string, unknown>): ValidationItem => ({
    type,
    loc,
    msg,
    ...(input === undefined ? {} : { input }),
    ...(ctx ? { ctx } : {}),
  });
  switch (error.keyword) {
    case 'required': {
      const field = error.params.missingProperty as string;
      return { type: 'missing', loc: [...loc, field], msg: 'Field required', ...(input === undefined ? {} : { input }) };
    }
    case 'type': {
      const expected = String(error.params.type).split(',').find((type) => type !== 'null') ?? 'object';
      if (path.length === 0 && input === undefined) return { type: 'missing', loc, msg: 'Field required', input: null };
      const { type, msg } = typeError(expected, input, path.length === 0);
      return item(type, msg);
    }
    case 'minLength':
      return item('string_too_short', `String should have at least ${plural(limit, 'character')}`, { min_length: limit });
    case 'maxLength':
      return item('string_too_long', `String should have at most ${plural(limit, 'character')}`, { max_length: limit });
    case 'minimum':
      return item('greater_than_equal', `Input should be greater than or equal to ${limit}`, { ge: limit });
    case 'maximum':
      return item('less_than_equal', `Input should be less than or equal to ${limit}`, { le: limit });
    case 'multipleOf':
      return item('multiple_of', `Input should be a multiple of ${String(error.params.multipleOf)}`, { multiple_of: error.params.multipleOf });
    case 'minItems':
    case 'maxItems': {
      const actual = Array.isArray(input) ? input.length : 0;
      const bound = error.keyword === 'minItems' ? 'least' : 'most';
      return item(error.keyword === 'minItems' ? 'too_short' : 'too_long', `List should have at ${bound} ${plural(limit, 'item')} after validation, not ${actual}`, {
        field_type: 'List',
        [error.keyword === 'minItems' ? 'min_length' : 'max_length']: limit,
        actual_length: actual,
      });
    }
    case 'pattern':
      // The only pattern here is "not blank".
      return item('string_pattern_mismatch', 'String should contain a character other than whitespace', { pattern: error.params.pattern });
    default:
      return item('value_error', error.message ?? 'Input is invalid');
  }
}

/** Every problem of a request that failed its schema, in FastAPI's 422 form: the first per field. */
function validationItems(error: FastifyError, request: FastifyRequest): ValidationItem[] {
  const where = error.validationContext ?? 'body';
  const root = { body: request.body, querystring: request.query, params: request.params, headers: request.headers }[where];
  const items = ((error.validation ?? []) as unknown as AjvError[]).map((item) => toItem(item, where, root));
  // pydantic reports one error per field: a width of 832.5 is not an integer, and that says it all.
  return [...new Map(items.reverse().map((item) => [JSON.stringify(item.loc), item])).values()].reverse();
}

type Answer = { status: number; body: { detail: string | ValidationItem[] } };

function answerFor(error: unknown, request: FastifyRequest): Answer {
  if (error instanceof DarkroomError) {
    if (error.fieldErrors.length > 0) {
      const detail = error.fieldErrors.map((problem) => ({
        type: 'value_error',
        loc: [LOCATION[problem.in ?? 'body'] ?? 'body', ...problem.field.split('/').filter(Boolean).map((step) => (/^\d+$/.test(step) ? Number(step) : step))],
        msg: `Value error, ${problem.message}`,
      }));
      return { status: 422, body: { detail } };
    }
    return { status: error.status, body: { detail: error.message } };
  }
  if (error instanceof IllegalTransitionError) return { status: 409, body: { detail: error.message } };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return { status: 422, body: { detail: validationItems(fastifyError, request) } };
  if (fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fastifyError.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    const position = /position (\d+)/.exec(fastifyError.message)?.[1];
    return {
      status: 422,
      body: {
        detail: [{ type: 'json_invalid', loc: position === undefined ? ['body'] : ['body', Number(position)], msg: 'JSON decode error', input: {}, ctx: { error: fastifyError.message } }],
      },
    };
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return { status, body: { detail: `Content-Type ${request.headers['content-type'] ?? '(none)'} is not accepted here; send application/json` } };
    }
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status, body: { detail: 'The request body is larger than this server accepts' } };
    return { status, body: { detail: fastifyError.message } };
  }
  return { status: 500, body: { detail: 'Internal Server Error' } };
}

/**
 * Every error under the dialect's prefix in FastAPI's shape: `{detail: "…"}`, and for a request that
 * fails validation (malformed JSON included) 422 with `detail` as pydantic's list of errors. Headers
 * already set (Retry-After of a 429) are kept.
 */
export function registerTasksErrors(app: FastifyInstance, onRequest: (request: FastifyRequest) => void): void {
  app.setErrorHandler((error, request, reply) => {
    onRequest(request);
    const { status, body } = answerFor(error, request);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.code(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    onRequest(request);
    return reply.code(404).type('application/json').send({ detail: 'Not Found' });
  });
}
