/** OpenAI's error body, which the `openai` package reads into its typed errors (BadRequestError, …). */
export interface OpenAIErrorBody {
  error: {
    message: string;
    /** `invalid_request_error`, `authentication_error`, `rate_limit_error`, `server_error`, … */
    type: string;
    /** The request parameter at fault, or null. */
    param: string | null;
    code: string | null;
  };
}

/** The error codes with which OpenAI refuses a prompt or an image on content policy grounds. */
export const CONTENT_POLICY_CODES: readonly string[] = ['content_policy_violation', 'moderation_blocked'];

/** The `type` OpenAI gives an error of each status. */
export function errorTypeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'invalid_request_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** The `error` member of an answer, when it has OpenAI's shape (other compatible servers' bodies vary). */
export function readErrorBody(body: unknown): Partial<OpenAIErrorBody['error']> | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error === 'string') return { message: error };
  if (typeof error !== 'object' || error === null) return undefined;
  const fields = error as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return { message: text(fields.message), type: text(fields.type), param: text(fields.param) ?? null, code: text(fields.code) ?? null };
}
