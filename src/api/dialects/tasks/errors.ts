import type { FastifyRequest } from 'fastify';
import type { ErrorFormat, FieldProblem, NormalisedError } from '../../http/errors.ts';

/** One entry of FastAPI's 422 body, as pydantic writes it. */
export interface ValidationItem {
  type: string;
  loc: (string | number)[];
  msg: string;
  input?: unknown;
  ctx?: Record<string, unknown>;
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

/** One schema failure in pydantic's words, located the FastAPI way (`["body", "prompts", 3]`). */
function toItem(problem: FieldProblem, error: NonNullable<FieldProblem['rule']>, root: unknown): ValidationItem {
  // The schema's own location: a missing or unknown property is named inside the object that lacks or has it.
  const path = ['required', 'additionalProperties'].includes(error.keyword) ? problem.path.slice(0, -1) : problem.path;
  const loc = [LOCATION[problem.in] ?? problem.in, ...path];
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
function validationItems(error: NormalisedError, request: FastifyRequest): ValidationItem[] {
  const parts: Record<string, unknown> = { body: request.body, querystring: request.query, params: request.params, headers: request.headers };
  const items = error.fields.flatMap((problem) => (problem.rule ? [toItem(problem, problem.rule, parts[problem.in])] : []));
  // pydantic reports one error per field: a width of 832.5 is not an integer, and that says it all.
  return [...new Map(items.reverse().map((item) => [JSON.stringify(item.loc), item])).values()].reverse();
}

type Answer = { status: number; body: { detail: string | ValidationItem[] } };

function answerFor(error: NormalisedError, request: FastifyRequest): Answer {
  if (error.fields.some((problem) => problem.rule)) return { status: 422, body: { detail: validationItems(error, request) } };
  if (error.fields.length > 0) {
    const detail = error.fields.map((problem) => ({
      type: 'value_error',
      loc: [LOCATION[problem.in] ?? 'body', ...problem.path],
      msg: `Value error, ${problem.message}`,
    }));
    return { status: 422, body: { detail } };
  }
  switch (error.code) {
    case 'malformed_json': {
      const cause = error.cause ?? error.message;
      const position = /position (\d+)/.exec(cause)?.[1];
      return {
        status: 422,
        body: { detail: [{ type: 'json_invalid', loc: position === undefined ? ['body'] : ['body', Number(position)], msg: 'JSON decode error', input: {}, ctx: { error: cause } }] },
      };
    }
    case 'internal_error':
      return { status: 500, body: { detail: 'Internal Server Error' } };
    case 'route_not_found':
      return { status: 404, body: { detail: 'Not Found' } };
    case 'method_not_allowed':
      return { status: 405, body: { detail: 'Method Not Allowed' } };
    default:
      return { status: error.status, body: { detail: error.message } };
  }
}

/**
 * Every error under the dialect's prefix in FastAPI's shape: `{detail: "…"}`, and for a request that
 * fails validation (malformed JSON included) 422 with `detail` as pydantic's list of errors.
 */
export const tasksErrors: ErrorFormat = {
  ownNotFound: true,
  format: (error, request) => answerFor(error, request),
};
