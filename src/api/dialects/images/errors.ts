import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { DarkroomError } from '../../../core/errors.ts';
import { UUID_PATTERN } from './schemas.ts';

/** A refusal in the dialect's own terms, with optional members beside NestJS's three. */
export class ImageApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ImageApiError';
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** One Ajv error as class-validator words it (`pageSize must not be greater than 100`). */
function sentence(error: AjvError, where: string): string {
  const path = error.instancePath.split('/').filter(Boolean).join('.');
  const field = error.keyword === 'required' ? [path, error.params.missingProperty].filter(Boolean).join('.') : path;
  const name = field || (where === 'body' ? 'the request body' : where);
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
      return `${name} ${error.message ?? 'is invalid'}`;
  }
}

function answerFor(error: unknown, request: FastifyRequest): { status: number; message: string | string[]; extra?: Record<string, unknown> } {
  if (error instanceof ImageApiError) return { status: error.status, message: error.message, extra: error.extra };
  if (error instanceof DarkroomError) {
    const fields = error.fieldErrors.map((problem) => `${problem.field.replace(/^\//, '').replaceAll('/', '.')} ${problem.message}`);
    return { status: error.status, message: fields.length > 0 ? fields : error.message };
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const where = fastifyError.validationContext ?? 'body';
    // An empty prompt breaks two rules that say the same thing: each sentence once.
    return { status: 400, message: [...new Set((fastifyError.validation as unknown as AjvError[]).map((item) => sentence(item, where)))] };
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return { status, message: `Content-Type ${request.headers['content-type'] ?? '(none)'} is not accepted here; send application/json` };
    }
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status, message: 'The request body is larger than this server accepts' };
    return { status, message: fastifyError.message };
  }
  return { status: 500, message: 'Internal server error' };
}

/**
 * Every error under /image in NestJS's shape, `{statusCode, message, error}`: `message` is the list
 * of problems for a request that failed validation (as ValidationPipe answers), a sentence otherwise.
 * Headers already set (Retry-After of a 429) are kept.
 */
export function registerImageErrors(app: FastifyInstance, onRequest: (request: FastifyRequest) => void): void {
  app.setErrorHandler((error, request, reply) => {
    onRequest(request);
    const { status, message, extra } = answerFor(error, request);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply
      .code(status)
      .type('application/json')
      .send({ statusCode: status, message, error: REASONS[status] ?? 'Error', ...extra });
  });
  app.setNotFoundHandler((request, reply) => {
    onRequest(request);
    return reply
      .code(404)
      .type('application/json')
      .send({ statusCode: 404, message: `Cannot ${request.method} ${request.url.split('?')[0]}`, error: 'Not Found' });
  });
}
