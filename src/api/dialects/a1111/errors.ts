import type { ErrorFormat, FieldProblem, NormalisedError } from '../../http/errors.ts';

/** FastAPI's `type` for one schema failure (`type_error.integer`, `value_error.number.not_le`, …). */
function typeOf(problem: FieldProblem): string {
  const rule = problem.rule;
  if (!rule) return 'value_error';
  switch (rule.keyword) {
    case 'required':
      return 'value_error.missing';
    case 'type':
      return `type_error.${String(rule.params.type)}`;
    case 'minimum':
      return 'value_error.number.not_ge';
    case 'maximum':
      return 'value_error.number.not_le';
    case 'minLength':
    case 'minItems':
      return 'value_error.any_str.min_length';
    case 'maxLength':
    case 'maxItems':
    case 'maxProperties':
      return 'value_error.any_str.max_length';
    default:
      return 'value_error';
  }
}

/** The webui's error middleware body: the exception's class, its detail, and its text. */
const middlewareBody = (status: number, message: string) => ({
  error: status >= 500 ? 'RuntimeError' : 'HTTPException',
  detail: message,
  body: '',
  errors: message,
});

function format(error: NormalisedError): { status: number; body: unknown } {
  if (error.code === 'validation_failed' && error.fields.length > 0) {
    return {
      status: 422,
      body: {
        detail: error.fields.map((problem) => ({
          loc: [problem.in === 'querystring' ? 'query' : problem.in, ...problem.path],
          msg: problem.rule?.message ?? problem.message,
          type: typeOf(problem),
        })),
      },
    };
  }
  // FastAPI answers a body it cannot parse as JSON with 422 too.
  if (error.code === 'malformed_json') {
    return { status: 422, body: { detail: [{ loc: ['body'], msg: error.cause ?? error.message, type: 'value_error.jsondecode' }] } };
  }
  // Starlette's own answers for an unknown route and a wrong method.
  if (error.code === 'route_not_found') return { status: 404, body: { detail: 'Not Found' } };
  if (error.code === 'method_not_allowed') return { status: 405, body: { detail: 'Method Not Allowed' } };
  return { status: error.status, body: { ...middlewareBody(error.status, error.message), ...error.extra } };
}

/**
 * Errors as the webui answers them: FastAPI's 422 `{detail: [{loc, msg, type}]}` for a request its
 * schema refuses, `{error, detail, body, errors}` from its exception middleware for the rest.
 */
export const a1111Errors: ErrorFormat = {
  // Its paths start at the root, where darkroom's own 404s answer.
  ownNotFound: false,
  format: (error) => format(error),
};
