import { ProviderError } from '../../core/errors.ts';
import { parseRetryAfter, sniffImageType } from '../../protocols/http/index.ts';
import { CONTENT_POLICY_CODES, readErrorBody } from '../../protocols/openai/index.ts';

export interface OpenAIHttpOptions {
  baseUrl: string;
  apiKey: string;
  organization?: string;
  project?: string;
}

/**
 * Calls to an OpenAI-compatible server with its key and account headers, and the one place their
 * failures are classified. The key travels only in the Authorization header: no URL, message or
 * error built here contains it.
 */
export function makeOpenAIHttp(options: OpenAIHttpOptions) {
  const headers: Record<string, string> = {
    authorization: `Bearer ${options.apiKey}`,
    ...(options.organization ? { 'openai-organization': options.organization } : {}),
    ...(options.project ? { 'openai-project': options.project } : {}),
  };

  async function send(
    method: 'GET' | 'POST',
    path: string,
    action: string,
    init: { signal: AbortSignal; json?: unknown; form?: FormData; maxBytes: number; idempotencyKey?: string },
  ): Promise<{ status: number; headers: Headers; text: string }> {
    const extra: Record<string, string> = init.json === undefined ? {} : { 'content-type': 'application/json' };
    // darkroom's own OpenAI dialect answers a repeat with this key with the first answer; OpenAI ignores it.
    if (init.idempotencyKey) extra['idempotency-key'] = init.idempotencyKey;
    try {
      const response = await fetch(`${options.baseUrl}/${path}`, {
        method,
        headers: { ...headers, ...extra },
        body: init.form ?? (init.json === undefined ? undefined : JSON.stringify(init.json)),
        signal: init.signal,
      });
      return { status: response.status, headers: response.headers, text: await readText(response, init.maxBytes, action) };
    } catch (error) {
      if (error instanceof ProviderError) throw error;
      if (init.signal.aborted) throw new ProviderError(`OpenAI did not answer ${action} in time`, { code: 'timeout', retryable: true, cause: error });
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : 'connection failed';
      throw new ProviderError(`Could not reach OpenAI for ${action}: ${redact(reason)}`, { code: 'network_error', retryable: true, cause: error });
    }
  }

  async function readText(response: Response, maxBytes: number, action: string): Promise<string> {
    const tooLarge = () => new ProviderError(`OpenAI's answer to ${action} is larger than ${maxBytes} bytes`, { code: 'output_too_large', retryable: false });
    if (Number(response.headers.get('content-length')) > maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of response.body ?? []) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * A non-2xx answer as a ProviderError: 408, 429 and 5xx retryable (429 with its Retry-After, but
   * an exhausted quota is permanent), a content-policy refusal `content_filtered`, other refusals
   * permanent, each with the upstream's own words.
   */
  function failure(answer: { status: number; headers: Headers; text: string }, action: string): ProviderError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.text);
    } catch {
      parsed = undefined;
    }
    const error = readErrorBody(parsed);
    const said = redact((error?.message ?? answer.text).trim().slice(0, 500));
    const text = `OpenAI answered ${answer.status} to ${action}${said ? `: ${said}` : ''}`;
    const { status } = answer;
    if (status === 429 && error?.code === 'insufficient_quota') return new ProviderError(text, { code: 'quota_exceeded', retryable: false });
    if (status === 429) return new ProviderError(text, { code: 'rate_limited', retryable: true, retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')) });
    if (status >= 500 || status === 408) return new ProviderError(text, { code: 'upstream_unavailable', retryable: true, retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')) });
    if (status === 401 || status === 403) return new ProviderError(`${text} (check OPENAI_API_KEY)`, { code: 'unauthorized', retryable: false });
    if (error?.code && CONTENT_POLICY_CODES.includes(error.code)) return new ProviderError(text, { code: 'content_filtered', retryable: false });
    return new ProviderError(text, { code: 'upstream_rejected', retryable: false });
  }

  /** An upstream that echoes a request back must not put the key into job errors; short test keys are left alone. */
  function redact(text: string): string {
    return options.apiKey.length >= 8 ? text.replaceAll(options.apiKey, '[redacted]') : text;
  }

  return { send, failure };
}

/** One image of an answer: base64 as it came, or a link (dall-e's `url`) downloaded without the key. */
export async function imageBytes(item: { b64_json?: unknown; url?: unknown }, init: { signal: AbortSignal; maxBytes: number }): Promise<{ bytes: Buffer; contentType: string }> {
  let bytes: Buffer;
  if (typeof item.b64_json === 'string') bytes = Buffer.from(item.b64_json, 'base64');
  else if (typeof item.url === 'string' && /^https?:\/\//.test(item.url)) {
    const response = await fetch(item.url, { signal: init.signal }).catch((error: unknown) => {
      throw new ProviderError('Downloading an OpenAI image failed', { code: 'download_failed', retryable: true, cause: error });
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new ProviderError(`Downloading an OpenAI image failed with HTTP ${response.status}`, { code: 'download_failed', retryable: true, resubmit: true });
    }
    if (Number(response.headers.get('content-length')) > init.maxBytes) {
      await response.body?.cancel();
      throw new ProviderError(`An OpenAI image is larger than the ${init.maxBytes}-byte limit`, { code: 'image_too_large', retryable: false });
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of response.body ?? []) {
      total += chunk.byteLength;
      if (total > init.maxBytes) throw new ProviderError(`An OpenAI image is larger than the ${init.maxBytes}-byte limit`, { code: 'image_too_large', retryable: false });
      chunks.push(chunk);
    }
    bytes = Buffer.concat(chunks);
  } else throw new ProviderError('OpenAI answered an image with neither b64_json nor an http(s) url', { code: 'invalid_response', retryable: true, resubmit: true });
  if (bytes.length > init.maxBytes) throw new ProviderError(`An OpenAI image is larger than the ${init.maxBytes}-byte limit`, { code: 'image_too_large', retryable: false });
  const contentType = sniffImageType(bytes);
  if (!contentType) throw new ProviderError('OpenAI answered bytes that are not an image darkroom knows', { code: 'invalid_output', retryable: true, resubmit: true });
  return { bytes, contentType };
}
