import type { FastifyRequest } from 'fastify';
import { DialectError, fieldName, type ErrorFormat, type ErrorReply, type NormalisedError } from '../../http/errors.ts';

/** Field → messages, the shape ASP.NET's ValidationProblemDetails gives `errors`. */
export type FieldErrors = Record<string, string[]>;

/**
 * An error answered as the Civitai orchestrator answers errors: ASP.NET problem details (RFC 7807)
 * with the request id as `traceId`.
 */
export class CivitaiProblem extends DialectError {
  constructor(status: number, detail: string, errors?: FieldErrors) {
    super(status, detail, {
      fields: Object.entries(errors ?? {}).flatMap(([field, messages]) => messages.map((message) => ({ field, message }))),
    });
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
  405: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.6', title: 'Method Not Allowed' },
  409: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.10', title: 'Conflict' },
  413: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.14', title: 'Content Too Large' },
  414: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.15', title: 'URI Too Long' },
  415: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.16', title: 'Unsupported Media Type' },
  422: { type: 'https://tools.ietf.org/html/rfc4918#section-11.2', title: 'Unprocessable Entity' },
  429: { type: 'https://tools.ietf.org/html/rfc6585#section-4', title: 'Too Many Requests' },
  500: { type: 'https://tools.ietf.org/html/rfc9110#section-15.6.1', title: 'An error occurred while processing your request.' },
};

/** Messages per field, in the order they came, as ValidationProblemDetails lists them. */
function errorsOf(error: NormalisedError): FieldErrors | undefined {
  if (error.fields.length === 0) return undefined;
  const errors: FieldErrors = {};
  for (const item of error.fields) (errors[item.path.length === 0 ? '' : fieldName(item)] ??= []).push(item.message);
  return errors;
}

/** The words the service uses for the request-level failures every route can have. */
function detailOf(error: NormalisedError): { detail: string; errors?: FieldErrors } {
  switch (error.code) {
    case 'malformed_json':
      return { detail: 'The request body is not valid JSON.', errors: { $: [error.cause ?? error.message] } };
    case 'unsupported_media_type':
      return { detail: 'The request body must be JSON (Content-Type: application/json).' };
    case 'body_too_large':
      return { detail: 'The request body is larger than this server accepts.' };
    case 'internal_error':
      return { detail: 'darkroom could not handle the request; the error has been logged.' };
    default:
      return { detail: error.message, errors: errorsOf(error) };
  }
}

/** The Civitai orchestrator's errors: ASP.NET problem details (RFC 7807) with the request id as `traceId`. */
export const civitaiErrors: ErrorFormat = {
  ownNotFound: false,
  format(error: NormalisedError, request: FastifyRequest): ErrorReply {
    const known = STATUS[error.status] ?? { type: 'about:blank', title: 'Error' };
    const { detail, errors } = detailOf(error);
    const body: Record<string, unknown> = {
      type: known.type,
      title: errors ? VALIDATION_TITLE : known.title,
      status: error.status,
      detail,
      instance: request.url.split('?')[0],
    };
    if (errors) body.errors = errors;
    body.traceId = request.id;
    return { status: error.status, body, contentType: 'application/problem+json' };
  },
};
