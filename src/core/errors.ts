/** One bad field; `in` says which part of the request held it (the body unless said otherwise). */
export interface FieldProblem {
  field: string;
  message: string;
  in?: 'body' | 'querystring' | 'params' | 'headers';
}

/**
 * Errors the core raises for callers. Each carries the HTTP status the native API answers with; other
 * dialects map them to their own formats.
 */
export class DarkroomError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fieldErrors: FieldProblem[] = [],
  ) {
    super(message);
    this.name = 'DarkroomError';
  }
}

export const notFound = (what: string, id: string) => new DarkroomError(404, 'not_found', `${what} ${id} does not exist`);
export const conflict = (message: string) => new DarkroomError(409, 'conflict', message);
/** A request the schema let through but the core refuses; with field errors it is a validation failure like any other. */
export const badRequest = (message: string, fieldErrors: FieldProblem[] = []) =>
  new DarkroomError(400, fieldErrors.length > 0 ? 'validation_failed' : 'invalid_request', message, fieldErrors);

/**
 * A provider's failure, classified: `retryable` says whether the same request may succeed later
 * (network, timeouts, 5xx, 429) or never will (other 4xx, moderation). `retryAfterMs` carries an
 * upstream's Retry-After. `resubmit` says whether the upstream job is gone, so a retry must submit
 * again rather than keep polling the saved provider job id.
 */
export class ProviderError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly resubmit: boolean;

  constructor(
    message: string,
    options: { code: string; retryable: boolean; retryAfterMs?: number; resubmit?: boolean; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
    this.code = options.code;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.resubmit = options.resubmit ?? false;
  }
}
