import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DarkroomError } from '../../core/errors.ts';
import { IllegalTransitionError } from '../../core/job.ts';

/** One bad field of a request, as listed in a validation problem. */
export interface FieldError {
  /** Where the field is: body, querystring, params or headers. */
  in: string;
  /** Path of the field inside that part, e.g. `width` or `jobs.0.prompt`. */
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  code: string;
  errors?: FieldError[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(status: number, code: string, detail: string, extra: Partial<Problem> = {}): Problem {
  return { type: `/problems/${code}`, title: TITLES[status] ?? 'Error', status, detail, code, ...extra };
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).type('application/problem+json').send(body);
}

interface AjvError {
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

function fieldErrors(error: FastifyError): FieldError[] {
  const where = error.validationContext ?? 'body';
  return (error.validation as AjvError[] | undefined ?? []).map((item) => {
    const path = item.instancePath.split('/').filter(Boolean);
    const named = item.params.missingProperty ?? item.params.additionalProperty;
    if (typeof named === 'string') path.push(named);
    const field = path.join('.') || where;
    const message =
      item.params.additionalProperty !== undefined ? 'is not a known field' : item.params.missingProperty !== undefined ? 'is required' : (item.message ?? 'is invalid');
    return { in: where, field, message };
  });
}

/** Maps every error to problem+json (RFC 9457). A 5xx says nothing about internals. */
export function problemFromError(error: unknown, request: FastifyRequest): Problem {
  const instance = request.url.split('?')[0];
  if (error instanceof DarkroomError) {
    const errors = error.fieldErrors.map((item) => ({
      in: item.in ?? 'body',
      field: item.field.replace(/^\//, '').replaceAll('/', '.'),
      message: item.message,
    }));
    return problem(error.status, error.code, error.message, { instance, ...(errors.length ? { errors } : {}) });
  }
  if (error instanceof IllegalTransitionError) return problem(409, 'conflict', error.message, { instance });
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const errors = fieldErrors(fastifyError);
    const detail = errors.map((item) => `${item.field} ${item.message}`).join('; ');
    return problem(400, 'validation_failed', `The request is invalid: ${detail}`, { instance, errors });
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return problem(status, codeFor(fastifyError), friendlyMessage(fastifyError, request), { instance });
  }
  return problem(500, 'internal_error', 'darkroom could not handle the request; the error has been logged', { instance });
}

function codeFor(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'body_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'malformed_json';
    default:
      return 'bad_request';
  }
}

function friendlyMessage(error: FastifyError, request: FastifyRequest): string {
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'The request body is larger than this server accepts';
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return `Content-Type ${request.headers['content-type'] ?? '(none)'} is not accepted here; send application/json`;
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return `The request body is not valid JSON: ${error.message}`;
  }
  return error.message;
}

export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const body = problemFromError(error, request);
    if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, body);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'route_not_found', `No route ${request.method} ${request.url.split('?')[0]}`, { instance: request.url.split('?')[0] })),
  );
}
