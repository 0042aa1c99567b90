import type { FastifyRequest } from 'fastify';
import { fieldName, reasonPhrase, type ErrorFormat, type FieldProblem, type NormalisedError } from '../../http/errors.ts';
import { UUID_PATTERN } from './schemas.ts';

/** One schema failure as class-validator words it (`pageSize must not be greater than 100`). */
function sentence(problem: FieldProblem, rule: NonNullable<FieldProblem['rule']>): string {
  const field = rule.keyword === 'additionalProperties' ? problem.path.slice(0, -1).join('.') : problem.path.join('.');
  const name = field || (problem.in === 'body' ? 'the request body' : problem.in);
  const error = rule;
  const limit = error.params.limit as number;
  switch (error.keyword) {
    case 'required':
      return `${name} should not be empty`;
    case 'type': {
      const expected = String(error.params.type);
      if (expected === 'integer') return `${name} must be an integer number`;
      if (expected === 'number') return `${name} must be a number`;
      if (expected === 'string') return `${name} must be a string`;
      return `${name} must be a JSON object`;
    }
    case 'minLength':
      return limit === 1 ? `${name} should not be empty` : `${name} must be longer than or equal to ${limit} characters`;
    case 'pattern':
      return error.params.pattern === UUID_PATTERN ? `${name} must be a UUID` : `${name} should not be empty`;
    case 'maxLength':
      return `${name} must be shorter than or equal to ${limit} characters`;
    case 'minimum':
      return `${name} must not be less than ${limit}`;
    case 'maximum':
      return `${name} must not be greater than ${limit}`;
    case 'multipleOf':
      return `${name} must be divisible by ${String(error.params.multipleOf)}`;
    case 'enum':
      return `${name} must be one of the following values: ${(error.params.allowedValues as unknown[]).join(', ')}`;
    case 'format':
      return error.params.format === 'uuid' ? `${name} must be a UUID` : `${name} must be a valid ${String(error.params.format)}`;
    default:
      return `${name} ${error.message}`;
  }
}

function messageOf(error: NormalisedError, request: FastifyRequest): string | string[] {
  const rules = error.fields.filter((item) => item.rule !== undefined);
  // An empty prompt breaks two rules that say the same thing: each sentence once.
  if (rules.length > 0) return [...new Set(rules.map((item) => sentence(item, item.rule as NonNullable<FieldProblem['rule']>)))];
  if (error.fields.length > 0) return error.fields.map((item) => `${fieldName(item)} ${item.message}`);
  switch (error.code) {
    case 'internal_error':
      return 'Internal server error';
    case 'route_not_found':
    case 'method_not_allowed':
      return `Cannot ${request.method} ${request.url.split('?')[0]}`;
    default:
      return error.message;
  }
}

/**
 * Every error under /image in NestJS's shape, `{statusCode, message, error}`: `message` is the list
 * of problems for a request that failed validation (as ValidationPipe answers), a sentence otherwise.
 */
export const imageErrors: ErrorFormat = {
  ownNotFound: true,
  format: (error, request) => ({
    status: error.status,
    body: { statusCode: error.status, message: messageOf(error, request), error: reasonPhrase(error.status), ...error.extra },
  }),
};
