import { ProviderError } from '../../core/errors.ts';
import { sniffImageType } from '../../protocols/http/index.ts';
import type { ImageRef } from './output.ts';

/**
 * The bytes decide the type: workers label every image PNG whatever they encoded. A declared image
 * type is the fallback for formats the sniffer does not know.
 */
function contentTypeOf(bytes: Buffer, declared: string | undefined): string {
  const normalised = declared?.split(';')[0]?.trim().toLowerCase();
  return sniffImageType(bytes) ?? (normalised?.startsWith('image/') ? normalised : 'application/octet-stream');
}

export interface ResolveOptions {
  maxBytes: number;
  signal: AbortSignal;
  fetch?: typeof fetch;
}

export interface ResolvedImage {
  bytes: Buffer;
  contentType: string;
}

const tooLarge = (size: string, maxBytes: number) =>
  new ProviderError(`The RunPod worker returned an image of ${size}, more than the ${maxBytes} bytes darkroom accepts`, {
    code: 'image_too_large',
    retryable: false,
  });

const invalidImage = (message: string) => new ProviderError(message, { code: 'invalid_output', retryable: true, resubmit: true });

function decodeBase64(text: string, maxBytes: number): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) {
    throw invalidImage('The RunPod worker returned an image that is neither base64, a data URI nor an http(s) link');
  }
  // Refuse before decoding: the decoded size is known from the text's length.
  const estimated = Math.floor((compact.length * 3) / 4);
  if (estimated > maxBytes + 2) throw tooLarge(`about ${estimated} bytes`, maxBytes);
  const bytes = Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
  if (bytes.length > maxBytes) throw tooLarge(`${bytes.length} bytes`, maxBytes);
  return bytes;
}

function decodeDataUri(uri: string, maxBytes: number): ResolvedImage {
  const match = /^data:([^,]*),(.*)$/is.exec(uri);
  if (!match) throw invalidImage('The RunPod worker returned a malformed data URI');
  const [type, ...parameters] = (match[1] ?? '').split(';');
  const payload = match[2] ?? '';
  let bytes: Buffer;
  if (parameters.some((parameter) => parameter.trim().toLowerCase() === 'base64')) {
    bytes = decodeBase64(payload, maxBytes);
  } else {
    try {
      bytes = Buffer.from(decodeURIComponent(payload), 'latin1');
    } catch {
      throw invalidImage('The RunPod worker returned a malformed data URI');
    }
    if (bytes.length > maxBytes) throw tooLarge(`${bytes.length} bytes`, maxBytes);
  }
  return { bytes, contentType: contentTypeOf(bytes, type) };
}

/** Reads a body, giving up as soon as it passes `maxBytes` rather than after buffering all of it. */
async function readLimited(response: Response, maxBytes: number): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(`${declared} bytes`, maxBytes);
  }
  if (!response.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge(`more than ${maxBytes} bytes`, maxBytes);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

async function download(url: string, options: ResolveOptions): Promise<ResolvedImage> {
  const doFetch = options.fetch ?? fetch;
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    throw invalidImage('The RunPod worker returned a malformed image link');
  }
  let response: Response;
  try {
    // No Authorization header: image links point at buckets and CDNs, which must never see the API key.
    response = await doFetch(url, { signal: options.signal, redirect: 'follow' });
  } catch (cause) {
    const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
    throw new ProviderError(timedOut ? `Downloading an image from ${host} took too long` : `Could not download an image from ${host}`, {
      code: timedOut ? 'upstream_timeout' : 'network_error',
      retryable: true,
      cause,
    });
  }
  if (!response.ok) {
    await response.body?.cancel();
    // A link that is gone (expired bucket link) only comes back with a fresh run.
    const gone = response.status >= 400 && response.status < 500 && response.status !== 429;
    throw new ProviderError(`Downloading an image from ${host} answered ${response.status}`, {
      code: gone ? 'image_link_gone' : 'upstream_unavailable',
      retryable: true,
      resubmit: gone,
    });
  }
  const bytes = await readLimited(response, options.maxBytes);
  if (bytes.length === 0) throw invalidImage(`The image downloaded from ${host} is empty`);
  return { bytes, contentType: contentTypeOf(bytes, response.headers.get('content-type') ?? undefined) };
}

/** The bytes of one reported image, unchanged, with their content type. */
export async function resolveImage(image: ImageRef, options: ResolveOptions): Promise<ResolvedImage> {
  const data = image.data.trim();
  if (/^data:/i.test(data)) return decodeDataUri(data, options.maxBytes);
  if (/^https?:\/\//i.test(data)) return download(data, options);
  if (image.kind === 'url') throw invalidImage('The RunPod worker returned an image link that is not http(s)');
  const bytes = decodeBase64(data, options.maxBytes);
  return { bytes, contentType: contentTypeOf(bytes, undefined) };
}
