import sharp from 'sharp';
import { THUMBNAIL_SIZE, type PreparedImage } from '../core/ports/storage.ts';

/** Reads an original's real dimensions and makes its 128×128 WebP thumbnail (cover: cropped, never stretched). */
export async function prepareImage(original: Buffer): Promise<PreparedImage> {
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
