import type { ImageFacts } from '../core/ports/inputs.ts';
import { THUMBNAIL_SIZE, type PreparedImage } from '../core/ports/storage.ts';

const INPUT_TYPES: Record<string, ImageFacts['contentType']> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** Inputs are decoded whole only up to this many pixels; larger ones are refused by their size anyway. */
const DECODE_LIMIT = 2048 * 2048;

/**
 * An input image's type and size, or null when it is not a whole PNG, JPEG or WebP: the header is
 * read first, then the pixels decoded, so a truncated file is refused at submission rather than
 * failing the job later.
 */
export async function inspectImage(bytes: Buffer): Promise<ImageFacts | null> {
  // sharp (libvips) loads with the first image, not with the server.
  const { default: sharp } = await import('sharp');
  try {
    const image = sharp(bytes, { failOn: 'error' });
    const { format, width, height, pages } = await image.metadata();
    const contentType = INPUT_TYPES[format ?? ''];
    // An animated WebP is not one picture to start from.
    if (!contentType || !width || !height || (pages ?? 1) > 1) return null;
    if (width * height <= DECODE_LIMIT) await image.raw().toBuffer();
    return { contentType, width, height };
  } catch {
    return null;
  }
}

/** Reads an original's real dimensions and makes its 128×128 WebP thumbnail (cover: cropped, never stretched). */
export async function prepareImage(original: Buffer): Promise<PreparedImage> {
  const { default: sharp } = await import('sharp');
  const image = sharp(original, { failOn: 'error' });
  const { width, height } = await image.metadata();
  if (!width || !height) throw new Error('The provider returned an image without dimensions');
  const thumbnail = await image
    .clone()
    .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' })
    .webp({ quality: 80 })
    .toBuffer();
  return { width, height, thumbnail };
}
