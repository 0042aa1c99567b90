import { ProviderError } from '../../core/errors.ts';

/**
 * One image as a worker reported it: base64, a data URI or a link. `kind` is what the worker said;
 * `resolveImage` still recognises data URIs and links by their prefix, since workers mislabel.
 */
export interface ImageRef {
  kind: 'base64' | 'url';
  data: string;
}

export interface ParsedOutput {
  images: ImageRef[];
  /** Seed of each image, where the output tells it. */
  seeds: (number | undefined)[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const isSeed = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const looksLikeUrl = (value: string) => /^https?:\/\//i.test(value);
const ref = (data: string): ImageRef => ({ kind: looksLikeUrl(data) ? 'url' : 'base64', data });

/** Words with which workers say the input itself is wrong, so running it again cannot help. */
const INVALID_INPUT = /\binvalid\b|validation|\bmissing\b|\brequired\b|not a valid|does not meet|unexpected input|must be|not allowed|not supported|unsupported|content policy|\brefused\b|\brejected\b/i;

/** The message of a worker error, which RunPod hands over as text, JSON text, or an object. */
export function workerErrorText(error: unknown): string {
  if (typeof error === 'string') {
    const trimmed = error.trim();
    if (trimmed.startsWith('{')) {
      try {
        return workerErrorText(JSON.parse(trimmed));
      } catch {
        return trimmed;
      }
    }
    return trimmed;
  }
  if (isObject(error)) {
    for (const key of ['error_message', 'message', 'error', 'detail']) {
      if (error[key] !== undefined) return workerErrorText(error[key]);
    }
    return JSON.stringify(error);
  }
  if (Array.isArray(error)) return error.map(workerErrorText).join('; ');
  return error === undefined || error === null ? '' : String(error);
}

/** A worker's failure: retried on a fresh run unless the worker says the input is at fault. */
export function workerFailure(error: unknown, details?: unknown): ProviderError {
  const detail = details === undefined ? '' : workerErrorText(details);
  const text = [workerErrorText(error), detail].filter(Boolean).join(': ').slice(0, 1000) || 'no error message';
  const invalid = INVALID_INPUT.test(text);
  return new ProviderError(`The RunPod worker failed: ${text}`, {
    code: invalid ? 'invalid_input' : 'worker_failed',
    retryable: !invalid,
    resubmit: !invalid,
  });
}

/** A1111's `info` is JSON text (sometimes already parsed) whose `all_seeds` lists each image's seed. */
function a1111Seeds(info: unknown, count: number): (number | undefined)[] {
  let parsed: unknown = info;
  if (typeof info === 'string') {
    try {
      parsed = JSON.parse(info);
    } catch {
      return [];
    }
  }
  if (!isObject(parsed)) return [];
  const all = Array.isArray(parsed.all_seeds) ? parsed.all_seeds : [];
  const first = parsed.seed;
  return Array.from({ length: count }, (_, index) => {
    const seed = all[index];
    if (isSeed(seed)) return seed;
    return isSeed(first) ? first + index : undefined;
  });
}

/**
 * Reads the images (and seeds) out of a COMPLETED job's `output`, whichever worker made it:
 * worker-comfyui ≥5 `{images: [{filename, type, data}]}` and older `{message}`, worker-sdxl
 * `{images, image_url, seed}`, A1111 `{images, parameters, info}`, the custom worker's `{image_url}`
 * or `{image}`, or a bare string. An output that carries only `error` is the worker's failure.
 */
export function parseOutput(output: unknown): ParsedOutput {
  if (typeof output === 'string' && output.length > 0) return { images: [ref(output)], seeds: [] };
  if (!isObject(output)) {
    throw new ProviderError('The RunPod job completed without an output', { code: 'no_output', retryable: true, resubmit: true });
  }

  if (Array.isArray(output.images)) {
    const entries = output.images;
    if (entries.some(isObject)) {
      const images = entries.filter(isObject).flatMap((entry): ImageRef[] => {
        if (typeof entry.data !== 'string' || entry.data === '') return [];
        const kind = entry.type === 's3_url' || looksLikeUrl(entry.data) ? 'url' : 'base64';
        return [{ kind, data: entry.data }];
      });
      if (images.length > 0 || output.error === undefined) return { images, seeds: [] };
    } else {
      const images = entries.filter((entry): entry is string => typeof entry === 'string' && entry !== '').map(ref);
      if (images.length > 0 || output.error === undefined) {
        if (output.info !== undefined) return { images, seeds: a1111Seeds(output.info, images.length) };
        const seed = output.seed;
        return { images, seeds: images.map((_, index) => (isSeed(seed) ? seed + index : undefined)) };
      }
    }
  }

  for (const key of ['image_url', 'image', 'message']) {
    const value = output[key];
    if (typeof value === 'string' && value !== '') {
      return { images: [ref(value)], seeds: isSeed(output.seed) ? [output.seed] : [] };
    }
  }

  if (output.error !== undefined) throw workerFailure(output.error, output.details);
  const keys = Object.keys(output).slice(0, 10).join(', ') || 'none';
  throw new ProviderError(`The RunPod worker answered an output darkroom does not recognise (keys: ${keys})`, {
    code: 'invalid_output',
    retryable: false,
  });
}
