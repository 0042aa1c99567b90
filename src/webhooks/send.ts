import http from 'node:http';
import https from 'node:https';
import { pinnedLookup, WebhookTargetError, type PinnedAddress, type WebhookTargets } from './target.ts';

/** Bytes of a receiver's answer that are read at most; the rest is never received. */
export const MAX_ANSWER_BYTES = 4096;
/** Characters of a failed answer kept in the delivery log. */
const ERROR_EXCERPT_CHARS = 200;

export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Aborts the attempt (shutdown); the outcome is then `aborted`. */
  signal: AbortSignal;
}

export type SendOutcome =
  | { kind: 'delivered'; statusCode: number; durationMs: number }
  /** `permanent`: the target is refused, so trying again cannot help. */
  | { kind: 'failed'; statusCode: number | null; error: string; permanent: boolean; durationMs: number }
  | { kind: 'aborted' };

const excerpt = (bytes: Buffer) =>
  bytes
    .toString('utf8')
    .replace(/\p{Cc}+/gu, ' ')
    .trim()
    .slice(0, ERROR_EXCERPT_CHARS);

function describeError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'Connection reset by the receiver';
    case 'HPE_HEADER_OVERFLOW':
      return 'The answer’s headers are too large';
    case undefined:
      return error.message;
    default:
      return `Could not deliver (${code})`;
  }
}

/** The address to connect to, judged within the attempt's time: a resolver that hangs must not stretch it. */
async function pinWithin(targets: WebhookTargets, url: URL, request: WebhookRequest): Promise<PinnedAddress | 'aborted'> {
  const givenUp = AbortSignal.any([request.signal, AbortSignal.timeout(request.timeoutMs)]);
  const stopped = new Promise<'stopped'>((resolve) => givenUp.addEventListener('abort', () => resolve('stopped'), { once: true }));
  const result = await Promise.race([targets.pin(url), stopped]);
  if (result !== 'stopped') return result;
  if (request.signal.aborted) return 'aborted';
  throw new WebhookTargetError(`No address for the host within ${request.timeoutMs} ms`, false);
}

/**
 * One POST of a webhook. Whatever the receiver does, this settles within `timeoutMs` and never
 * throws: the address is judged before connecting (SSRF guard), redirects are answers (not
 * followed), at most MAX_ANSWER_BYTES of the answer are read, and a 2xx is decided on the status
 * line alone. A new connection per attempt: nothing of one receiver lingers for the next.
 */
export async function sendWebhook(request: WebhookRequest, targets: WebhookTargets): Promise<SendOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  if (request.signal.aborted) return { kind: 'aborted' };
  const url = new URL(request.url);
  let pinned: PinnedAddress | 'aborted';
  try {
    pinned = await pinWithin(targets, url, request);
  } catch (error) {
    if (!(error instanceof WebhookTargetError)) throw error;
    return { kind: 'failed', statusCode: null, error: error.message, permanent: error.permanent, durationMs: elapsed() };
  }
  if (pinned === 'aborted') return { kind: 'aborted' };
  const address = pinned;
  const remainingMs = Math.max(1, request.timeoutMs - elapsed());

  return new Promise<SendOutcome>((settle) => {
    let settled = false;
    const finish = (outcome: SendOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.signal.removeEventListener('abort', onAbort);
      outgoing.destroy();
      settle(outcome);
    };
    const fail = (error: string, statusCode: number | null = null) =>
      finish({ kind: 'failed', statusCode, error, permanent: false, durationMs: elapsed() });
    let answer: { statusCode: number; chunks: Buffer[]; bytes: number } | undefined;
    /** Judges the answer on what has arrived of it. */
    const judge = () => {
      if (!answer) return;
      const { statusCode } = answer;
      if (statusCode >= 200 && statusCode < 300) return finish({ kind: 'delivered', statusCode, durationMs: elapsed() });
      if (statusCode >= 300 && statusCode < 400) return fail(`Answered ${statusCode}; redirects are not followed`, statusCode);
      const text = excerpt(Buffer.concat(answer.chunks).subarray(0, MAX_ANSWER_BYTES));
      return fail(text ? `Answered ${statusCode}: ${text}` : `Answered ${statusCode}`, statusCode);
    };
    const onAbort = () => finish({ kind: 'aborted' });

    const client = url.protocol === 'https:' ? https : http;
    const outgoing = client.request(url, {
      method: 'POST',
      headers: { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) },
      agent: false,
      lookup: pinnedLookup(address),
      maxHeaderSize: 16 * 1024,
    });
    const timer = setTimeout(() => {
      // An answer whose status has arrived counts, however slowly its body trickles in.
      if (answer) judge();
      else fail(`No answer within ${request.timeoutMs} ms`);
    }, remainingMs);
    request.signal.addEventListener('abort', onAbort, { once: true });

    outgoing.on('response', (response) => {
      answer = { statusCode: response.statusCode ?? 0, chunks: [], bytes: 0 };
      const current = answer;
      if (current.statusCode >= 200 && current.statusCode < 400) return judge();
      response.on('data', (chunk: Buffer) => {
        current.chunks.push(chunk);
        current.bytes += chunk.length;
        if (current.bytes >= MAX_ANSWER_BYTES) judge();
      });
      response.on('end', judge);
      response.on('error', judge);
    });
    outgoing.on('error', (error) => {
      if (answer) judge();
      else fail(describeError(error));
    });
    outgoing.end(request.body);
  });
}
