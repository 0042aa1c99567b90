import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fieldName, installErrorFormat, reasonPhrase, type ErrorFormat, type ErrorReply, type NormalisedError } from './errors.ts';
import type { RouteOwners } from './route-owners.ts';

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

/** RFC 9110's names where they differ from Node's older reason phrases. */
const TITLES: Record<number, string> = {
  413: 'Content Too Large',
  422: 'Unprocessable Content',
};

export function problem(status: number, code: string, detail: string, extra: Partial<Problem> = {}): Problem {
  return { type: `/problems/${code}`, title: TITLES[status] ?? reasonPhrase(status), status, detail, code, ...extra };
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).type('application/problem+json').send(body);
}

/** darkroom's own error format, RFC 9457 problem details: the native API's, and every route outside a dialect. */
export const problemFormat: ErrorFormat = {
  ownNotFound: true,
  format(error: NormalisedError, request: FastifyRequest): ErrorReply {
    const instance = request.url.split('?')[0];
    const errors = error.fields.map((item) => ({ in: item.in, field: fieldName(item), message: item.message }));
    return {
      status: error.status,
      contentType: 'application/problem+json',
      body: problem(error.status, error.code, error.message, { instance, ...(errors.length > 0 ? { errors } : {}) }),
    };
  },
};

/** darkroom's problems as the app's root handlers; `owners` says which dialect answers a wrong method on its paths. */
export function registerProblemHandlers(app: FastifyInstance, owners?: RouteOwners): void {
  installErrorFormat(app, problemFormat, undefined, owners);
}
