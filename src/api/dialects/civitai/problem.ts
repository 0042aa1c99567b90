import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DarkroomError } from '../../../core/errors.ts';
import { IllegalTransitionError } from '../../../core/job.ts';

/** Field → messages, the shape ASP.NET's ValidationProblemDetails gives `errors`. */
export type FieldErrors = Record<string, string[]>;

/**
 * An error answered as the Civitai orchestrator answers errors: ASP.NET problem details (RFC 7807)
 * with the request id as `traceId`.
 */
export class CivitaiProblem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors?: FieldErrors,
  ) {
    super(detail);
    this.name = 'CivitaiProblem';
  }
}

export const VALIDATION_TITLE = 'One or more validation errors occurred.';

export function validationProblem(errors: FieldErrors): CivitaiProblem {
  const detail = Object.entries(errors)
    .map(([field, messages]) => `${field || 'body'}: ${messages.join(' ')}`)
    .join('; ');
  return new CivitaiProblem(400, detail, errors);
}

/** ASP.NET's `type` and `title` for each status it answers. */
const STATUS: Record<number, { type: string; title: string }> = {
  400: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.1', title: 'Bad Request' },
  404: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.5', title: 'Not Found' },
  409: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.10', title: 'Conflict' },
  413: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.14', title: 'Content Too Large' },
  415: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.16', title: 'Unsupported Media Type' },
  422: { type: 'https://tools.ietf.org/html/rfc4918#section-11.2', title: 'Unprocessable Entity' },
  429: { type: 'https://tools.ietf.org/html/rfc6585#section-4', title: 'Too Many Requests' },
  500: { type: 'https://tools.ietf.org/html/rfc9110#section-15.6.1', title: 'An error occurred while processing your request.' },
};

export function sendCivitaiProblem(reply: FastifyReply, request: FastifyRequest, problem: CivitaiProblem): FastifyReply {
  const known = STATUS[problem.status] ?? { type: 'about:blank', title: 'Error' };
  const body: Record<string, unknown> = {
    type: known.type,
    title: problem.errors ? VALIDATION_TITLE : known.title,
    status: problem.status,
    detail: problem.detail,
    instance: request.url.split('?')[0],
  };
  if (problem.errors) body.errors = problem.errors;
  body.traceId = request.id;
  return reply.code(problem.status).type('application/problem+json').send(body);
}

/** Every failure of a Civitai route as a problem; a 5xx says nothing about internals. */
export function toCivitaiProblem(error: unknown): CivitaiProblem {
  if (error instanceof CivitaiProblem) return error;
  if (error instanceof DarkroomError) {
    const errors: FieldErrors = {};
    for (const item of error.fieldErrors) {
      const field = item.field.replace(/^\//, '').replaceAll('/', '.');
      (errors[field] ??= []).push(item.message);
    }
    return new CivitaiProblem(error.status, error.message, Object.keys(errors).length > 0 ? errors : undefined);
  }
  if (error instanceof IllegalTransitionError) return new CivitaiProblem(409, error.message);
  const fastifyError = error as FastifyError;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new CivitaiProblem(400, 'The request body is not valid JSON.', { $: [fastifyError.message] });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CivitaiProblem(415, 'The request body must be JSON (Content-Type: application/json).');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CivitaiProblem(413, 'The request body is larger than this server accepts.');
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new CivitaiProblem(status, fastifyError.message);
  return new CivitaiProblem(500, 'darkroom could not handle the request; the error has been logged.');
}

export function registerCivitaiErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const problem = toCivitaiProblem(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendCivitaiProblem(reply, request, problem);
  });
}
