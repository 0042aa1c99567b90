import { ProviderError } from '../../core/errors.ts';
import { sniffImageType } from '../../protocols/http/index.ts';

/**
 * Downloads one result blob as it is. Blob links are presigned for another host, so they are fetched
 * without darkroom's credentials. Every failure but an oversized image is retryable without
 * resubmitting: the next poll hands out fresh links for the same finished job.
 */
export async function downloadBlob(
  blobUrl: string,
  options: { maxBytes: number; signal: AbortSignal; expiresAt?: string; now?: () => number },
): Promise<{ bytes: Buffer; contentType: string }> {
  const now = options.now ?? Date.now;
  const expiresAt = options.expiresAt === undefined ? Number.NaN : Date.parse(options.expiresAt);
  if (!Number.isNaN(expiresAt) && expiresAt <= now()) {
    throw new ProviderError('The Civitai image link expired before darkroom could download it', { code: 'blob_expired', retryable: true });
  }
  const url = new URL(blobUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ProviderError(`Civitai returned an image link darkroom cannot download (${url.protocol})`, { code: 'invalid_response', retryable: false });
  }

  let response: Response;
  try {
    response = await fetch(url, { signal: options.signal });
  } catch (error) {
    throw new ProviderError(`Downloading a Civitai image failed: ${describeFetchFailure(error)}`, { code: 'download_failed', retryable: true, cause: error });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new ProviderError(`Downloading a Civitai image failed with HTTP ${response.status}`, { code: 'download_failed', retryable: true });
  }
  const tooLarge = () =>
    new ProviderError(`A Civitai image is larger than the ${options.maxBytes}-byte limit`, { code: 'image_too_large', retryable: false });
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }

  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > options.maxBytes) throw tooLarge();
      chunks.push(Buffer.from(chunk));
    }
  } catch (error) {
    if (error instanceof ProviderError) throw error;
    throw new ProviderError(`Downloading a Civitai image failed: ${describeFetchFailure(error)}`, { code: 'download_failed', retryable: true, cause: error });
  }
  const bytes = Buffer.concat(chunks);
  const declaredType = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  const contentType = sniffImageType(bytes) ?? (declaredType?.startsWith('image/') ? declaredType : 'application/octet-stream');
  return { bytes, contentType };
}

/** A fetch failure in words, without the URL (poll URLs carry the job token, blob URLs a signature). */
export function describeFetchFailure(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time';
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const code = cause && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
  return code ?? (error instanceof Error ? error.message : 'network error');
}
