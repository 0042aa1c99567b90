import type { FastifyRequest } from 'fastify';
import { DialectError, fieldName, reasonPhrase, type ErrorFormat, type ErrorReply, type NormalisedError } from '../../http/errors.ts';

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

/** RFC 9110's section of each status, which ASP.NET links as a problem's `type`. */
const RFC9110_SECTIONS: Record<number, string> = {
  400: '15.5.1', 401: '15.5.2', 402: '15.5.3', 403: '15.5.4', 404: '15.5.5', 405: '15.5.6', 406: '15.5.7', 407: '15.5.8',
  408: '15.5.9', 409: '15.5.10', 410: '15.5.11', 411: '15.5.12', 412: '15.5.13', 413: '15.5.14', 414: '15.5.15',
  415: '15.5.16', 416: '15.5.17', 417: '15.5.18', 421: '15.5.20', 422: '15.5.21', 426: '15.5.22',
  500: '15.6.1', 501: '15.6.2', 502: '15.6.3', 503: '15.6.4', 504: '15.6.5', 505: '15.6.6',
};

/** Where ASP.NET words a status otherwise than its section of RFC 9110 and Node's reason phrase. */
const ASPNET: Record<number, { type: string; title: string }> = {
  413: { type: 'https://tools.ietf.org/html/rfc9110#section-15.5.14', title: 'Content Too Large' },
  422: { type: 'https://tools.ietf.org/html/rfc4918#section-11.2', title: 'Unprocessable Entity' },
  429: { type: 'https://tools.ietf.org/html/rfc6585#section-4', title: 'Too Many Requests' },
  500: { type: 'https://tools.ietf.org/html/rfc9110#section-15.6.1', title: 'An error occurred while processing your request.' },
};

/** ASP.NET's `type` and `title` of a status: any status, the kit's 401, 403 and 429 included. */
export function statusProblem(status: number): { type: string; title: string } {
  const section = RFC9110_SECTIONS[status];
  return ASPNET[status] ?? { type: `https://tools.ietf.org/html/rfc9110#section-${section ?? '15'}`, title: reasonPhrase(status) };
}

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
    const known = statusProblem(error.status);
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
