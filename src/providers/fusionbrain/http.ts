import { ProviderError } from '../../core/errors.ts';
import { parseRetryAfter } from '../../protocols/http/index.ts';

export interface FusionBrainHttpOptions {
  apiUrl: string;
  apiKey: string;
  secretKey: string;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** The most an answer other than a finished result may weigh: pipeline lists and statuses are tiny. */
export const SMALL_ANSWER_BYTES = 1_048_576;

/**
 * Calls to Fusion Brain with its key headers, and the one place its failures are classified. The
 * keys travel only in headers: no URL, message or error built here can contain them.
 */
export function makeFusionBrainHttp(options: FusionBrainHttpOptions) {
  const headers = { 'x-key': `Key ${options.apiKey}`, 'x-secret': `Secret ${options.secretKey}` };

  async function send(
    method: 'GET' | 'POST',
    path: string,
    action: string,
    init: { signal: AbortSignal; body?: FormData; maxBytes?: number },
  ): Promise<Answer> {
    try {
      const response = await fetch(`${options.apiUrl}/${path}`, { method, headers, body: init.body, signal: init.signal });
      const text = await readText(response, init.maxBytes ?? SMALL_ANSWER_BYTES, action);
      return { status: response.status, headers: response.headers, text };
    } catch (error) {
      if (error instanceof ProviderError) throw error;
      if (init.signal.aborted) {
        throw new ProviderError(`Fusion Brain did not answer ${action} in time`, { code: 'timeout', retryable: true, cause: error });
      }
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : 'connection failed';
      throw new ProviderError(`Could not reach Fusion Brain for ${action}: ${redact(reason)}`, {
        code: 'network_error',
        retryable: true,
        cause: error,
      });
    }
  }

  async function readText(response: Response, maxBytes: number, action: string): Promise<string> {
    const tooLarge = () =>
      new ProviderError(`Fusion Brain's answer to ${action} is larger than ${maxBytes} bytes`, { code: 'output_too_large', retryable: false });
    if (Number(response.headers.get('content-length')) > maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    if (!response.body) return '';
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  function json(answer: Answer, action: string): unknown {
    try {
      return JSON.parse(answer.text);
    } catch {
      throw new ProviderError(`Fusion Brain answered ${action} with something that is not JSON (HTTP ${answer.status})`, {
        code: 'invalid_response',
        retryable: true,
      });
    }
  }

  /** A non-2xx answer as a ProviderError: transient ones retryable, refusals permanent, with the upstream's own words. */
  function failure(answer: Answer, action: string): ProviderError {
    const said = upstreamMessage(answer.text);
    const text = `Fusion Brain answered ${answer.status} to ${action}${said ? `: ${said}` : ''}`;
    const { status } = answer;
    if (status === 429) {
      return new ProviderError(text, { code: 'rate_limited', retryable: true, retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')) });
    }
    if (status >= 500 || status === 408) return new ProviderError(text, { code: 'upstream_unavailable', retryable: true });
    if (status === 401 || status === 403) {
      return new ProviderError(`${text} (check FUSIONBRAIN_API_KEY and FUSIONBRAIN_SECRET_KEY)`, { code: 'unauthorized', retryable: false });
    }
    if (status === 415) return new ProviderError(text, { code: 'unsupported_media_type', retryable: false });
    return new ProviderError(text, { code: 'upstream_rejected', retryable: false });
  }

  function upstreamMessage(text: string): string {
    let said = text.trim();
    try {
      const body: unknown = JSON.parse(text);
      if (typeof body === 'object' && body !== null) {
        const fields = body as Record<string, unknown>;
        // `error` last: in Spring-style bodies it is only the reason phrase ("Bad Request").
        const found = [fields.message, fields.errorDescription, fields.detail, fields.error].find(
          (value): value is string => typeof value === 'string' && value.trim() !== '',
        );
        said = found ?? '';
      }
    } catch {
      // Not JSON: the text itself is the message.
    }
    return redact(said.length > 500 ? `${said.slice(0, 500)}…` : said);
  }

  /** An upstream that echoes a request back must not put the keys into job errors; short test keys are left alone. */
  function redact(text: string): string {
    let safe = text;
    for (const secret of [options.apiKey, options.secretKey]) {
      if (secret.length >= 8) safe = safe.replaceAll(secret, '[redacted]');
    }
    return safe;
  }

  return { send, json, failure };
}
