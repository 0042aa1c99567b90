import multipart from '@fastify/multipart';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { sniffImageType } from '../../../protocols/http/index.ts';
import { MAX_INPUTS } from '../../../core/request.ts';
import { DialectError } from '../../http/errors.ts';

/** Most files of one form: darkroom's input images of one job (the images and the mask together). */
const MAX_FILES = MAX_INPUTS;
const FIELD_BYTES = 64 * 1024;
const ACCEPTED_TYPES = ['image/png', 'image/jpeg', 'image/webp'];

export interface Upload {
  bytes: Buffer;
  width: number;
  height: number;
}

export interface ImageForm {
  /** The text parts by name (the last of a repeated name). */
  fields: Record<string, string>;
  images: Upload[];
  /** darkroom's mask: white where the image may change (OpenAI's transparent pixels). */
  mask?: Upload;
}

const refusal = (param: string, message: string, status = 400, code = 'invalid_value') => new DialectError(status, message, { extra: { param, code } });

const LIMITS = { files: MAX_FILES, fieldSize: FIELD_BYTES, fields: 30, parts: 50 };

/** multipart/form-data for this dialect's scope only. */
export async function registerImageForms(app: FastifyInstance): Promise<void> {
  await app.register(multipart, { limits: LIMITS });
}

/** `image`, `image[]` (how the openai package sends a list) and `image[3]` are all images. */
const isImagePart = (name: string) => /^image(?:\[\d*\])?$/.test(name);

async function readUpload(param: string, bytes: Buffer): Promise<Upload> {
  // sharp (libvips) loads with the first image, not with the server.
  const { default: sharp } = await import('sharp');
  const type = sniffImageType(bytes);
  if (!type || !ACCEPTED_TYPES.includes(type)) {
    throw refusal(param, `Invalid '${param}': unsupported file format. Supported formats are: 'png', 'jpeg', 'webp'.`, 400, 'invalid_image_format');
  }
  const metadata = await sharp(bytes)
    .metadata()
    .catch(() => undefined);
  if (!metadata?.width || !metadata.height) throw refusal(param, `Invalid '${param}': the file is not a readable image.`, 400, 'invalid_image');
  return { bytes, width: metadata.width, height: metadata.height };
}

/**
 * OpenAI's mask marks with full transparency the pixels to change; darkroom's is white there and
 * black elsewhere. The mask must be a PNG with an alpha channel and the init image's size, as
 * OpenAI requires.
 */
async function readMask(bytes: Buffer, init: Upload | undefined): Promise<Upload> {
  const { default: sharp } = await import('sharp');
  const upload = await readUpload('mask', bytes);
  const metadata = await sharp(bytes).metadata();
  if (sniffImageType(bytes) !== 'image/png' || !metadata.hasAlpha) {
    throw refusal('mask', "Invalid 'mask': the mask must be a PNG with an alpha channel (transparent where the image should change).", 400, 'invalid_image_format');
  }
  if (init && (init.width !== upload.width || init.height !== upload.height)) {
    throw refusal('mask', `Invalid 'mask': the mask is ${upload.width}x${upload.height} and the image ${init.width}x${init.height}; they must be the same size.`, 400, 'invalid_image_dimensions');
  }
  const converted = await sharp(bytes).ensureAlpha().extractChannel(3).negate().png().toBuffer();
  return { bytes: converted, width: upload.width, height: upload.height };
}

/** Reads an edit or variation form: its text parts and its images, each checked to be PNG, JPEG or WebP. */
export async function readImageForm(request: FastifyRequest, maxBytes: number): Promise<ImageForm> {
  if (!request.isMultipart()) throw new DialectError(415, 'Send the request as multipart/form-data, with the image as a file part', { extra: { param: null, code: 'unsupported_media_type' } });
  const fields: Record<string, string> = {};
  const images: Buffer[] = [];
  let mask: Buffer | undefined;
  try {
    // Files up to darkroom's input limit (UPLOAD_MAX_BYTES), read when the request comes.
    for await (const part of request.parts({ limits: { ...LIMITS, fileSize: maxBytes } })) {
      if (part.type === 'file') {
        if (isImagePart(part.fieldname)) images.push(await part.toBuffer());
        else if (part.fieldname === 'mask') mask = await part.toBuffer();
        else {
          await part.toBuffer();
          throw refusal(part.fieldname, `Unknown parameter: '${part.fieldname}'.`, 400, 'unknown_parameter');
        }
        continue;
      }
      if (part.valueTruncated) throw refusal(part.fieldname, `Invalid '${part.fieldname}': longer than ${FIELD_BYTES} bytes.`);
      fields[part.fieldname] = String(part.value);
    }
  } catch (error) {
    if (error instanceof DialectError) throw error;
    const { code, statusCode } = error as FastifyError;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw refusal('image', `Invalid 'image': a file is larger than ${maxBytes} bytes.`, 413, 'file_too_large');
    if (code === 'FST_FILES_LIMIT') throw refusal('image', `Invalid 'image': darkroom takes at most ${MAX_FILES} files (images and mask) per request.`, 400);
    if (statusCode === 413) throw refusal('image', 'The form has too many parts.', 413, 'request_too_large');
    throw new DialectError(400, `The multipart body is malformed: ${error instanceof Error ? error.message : 'unreadable'}`, { extra: { param: null, code: 'invalid_multipart' } });
  }
  const uploads: Upload[] = [];
  for (const [index, bytes] of images.entries()) uploads.push(await readUpload(images.length > 1 ? `image[${index}]` : 'image', bytes));
  return { fields, images: uploads, ...(mask ? { mask: await readMask(mask, uploads[0]) } : {}) };
}
