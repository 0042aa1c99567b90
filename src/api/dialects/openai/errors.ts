import type { FastifyRequest } from 'fastify';
import { errorTypeOf, type OpenAIErrorBody } from '../../../protocols/openai/index.ts';
import type { ErrorFormat, FieldProblem, NormalisedError } from '../../http/errors.ts';

/** A schema failure in OpenAI's words (`Invalid type for 'n': expected an integer.`). */
function sentence(problem: FieldProblem, param: string): string {
  const rule = problem.rule;
  if (!rule) return `Invalid '${param}': ${problem.message}.`;
  if (rule.keyword === 'required') return `Missing required parameter: '${param}'.`;
  if (rule.keyword === 'additionalProperties') return `Unknown parameter: '${param}'.`;
  if (rule.keyword === 'type') return `Invalid type for '${param}': expected ${String(rule.params.type)}.`;
  if (rule.keyword === 'enum') return `Invalid value for '${param}': supported values are ${(rule.params.allowedValues as unknown[]).map((value) => `'${String(value)}'`).join(', ')}.`;
  return `Invalid '${param}': ${rule.message}.`;
}

const CODES: Record<string, string> = {
  unauthorized: 'invalid_api_key',
  forbidden: 'insufficient_permissions',
  rate_limited: 'rate_limit_exceeded',
  route_not_found: 'unknown_url',
  method_not_allowed: 'method_not_allowed',
  malformed_json: 'invalid_json',
  body_too_large: 'request_too_large',
  internal_error: 'server_error',
};

/** OpenAI's code for a schema failure of `keyword`. */
const RULE_CODES: Record<string, string> = { required: 'missing_required_parameter', additionalProperties: 'unknown_parameter', type: 'invalid_type' };

function body(error: NormalisedError, request: FastifyRequest): OpenAIErrorBody {
  const { param, code, ...extra } = error.extra as { param?: string | null; code?: string | null } & Record<string, unknown>;
  const field = error.fields[0];
  const fieldParam = field ? field.path.join('.') || null : null;
  const path = request.url.split('?')[0];
  let message = error.message;
  if (field && param === undefined) message = fieldParam === null ? `Invalid request body: ${field.message}.` : sentence(field, fieldParam);
  else if (error.code === 'route_not_found') message = `Invalid URL (${request.method} ${path})`;
  else if (error.code === 'malformed_json') message = `We could not parse the JSON body of your request. ${error.cause ?? ''}`.trim();
  return {
    error: {
      message,
      type: errorTypeOf(error.status),
      param: param !== undefined ? param : fieldParam,
      code: code !== undefined ? code : field ? (RULE_CODES[field.rule?.keyword ?? ''] ?? 'invalid_value') : (CODES[error.code] ?? error.code),
      ...extra,
    },
  };
}

/** Every error under /v1/images and /v1/models in OpenAI's shape, which the `openai` package reads into its typed errors. */
export const openaiErrors: ErrorFormat = {
  // /v1 is shared with the Civitai dialect's /v1/consumer: unknown paths stay darkroom's own 404s.
  ownNotFound: false,
  format: (error, request) => ({ status: error.status, body: body(error, request) }),
};
