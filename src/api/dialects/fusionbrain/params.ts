import type { CreateJobInput } from '../../../core/request.ts';
import { findUnstorable } from '../../../core/storable.ts';
import { FUSIONBRAIN_LIMITS } from '../../../protocols/fusionbrain/index.ts';

/** Fusion Brain's default side when `width` or `height` is left out. */
const DEFAULT_SIDE = 1024;
/** darkroom's own limit for a style name (core/request.ts). */
const MAX_STYLE_LENGTH = 64;

/**
 * Image inputs as other services spell them. Fusion Brain has none, and other unknown fields are
 * ignored as it ignores them; an image is refused instead, since a picture generated without it
 * would be billed and shown as if it had been used.
 */
const IMAGE_KEYS = ['image', 'images', 'initImage', 'init_image', 'init_images', 'mask', 'maskImage', 'sourceImage', 'imageUrl', 'strength'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The `params` part of a run request as a darkroom job, or every reason it is refused. Unknown
 * fields are ignored, as the service does; older spellings (`num_images`, `negativePromptUnclip`)
 * are read too, because clients written for earlier versions of the API still send them.
 */
export function readRunParams(params: unknown): { input: CreateJobInput } | { problems: string[] } {
  if (!isRecord(params)) return { problems: ['params must be a JSON object'] };
  const { minSide, maxSide, sideMultiple, maxQueryLength, numImages } = FUSIONBRAIN_LIMITS;
  // What the database cannot store, named as the client wrote it (the core would name darkroom's fields).
  const problems = findUnstorable(params).map((part) => `${part.path.join('.')} ${part.message}`);

  if (params.type !== 'GENERATE') problems.push('type must be "GENERATE"');
  for (const key of IMAGE_KEYS) {
    if (params[key] !== undefined && params[key] !== null) problems.push(`${key} is not supported: Fusion Brain generates from text only`);
  }

  const count = params.numImages ?? params.num_images ?? numImages;
  if (count !== numImages) problems.push(`numImages must be ${numImages}`);

  const side = (name: 'width' | 'height'): number => {
    const value = params[name] ?? DEFAULT_SIDE;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < minSide || value > maxSide || value % sideMultiple !== 0) {
      problems.push(`${name} must be a multiple of ${sideMultiple} from ${minSide} to ${maxSide}`);
      return DEFAULT_SIDE;
    }
    return value;
  };
  const width = side('width');
  const height = side('height');

  const text = (name: string, value: unknown, maxLength: number): string | undefined => {
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' || value.length > maxLength) {
      problems.push(`${name} must be a string of at most ${maxLength} characters`);
      return undefined;
    }
    return value;
  };
  const style = text('style', params.style, MAX_STYLE_LENGTH);
  const negativePrompt = text('negativePromptDecoder', params.negativePromptDecoder ?? params.negativePromptUnclip, maxQueryLength);

  const query = isRecord(params.generateParams) ? params.generateParams.query : undefined;
  if (typeof query !== 'string' || query.trim() === '') {
    problems.push('generateParams.query is required');
  } else if (query.length > maxQueryLength) {
    problems.push(`generateParams.query must be at most ${maxQueryLength} characters (it has ${query.length})`);
  }

  if (problems.length > 0) return { problems };
  return {
    input: {
      prompt: query as string,
      width,
      height,
      numImages,
      ...(style ? { style } : {}),
      ...(negativePrompt ? { negativePrompt } : {}),
    },
  };
}
