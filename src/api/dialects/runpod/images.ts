import { INPUT_SIDE } from '../../../core/inputs.ts';
import type { InputSource } from '../../../core/request.ts';
import { sniffImageType } from '../../../protocols/http/index.ts';

/** An input image as a worker input carries it: base64 text (or a data URI) under a field of the request. */
export interface ImageField {
  role: 'init' | 'mask';
  /** The field as the client wrote it, for messages: `input.init_images[0]`. */
  path: string;
  text: string;
  /** A1111's `inpainting_mask_invert: 1`: the mask's black pixels are the ones to repaint. */
  invert?: boolean;
}

export interface DecodedImages {
  sources: InputSource[];
  /** The init image's size, for a ComfyUI graph that samples at the size of the image it loads. */
  init?: { width: number; height: number };
}

/** What the core stores: the types it sniffs and keeps. */
const ACCEPTED_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
const DATA_URI = /^data:[^,]{0,100};base64,/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/**
 * The image's size once its pixels decode, or undefined for a damaged image. Headers alone would let
 * a truncated file through, to fail on the provider after the job was accepted; pictures too large
 * for darkroom are not decoded here (the core refuses them, by their header, with its own message).
 */
async function decodedSize(bytes: Buffer): Promise<{ width: number; height: number } | undefined> {
  // sharp (libvips) loads with the first image, not with the server.
  const { default: sharp } = await import('sharp');
  try {
    const { width, height } = await sharp(bytes).metadata();
    if (!width || !height) return undefined;
    if (width <= INPUT_SIDE.max && height <= INPUT_SIDE.max) await sharp(bytes, { failOn: 'truncated' }).raw().toBuffer();
    return { width, height };
  } catch {
    return undefined;
  }
}

/**
 * Checks each image the way its worker would decode it (base64, optionally a data URI; whitespace
 * ignored as Python's decoder does) and that the bytes are an image darkroom keeps, collecting one
 * problem per bad field. A mask whose size differs from the init image's is resized to it, as A1111
 * and ComfyUI both do when they apply it; an inverted A1111 mask is turned into darkroom's (white
 * repaints).
 */
export async function decodeImages(fields: ImageField[], problems: string[]): Promise<DecodedImages> {
  const decoded: { field: ImageField; bytes: Buffer; width: number; height: number }[] = [];
  for (const field of fields) {
    const text = field.text.replace(DATA_URI, '').replace(/\s+/g, '');
    if (text === '' || !BASE64.test(text)) {
      problems.push(`${field.path} is not base64 image data`);
      continue;
    }
    const bytes = Buffer.from(text, 'base64');
    const type = sniffImageType(bytes);
    if (!type || !ACCEPTED_TYPES.includes(type)) {
      problems.push(`${field.path} is not a PNG, JPEG or WebP image${type ? ` (it is ${type})` : ''}`);
      continue;
    }
    const size = await decodedSize(bytes);
    if (!size) {
      problems.push(`${field.path} is a damaged ${type} image`);
      continue;
    }
    decoded.push({ field, bytes, ...size });
  }
  if (problems.length > 0) return { sources: [] };

  const init = decoded.find((image) => image.field.role === 'init');
  const { default: sharp } = await import('sharp');
  const sources: InputSource[] = [];
  for (const image of decoded) {
    let bytes = image.bytes;
    if (image.field.role === 'mask' && init && (image.field.invert || image.width !== init.width || image.height !== init.height)) {
      let mask = sharp(bytes).resize(init.width, init.height, { fit: 'fill' });
      if (image.field.invert) mask = mask.negate({ alpha: false });
      bytes = await mask.png().toBuffer();
    }
    sources.push({ role: image.field.role, data: bytes.toString('base64') });
  }
  return { sources, ...(init ? { init: { width: init.width, height: init.height } } : {}) };
}
