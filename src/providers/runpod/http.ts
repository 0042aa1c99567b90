import { ProviderError } from '../../core/errors.ts';
import { parseRetryAfter } from '../../protocols/http/index.ts';

/** The upstream's own words from an error body: JSON `error`, `message` or `detail`, else the text itself. */
export function upstreamMessage(body: string): string {
  const text = body.trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) {
      const record = parsed as Record<string, unknown>;
      for (const key of ['error', 'message', 'detail']) {
        const value = record[key];
        if (typeof value === 'string' && value.trim() !== '') return value.trim().slice(0, 500);
        if (typeof value === 'object' && value !== null) {
          const nested = (value as Record<string, unknown>).message;
          return (typeof nested === 'string' ? nested : JSON.stringify(value)).slice(0, 500);
        }
      }
    }
  } catch {
    // Not JSON: the text is the message.
  }
  return text.replace(/\s+/g, ' ').slice(0, 300);
}

/**
 * An HTTP error answer as a ProviderError: 429 and 5xx are retryable (429 with its Retry-After),
 * every other 4xx is permanent. `what` names the call ("POST /run") for the message.
 */
export function httpError(status: number, headers: Headers, body: string, what: string): ProviderError {
  const said = upstreamMessage(body);
  const message = `RunPod answered ${status} to ${what}${said ? `: ${said}` : ''}`;
  if (status === 429) {
    return new ProviderError(message, { code: 'rate_limited', retryable: true, retryAfterMs: parseRetryAfter(headers.get('retry-after')) });
  }
  // 408 is the upstream giving up on a slow request: as retryable as a timeout of ours.
  if (status >= 500 || status === 408) return new ProviderError(message, { code: 'upstream_unavailable', retryable: true });
  if (status === 401 || status === 403) return new ProviderError(message, { code: 'upstream_unauthorized', retryable: false });
  return new ProviderError(message, { code: 'upstream_rejected', retryable: false });
}

/** A request that got no answer: a timeout (the context's signal) or a network failure, both retryable. */
export function networkError(cause: unknown, what: string): ProviderError {
  const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
  if (timedOut) return new ProviderError(`RunPod did not answer ${what} in time`, { code: 'upstream_timeout', retryable: true, cause });
  const reason = cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : cause instanceof Error ? cause.message : 'unknown error';
  return new ProviderError(`Could not reach RunPod for ${what}: ${reason}`, { code: 'network_error', retryable: true, cause });
}
