import type { FastifyRequest } from 'fastify';
import type { ErrorFormat, NormalisedError } from '../../http/errors.ts';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  414: 'URI Too Long',
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

function messageOf(error: NormalisedError, request: FastifyRequest): string {
  switch (error.code) {
    case 'unsupported_media_type':
      return 'Send the request as multipart/form-data';
    case 'internal_error':
      return 'The server could not handle the request';
    case 'route_not_found':
      return `No resource ${request.method} ${request.url.split('?')[0]}`;
    case 'method_not_allowed':
      return `Request method '${request.method}' is not supported`;
    default:
      return error.message;
  }
}

/** Every error and unknown route under the dialect's prefix answers in the service's shape, never problem+json. */
export const fusionBrainErrors: ErrorFormat = {
  ownNotFound: true,
  format: (error, request) => ({ status: error.status, body: errorBody(error.status, messageOf(error, request), request) }),
};
