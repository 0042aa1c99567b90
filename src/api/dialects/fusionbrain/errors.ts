import type { FastifyRequest } from 'fastify';
import { reasonPhrase, type ErrorFormat, type NormalisedError } from '../../http/errors.ts';

/**
 * Fusion Brain's errors are Spring-style JSON: `error` is the status's reason phrase and `message`
 * the detail, which is what its clients (and darkroom's own provider) print.
 */
export function errorBody(status: number, message: string, request: FastifyRequest) {
  return { timestamp: new Date().toISOString(), status, error: reasonPhrase(status), message, path: request.url.split('?')[0] };
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
