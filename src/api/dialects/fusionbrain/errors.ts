import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { DarkroomError } from '../../../core/errors.ts';

/** A refusal in the dialect's own terms: the HTTP status and the sentence its clients show. */
export class FusionBrainApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'FusionBrainApiError';
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
};

/**
 * Fusion Brain's errors are Spring-style JSON: `error` is the reason phrase and `message` the detail,
 * which is what its clients (and darkroom's own provider) print.
 */
export function errorBody(status: number, message: string, request: FastifyRequest) {
  return { timestamp: new Date().toISOString(), status, error: REASONS[status] ?? 'Error', message, path: request.url.split('?')[0] };
}

function statusAndMessage(error: unknown): { status: number; message: string } {
  if (error instanceof FusionBrainApiError || error instanceof DarkroomError) return { status: error.status, message: error.message };
  const fastifyError = error as FastifyError;
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status, message: 'Send the request as multipart/form-data' };
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return { status, message: `The request body is not valid JSON: ${fastifyError.message}` };
    return { status, message: fastifyError.message };
  }
  return { status: 500, message: 'The server could not handle the request' };
}

/** Every error and unknown route under the dialect's prefix answers in the service's shape, never problem+json. */
export function registerFusionBrainErrors(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const { status, message } = statusAndMessage(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.code(status).type('application/json').send(errorBody(status, message, request));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).type('application/json').send(errorBody(404, `No resource ${request.method} ${request.url.split('?')[0]}`, request)),
  );
}
