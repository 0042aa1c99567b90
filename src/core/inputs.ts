import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { Caller } from './caller.ts';
import { badRequest, DarkroomError, notFound, type FieldProblem } from './errors.ts';
import { InputFetchError, type ImageFacts, type ImageInspector, type InputFetcher, type Upload, type UploadStore } from './ports/inputs.ts';
import type { Logger } from './ports/logger.ts';
import { EXTENSION_BY_TYPE, type ObjectStorage } from './ports/storage.ts';
import { DEFAULT_STRENGTH, MAX_INPUTS, type InputSource, type JobInput } from './request.ts';

/** Input images are held to the limits of outputs: a side from 64 to 2048 pixels. */
export const INPUT_SIDE = { min: 64, max: 2048 } as const;
const ACCEPTED_TYPES = 'a PNG, JPEG or WebP image';

export interface InputServiceDeps {
  uploads: UploadStore;
  storage: ObjectStorage;
  inspect: ImageInspector;
  fetcher: InputFetcher;
  /** Largest input image, however it arrives (UPLOAD_MAX_BYTES). */
  maxBytes: number;
  /** How long an upload lives unless a job uses it (UPLOAD_TTL). */
  uploadTtlSeconds: number;
  /** Longest fetch of an input URL. */
  fetchTimeoutMs: number;
  signedUrlTtlSeconds: number;
  logger: Logger;
}

export interface UploadView extends Omit<Upload, 'owner' | 'key' | 'createdAt'> {
  url?: string;
}

export interface InputView {
  role: JobInput['role'];
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  url: string;
}

/** One resolved source: its bytes checked and stored, waiting for a role. */
type Stored = Omit<JobInput, 'role'>;

/** The content-addressed key of input bytes: the same image is one object, however many jobs use it. */
const keyOf = (sha256: string, contentType: string) => `inputs/${sha256}.${EXTENSION_BY_TYPE[contentType] ?? 'bin'}`;

const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const DATA_URI = /^data:([^;,]*)(;base64)?,/i;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Uploads and input images: taken from an upload, a URL or base64, checked, and stored before any job is. */
export function makeInputService(deps: InputServiceDeps) {
  const { storage } = deps;

  /** What is wrong with `bytes` as an input image, or its facts. */
  async function inspect(bytes: Buffer, field: string, declared?: string): Promise<ImageFacts> {
    if (bytes.length === 0) throw badRequest(`${label(field)} is empty`, [{ field, message: `is empty; send ${ACCEPTED_TYPES}` }]);
    if (bytes.length > deps.maxBytes) throw tooLarge(field, bytes.length);
    const facts = await deps.inspect(bytes);
    if (!facts) throw badRequest(`${label(field)} is not ${ACCEPTED_TYPES}`, [{ field, message: `is not ${ACCEPTED_TYPES} (its bytes say so, whatever its name or type)` }]);
    if (declared !== undefined && declared !== facts.contentType) {
      throw badRequest(`${label(field)} is declared ${declared} but its bytes are ${facts.contentType}`, [
        { field, message: `is declared ${declared} but its bytes are ${facts.contentType}` },
      ]);
    }
    const { min, max } = INPUT_SIDE;
    if (facts.width < min || facts.height < min || facts.width > max || facts.height > max) {
      throw badRequest(`${label(field)} is ${facts.width}×${facts.height}; each side must be ${min} to ${max} pixels`, [
        { field, message: `is ${facts.width}×${facts.height} pixels; each side must be ${min} to ${max}` },
      ]);
    }
    return facts;
  }

  async function store(bytes: Buffer, facts: ImageFacts): Promise<Stored> {
    const sha256 = sha256Of(bytes);
    const key = keyOf(sha256, facts.contentType);
    await storage.put(key, bytes, facts.contentType);
    return { key, contentType: facts.contentType, width: facts.width, height: facts.height, bytes: bytes.length, sha256 };
  }

  function tooLarge(field: string, size: number): DarkroomError {
    return new DarkroomError(413, 'payload_too_large', `${label(field)} is ${size} bytes; input images may have at most ${deps.maxBytes} bytes`, [
      { field, message: `must be at most ${deps.maxBytes} bytes` },
    ]);
  }

  function decodeData(data: string, field: string): { bytes: Buffer; declared?: string } {
    const uri = DATA_URI.exec(data);
    const payload = (uri ? data.slice(uri[0].length) : data).replace(/\s+/g, '');
    if ((uri && !uri[2]) || !BASE64.test(payload)) {
      throw badRequest(`${label(field)} is not base64`, [{ field, message: 'must be base64 or a base64 data URI (data:image/png;base64,…)' }]);
    }
    if (Math.floor((payload.length * 3) / 4) > deps.maxBytes + 3) throw tooLarge(field, Math.floor((payload.length * 3) / 4));
    const declared = uri?.[1] ? uri[1].toLowerCase() : undefined;
    return { bytes: Buffer.from(payload, payload.includes('-') || payload.includes('_') ? 'base64url' : 'base64'), declared };
  }

  async function fetchUrl(url: string, field: string): Promise<Buffer> {
    try {
      return await deps.fetcher.fetch(url, { maxBytes: deps.maxBytes, signal: AbortSignal.timeout(deps.fetchTimeoutMs) });
    } catch (error) {
      if (!(error instanceof InputFetchError)) throw error;
      const tooBig = /larger than/.test(error.message);
      const problem = [{ field, message: `could not be fetched: ${error.message}` }];
      throw tooBig
        ? new DarkroomError(413, 'payload_too_large', `${label(field)} could not be fetched: ${error.message}`, problem)
        : badRequest(`${label(field)} could not be fetched: ${error.message}`, problem);
    }
  }

  async function ownUpload(caller: Caller, id: string): Promise<Upload> {
    const upload = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) ? await deps.uploads.get(id) : null;
    if (!upload || (caller.owner !== null && upload.owner !== caller.owner) || upload.expiresAt.getTime() <= Date.now()) throw notFound('Upload', id);
    return upload;
  }

  /** Deletes the stored input bytes among `keys` that no live upload and no job uses any more (inputs are shared by content). */
  async function deleteUnused(keys: string[], now = new Date()): Promise<void> {
    const distinct = [...new Set(keys)];
    const unused = (await Promise.all(distinct.map(async (key) => ((await deps.uploads.isKeyInUse(key, now)) ? null : key)))).filter((key) => key !== null);
    await storage.delete(unused);
  }

  /** One source, as bytes stored under their hash. */
  async function resolveSource(caller: Caller, source: InputSource, field: string): Promise<Stored> {
    if (source.uploadId !== undefined) {
      const upload = await ownUpload(caller, source.uploadId).catch((error: unknown) => {
        if (error instanceof DarkroomError && error.status === 404) {
          throw badRequest(`${label(`${field}/uploadId`)} names no upload of this caller (or it expired)`, [
            { field: `${field}/uploadId`, message: `no upload ${source.uploadId} of this caller exists (uploads expire after a while unless a job uses them)` },
          ]);
        }
        throw error;
      });
      return { key: upload.key, contentType: upload.contentType, width: upload.width, height: upload.height, bytes: upload.bytes, sha256: upload.sha256 };
    }
    if (source.url !== undefined) {
      const bytes = await fetchUrl(source.url, `${field}/url`);
      return store(bytes, await inspect(bytes, `${field}/url`));
    }
    const { bytes, declared } = decodeData(source.data ?? '', `${field}/data`);
    return store(bytes, await inspect(bytes, `${field}/data`, declared));
  }

  return {
    limits: { maxBytes: deps.maxBytes },

    /** Checks what can be checked without fetching anything: counts, roles, one source each, URLs darkroom may fetch. */
    async precheck(sources: InputSource[], strength: number | undefined, field: string): Promise<void> {
      const problems: FieldProblem[] = [];
      if (sources.length > MAX_INPUTS) problems.push({ field: `${field}/images`, message: `must have at most ${MAX_INPUTS} images` });
      const count = (role: string) => sources.filter((source) => source.role === role).length;
      if (count('init') > 1) problems.push({ field: `${field}/images`, message: 'has more than one init image' });
      if (count('mask') > 1) problems.push({ field: `${field}/images`, message: 'has more than one mask' });
      if (count('mask') > 0 && count('init') === 0) problems.push({ field: `${field}/images`, message: 'has a mask but no init image: a mask says which pixels of the init image may change' });
      if (strength !== undefined && count('init') === 0) problems.push({ field: `${field}/strength`, message: 'needs an init image (images with role "init")' });
      for (const [index, source] of sources.entries()) {
        const at = `${field}/images/${index}`;
        const given = [source.uploadId, source.url, source.data].filter((value) => value !== undefined).length;
        if (given !== 1) problems.push({ field: at, message: 'must have exactly one of uploadId, url or data' });
        else if (source.url !== undefined) {
          const refusal = await deps.fetcher.refusal(source.url);
          if (refusal) problems.push({ field: `${at}/url`, message: refusal });
        }
      }
      const first = problems[0];
      if (first) throw badRequest(`${label(first.field)} ${first.message}`, problems);
    },

    /**
     * The job's inputs, each fetched or decoded once, checked and stored; `cache` shares the work
     * between the jobs of a batch that give the same source.
     */
    async resolve(caller: Caller, sources: InputSource[], field: string, cache: Map<string, Promise<Stored>>): Promise<JobInput[]> {
      const inputs = await Promise.all(
        sources.map(async (source, index) => {
          const id = JSON.stringify([source.uploadId, source.url, source.data]);
          let stored = cache.get(id);
          if (!stored) {
            stored = resolveSource(caller, source, `${field}/images/${index}`);
            cache.set(id, stored);
          }
          return { role: source.role, ...(await stored) };
        }),
      );
      const init = inputs.find((input) => input.role === 'init');
      const maskIndex = inputs.findIndex((input) => input.role === 'mask');
      const mask = inputs[maskIndex];
      if (init && mask && (init.width !== mask.width || init.height !== mask.height)) {
        const at = `${field}/images/${maskIndex}`;
        throw badRequest(`${label(at)} is ${mask.width}×${mask.height} but the init image is ${init.width}×${init.height}; a mask must match its init image`, [
          { field: at, message: `is ${mask.width}×${mask.height}; it must be the init image's size, ${init.width}×${init.height}` },
        ]);
      }
      return inputs;
    },

    /** The strength a request with `sources` keeps: given, or the default when there is an init image. */
    strengthOf(sources: InputSource[], strength: number | undefined): number | undefined {
      return sources.some((source) => source.role === 'init') ? (strength ?? DEFAULT_STRENGTH) : undefined;
    },

    async views(inputs: JobInput[] | undefined): Promise<InputView[]> {
      return Promise.all(
        (inputs ?? []).map(async ({ key, ...input }) => ({ ...input, url: (await storage.signedUrl(key, deps.signedUrlTtlSeconds)).url })),
      );
    },

    async upload(caller: Caller, bytes: Buffer, declared?: string): Promise<UploadView> {
      const stored = await store(bytes, await inspect(bytes, 'file', declared));
      const now = Date.now();
      const upload: Upload = { id: uuidv7(), owner: caller.owner, ...stored, createdAt: new Date(now), expiresAt: new Date(now + deps.uploadTtlSeconds * 1000) };
      await deps.uploads.insert(upload);
      return uploadView(upload);
    },

    async getUpload(caller: Caller, id: string): Promise<UploadView> {
      const upload = await ownUpload(caller, id);
      return { ...uploadView(upload), url: (await storage.signedUrl(upload.key, deps.signedUrlTtlSeconds)).url };
    },

    /**
     * Up to `limit` expired uploads: their bytes go unless a live upload or a job uses them, then
     * their records. In that order, so a sweep stopped in between leaves records of expired uploads
     * (never served) that the next sweep removes, rather than bytes nothing refers to.
     */
    async sweep(now = new Date(), limit = 500): Promise<number> {
      const expired = await deps.uploads.listExpired(now, limit);
      if (expired.length === 0) return 0;
      await deleteUnused(
        expired.map((upload) => upload.key),
        now,
      );
      await deps.uploads.delete(expired.map((upload) => upload.id));
      return expired.length;
    },

    deleteUnused,
  };

  function uploadView(upload: Upload): UploadView {
    const { id, contentType, width, height, bytes, sha256, expiresAt } = upload;
    return { id, contentType, width, height, bytes, sha256, expiresAt };
  }
}

export type InputService = ReturnType<typeof makeInputService>;

/** A JSON pointer as the words of a message: `/images/0/url` → `images[0].url`. */
function label(field: string): string {
  return field.replace(/^\//, '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replaceAll('/', '.') || 'the image';
}
