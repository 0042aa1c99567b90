import { ProviderError } from '../../core/errors.ts';
import { sniffImageType } from '../../protocols/http/index.ts';

const DATA_URI = /^data:[^,]*?;base64,/i;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * One entry of `result.files`: plain base64 or a `data:…;base64,` URI. The size is checked on the
 * encoded text before anything is decoded, so an oversized answer costs no second copy in memory.
 */
export function decodeImageFile(file: string, maxBytes: number): { bytes: Buffer; contentType: string } {
  const prefix = DATA_URI.exec(file);
  const encoded = (prefix ? file.slice(prefix[0].length) : file).replace(/\s+/g, '');
  if (!BASE64.test(encoded)) {
    // The result can be read only once, so the only way to an image is a new generation.
    throw new ProviderError('Fusion Brain returned a file that is not base64 data', {
      code: 'invalid_output',
      retryable: true,
      resubmit: true,
    });
  }
  const padding = encoded.endsWith('==') ? 2 : encoded.endsWith('=') ? 1 : 0;
  const size = Math.floor((encoded.length * 3) / 4) - padding;
  if (size > maxBytes) {
    throw new ProviderError(
      `Fusion Brain returned an image of ${size} bytes, more than this darkroom accepts (PROVIDER_MAX_IMAGE_BYTES=${maxBytes})`,
      { code: 'output_too_large', retryable: false },
    );
  }
  const bytes = Buffer.from(encoded, 'base64');
  const contentType = sniffImageType(bytes);
  if (!contentType) {
    throw new ProviderError('Fusion Brain returned a file that is not a PNG, JPEG, WebP or GIF image', {
      code: 'invalid_output',
      retryable: true,
      resubmit: true,
    });
  }
  return { bytes, contentType };
}
