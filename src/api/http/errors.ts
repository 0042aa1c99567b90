import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { DarkroomError } from '../../core/errors.ts';
import { IllegalTransitionError } from '../../core/job.ts';
import type { RouteOwners } from './route-owners.ts';

/** The longest path segment the router matches a parameter against (Fastify's maxParamLength); a longer one is a 414. */
export const MAX_PARAM_LENGTH = 500;

/** Where in a request a bad field was, as Fastify names the parts. */
export type RequestPart = 'body' | 'querystring' | 'params' | 'headers';

/** One bad field, whoever found it: a route's schema, the core, or a dialect's own check. */
export interface FieldProblem {
  in: RequestPart;
  /** Steps to the field inside its part (`['jobs', 0, 'prompt']`); empty for the part itself. */
  path: (string | number)[];
  /** darkroom's words for what is wrong. */
  message: string;
  /** For a schema failure: the rule (Ajv's keyword and parameters), for dialects that word it their own way. */
  rule?: { keyword: string; params: Record<string, unknown>; message: string };
}

/**
 * Any error of any route, in one shape: what the dialects' error formats start from. A 5xx says
 * nothing about internals.
 */
export interface NormalisedError {
  status: number;
  /**
   * What went wrong, as darkroom names it: `validation_failed`, `malformed_json`, `body_too_large`,
   * `unsupported_media_type`, `route_not_found`, `method_not_allowed`, `bad_url`, `uri_too_long`,
   * `conflict`, `internal_error`, or the core's own code.
   */
  code: string;
  /** One sentence for people. */
  message: string;
  fields: FieldProblem[];
  /** Members a dialect's own error carries beside these (DialectError.extra). */
  extra: Record<string, unknown>;
  /** The parser's own message, for `malformed_json`. */
  cause?: string;
  /** For `method_not_allowed`: the methods the path answers, sent as the Allow header. */
  allow?: string[];
}

/** A refusal in a dialect's own terms; `extra` holds members of its error body beside the usual ones. */
export class DialectError extends DarkroomError {
  readonly extra: Record<string, unknown>;

  constructor(
    status: number,
    message: string,
    options: { code?: string; fields?: { field: string; message: string; in?: RequestPart }[]; extra?: Record<string, unknown> } = {},
  ) {
    super(status, options.code ?? (options.fields?.length ? 'validation_failed' : 'invalid_request'), message, options.fields ?? []);
    this.extra = options.extra ?? {};
    this.name = 'DialectError';
  }
}

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

const stepOf = (step: string): string | number => (/^\d+$/.test(step) ? Number(step) : step.replaceAll('~1', '/').replaceAll('~0', '~'));

/** A core field name (`/jobs/0/prompt`, `jobs.0.prompt` or `prompt`) as path steps. */
export function pathOf(field: string): (string | number)[] {
  return field.split(/[/.]/).filter(Boolean).map(stepOf);
}

/** The dotted name of a field (`jobs.0.prompt`); the part's name for the part itself. */
export function fieldName(problem: Pick<FieldProblem, 'in' | 'path'>): string {
  return problem.path.join('.') || problem.in;
}

function schemaProblems(error: FastifyError): FieldProblem[] {
  const where = (error.validationContext ?? 'body') as RequestPart;
  return ((error.validation ?? []) as unknown as AjvError[]).map((item) => {
    const path = item.instancePath.split('/').filter(Boolean).map(stepOf);
    const named = item.params.missingProperty ?? item.params.additionalProperty;
    const message =
      item.params.additionalProperty !== undefined ? 'is not a known field' : item.params.missingProperty !== undefined ? 'is required' : (item.message ?? 'is invalid');
    return {
      in: where,
      path: typeof named === 'string' ? [...path, named] : path,
      message,
      rule: { keyword: item.keyword, params: item.params, message: item.message ?? 'is invalid' },
    };
  });
}

/** The codes of a body that could not be read (its media type, size or JSON). */
const BODY_CODES = new Set(['body_too_large', 'unsupported_media_type', 'malformed_json']);

const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_BAD_URL: 'bad_url',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
};

/** Turns whatever a route threw into a NormalisedError. */
export function normaliseError(error: unknown, request: FastifyRequest): NormalisedError {
  if (error instanceof DarkroomError) {
    return {
      status: error.status,
      code: error.code,
      message: error.message,
      fields: error.fieldErrors.map((item) => ({ in: item.in ?? 'body', path: pathOf(item.field), message: item.message })),
      extra: error instanceof DialectError ? error.extra : {},
    };
  }
  if (error instanceof IllegalTransitionError) return { status: 409, code: 'conflict', message: error.message, fields: [], extra: {} };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const fields = schemaProblems(fastifyError);
    const detail = fields.map((item) => `${fieldName(item)} ${item.message}`).join('; ');
    return { status: 400, code: 'validation_failed', message: `The request is invalid: ${detail}`, fields, extra: {} };
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = FASTIFY_CODES[fastifyError.code] ?? 'bad_request';
    switch (code) {
      case 'body_too_large':
        return { status, code, message: 'The request body is larger than this server accepts', fields: [], extra: {} };
      case 'unsupported_media_type':
        return { status, code, message: `Content-Type ${request.headers['content-type'] ?? '(none)'} is not accepted here; send application/json`, fields: [], extra: {} };
      case 'malformed_json':
        return { status, code, message: `The request body is not valid JSON: ${fastifyError.message}`, fields: [], extra: {}, cause: fastifyError.message };
      // The path itself is not repeated: it may be thousands of characters, or not text at all.
      case 'bad_url':
        return { status, code, message: 'The request path holds a %-escape that does not decode to UTF-8 text', fields: [], extra: {} };
      case 'uri_too_long':
        return { status, code, message: `A segment of the request path is longer than ${MAX_PARAM_LENGTH} characters`, fields: [], extra: {} };
      default:
        return { status, code, message: fastifyError.message, fields: [], extra: {} };
    }
  }
  if (error instanceof SyntaxError) {
    return { status: 400, code: 'malformed_json', message: `The request body is not valid JSON: ${error.message}`, fields: [], extra: {}, cause: error.message };
  }
  return { status: 500, code: 'internal_error', message: 'darkroom could not handle the request; the error has been logged', fields: [], extra: {} };
}

/** The methods a route may answer, in the order an Allow header lists them. */
const METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** The methods some route answers `path` with, asked of the router itself. */
export function allowedMethods(server: FastifyInstance, path: string): string[] {
  return METHODS.filter((method) => server.findRoute({ method, url: path }) !== null);
}

/**
 * A request no route answers: 405 with the methods that path has, when it has any other than the
 * request's (Fastify routes by method and path together, so a wrong method on a known path lands
 * here too); 404 otherwise.
 */
export function routeNotFound(request: FastifyRequest): NormalisedError {
  const path = request.url.split('?')[0] ?? '';
  const allow = allowedMethods(request.server, path);
  // A route that answers this very method and still found nothing (a missing static file) is a 404.
  if (allow.length > 0 && !allow.includes(request.method)) {
    return {
      status: 405,
      code: 'method_not_allowed',
      message: `${request.method} is not allowed on ${path}; it answers ${allow.join(', ')}`,
      fields: [],
      extra: {},
      allow,
    };
  }
  return { status: 404, code: 'route_not_found', message: `No route ${request.method} ${path}`, fields: [], extra: {} };
}

/**
 * The reason phrase of a status (`Unauthorized`, `Forbidden`, …), for the error formats that name
 * it: every status a route or a hook can answer has one, so no format needs a table that could miss
 * the refusals of the kit's own auth (401, 403) or rate limiter (429).
 */
export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? (status >= 500 ? 'Internal Server Error' : 'Bad Request');
}

/** What a dialect answers for an error: its status, its body, and the media type (application/json unless said). */
export interface ErrorReply {
  status: number;
  body: unknown;
  contentType?: string;
}

/** A dialect's error format: how its service words a NormalisedError. */
export interface ErrorFormat {
  format(error: NormalisedError, request: FastifyRequest): ErrorReply;
  /** Whether unknown routes under the dialect's prefix answer in its format (false: darkroom's own 404). */
  ownNotFound: boolean;
}

function send(reply: FastifyReply, error: NormalisedError, answer: ErrorReply): FastifyReply {
  if (error.allow) reply.header('allow', error.allow.join(', '));
  return reply.code(answer.status).type(answer.contentType ?? 'application/json').send(answer.body);
}

/**
 * Installs `errors` as the error (and, if it says so, not-found) handler of one encapsulated scope.
 * Headers already set on the reply (Retry-After of a 429) are kept. `onRequest` runs first: a
 * request refused before the scope's hooks (a 401 from auth) still gets the scope's log bindings.
 * At the root, `owners` says which dialect answers a wrong method on one of its paths.
 */
export function installErrorFormat(
  scope: FastifyInstance,
  errors: ErrorFormat,
  onRequest: (request: FastifyRequest) => void = () => undefined,
  owners?: RouteOwners,
): void {
  const notFound = (request: FastifyRequest, reply: FastifyReply) => {
    const normalised = routeNotFound(request);
    // A dialect whose unknown paths are darkroom's 404s still answers a wrong method on its own paths.
    const format = (normalised.status === 405 ? owners?.formatOf(request.url.split('?')[0] ?? '') : undefined) ?? errors;
    return send(reply, normalised, format.format(normalised, request));
  };
  scope.setErrorHandler((error, request, reply) => {
    onRequest(request);
    const normalised = normaliseError(error, request);
    // Fastify reads the body of a request no route answers too; an unknown path is unknown whatever its body.
    if (request.is404 && BODY_CODES.has(normalised.code)) return notFound(request, reply);
    if (normalised.status >= 500) request.log.error({ err: error }, 'request failed');
    return send(reply, normalised, errors.format(normalised, request));
  });
  if (errors.ownNotFound) {
    scope.setNotFoundHandler((request, reply) => {
      onRequest(request);
      return notFound(request, reply);
    });
  }
}

/**
 * Fastify's `frameworkErrors`: what the router refuses before routing (a path that is not UTF-8, a
 * segment longer than MAX_PARAM_LENGTH), answered in the format of the dialect owning the path.
 */
export function frameworkErrorHandler(owners: RouteOwners, fallback: ErrorFormat) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    reply.header('x-request-id', request.id);
    const normalised = normaliseError(error, request);
    const format = owners.formatOf(request.url.split('?')[0] ?? '') ?? fallback;
    return send(reply, normalised, format.format(normalised, request));
  };
}
