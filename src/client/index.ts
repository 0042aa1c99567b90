import type { Static } from 'typebox';
import { TERMINAL_STATUSES } from '../protocols/native/jobs.ts';
import type { BatchBody, BatchResponse, CreateJobSchema, ImageLinkResponse, InputSchema, InputSourceSchema, JobSchema, JobStreamEventSchema, ListQuery, ListResponse, ProblemSchema, UploadSchema } from '../protocols/native/schemas.ts';
import { parseEventStream } from './sse.ts';

/**
 * A typed client for darkroom's native API (`/api/v1`). Its types are the server's own TypeBox
 * schemas, so a change to the API is a type error here, not a surprise at run time. It needs only
 * `fetch` and web streams: Node 20+, browsers, Deno, Bun.
 */

/** A job as the API answers it, with signed links to its images once it has succeeded. */
export type Job = Static<typeof JobSchema>;
export type JobStatus = Job['status'];
/** What `create` takes: a prompt and the generation options, and input images with their `strength`. */
export type CreateJobInput = Static<typeof CreateJobSchema>;
/** One input image of a request: its role and an `uploadId`, a `url` or base64 `data`. */
export type InputSource = Static<typeof InputSourceSchema>;
export type InputRole = InputSource['role'];
/** An input image stored with a job, with a signed link. */
export type JobInput = Static<typeof InputSchema>;
/** An uploaded image, as `uploads.create` answers it. */
export type Upload = Omit<Static<typeof UploadSchema>, 'url'>;
/** An uploaded image with a signed link, as `uploads.get` answers it. */
export type UploadWithLink = Upload & { url: string };
/** The image types darkroom takes as input. */
export type ImageContentType = 'image/png' | 'image/jpeg' | 'image/webp';
/** What `batch` takes: `prompts` (one job each) or `jobs`, plus options shared by every job. */
export type BatchInput = Static<typeof BatchBody>;
export type BatchResult = Static<typeof BatchResponse>;
export type ListOptions = Static<typeof ListQuery>;
export type JobPage = Static<typeof ListResponse>;
export type ImageLink = Static<typeof ImageLinkResponse>;
/** RFC 9457 problem details: every error answer of the native API. */
export type Problem = Static<typeof ProblemSchema>;
/** One live event of a job: `status`, `stage`, `progress`, `image` or `failover` (see `events`). */
export type JobStreamEvent = Static<typeof JobStreamEventSchema>;

/** Where a job stands while it runs: what `wait` reports through `onProgress`. */
export type JobProgress = Pick<Job, 'id' | 'status' | 'stage' | 'progress' | 'queuePosition'>;

export interface DarkroomOptions {
  /** darkroom's address, e.g. `http://127.0.0.1:3000` (without `/api/v1`). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Another fetch (a proxy agent, a test double); the global one by default. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface CreateOptions extends RequestOptions {
  /**
   * Makes the call safe to repeat: the same key and input within 24 hours answer the same job(s)
   * instead of creating more; the same key with another input is refused (422).
   */
  idempotencyKey?: string;
}

export interface WaitOptions extends RequestOptions {
  /** Told whenever the job's status, stage, progress or queue position changes. */
  onProgress?: (progress: JobProgress) => void;
  /** Gives up after this long, rejecting with a `TimeoutError` DOMException. */
  timeoutMs?: number;
}

export interface EventsOptions extends RequestOptions {
  /** Resume after this event id (events up to it are not sent again). */
  lastEventId?: number;
}

export interface DownloadOptions extends RequestOptions {
  /** The original (default) or its 128×128 WebP thumbnail. */
  type?: 'original' | 'thumbnail';
}

/** An error answer of the API, with its problem details. */
export class DarkroomApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.title}: ${problem.detail}`);
    this.name = 'DarkroomApiError';
  }
}

/** The server answered an event-stream request with something else (a proxy in the way, an old server). */
class EventStreamUnavailable extends Error {
  override readonly name = 'EventStreamUnavailable';
}

/** Reconnections in a row after which `events` gives up. */
const MAX_RECONNECTS = 3;
const RECONNECT_DELAY_MS = 500;
/** Longest single long poll of the polling fallback (the API allows up to 60 s). */
const LONG_POLL_SECONDS = 30;

const isTerminal = (status: JobStatus) => TERMINAL_STATUSES.includes(status);

const IMAGE_SIGNATURES: readonly { type: ImageContentType; matches(head: Uint8Array): boolean }[] = [
  { type: 'image/png', matches: (head) => [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((byte, index) => head[index] === byte) },
  { type: 'image/jpeg', matches: (head) => head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff },
  { type: 'image/webp', matches: (head) => ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP' },
];

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/**
 * The image type of `bytes` by its signature, for an upload whose type was not given. The server
 * sniffs again and has the last word; this only picks the Content-Type to declare.
 */
async function sniffImageType(bytes: Uint8Array | Blob): Promise<ImageContentType | undefined> {
  const head = bytes instanceof Blob ? new Uint8Array(await bytes.slice(0, 12).arrayBuffer()) : bytes.subarray(0, 12);
  return IMAGE_SIGNATURES.find((signature) => signature.matches(head))?.type;
}

/** A multipart form whose part `file` holds `bytes`, declaring no type (the server reads it from the bytes). */
function formWithFile(bytes: Uint8Array | Blob): FormData {
  const form = new FormData();
  form.append('file', bytes instanceof Blob ? bytes.slice(0, bytes.size, '') : new Blob([bytes]), 'image');
  return form;
}

/** Images uploaded for use as job inputs (`images: [{role, uploadId}]`). */
export interface Uploads {
  /**
   * Uploads one PNG, JPEG or WebP image. Its type is `contentType`, else read from its first bytes
   * (a Blob's own type is a guess from a file name, and is not used); the server checks it either way.
   * @throws DarkroomApiError 400 for bytes that are not such an image (or a type that lies about them), 413 for one too large.
   */
  create(bytes: Uint8Array | Blob, contentType?: ImageContentType, options?: RequestOptions): Promise<Upload>;
  /**
   * An upload with a fresh signed link to its bytes.
   * @throws DarkroomApiError 404 for an unknown, expired or another caller's upload.
   */
  get(id: string, options?: RequestOptions): Promise<UploadWithLink>;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class Darkroom {
  readonly #baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;

  /** Images to use as job inputs: upload one, read one back. */
  readonly uploads: Uploads = {
    create: async (bytes, contentType, options = {}) => {
      const declared = contentType ?? (await sniffImageType(bytes));
      // Bytes of no known image type go as a form's file part without a type of its own: the server
      // reads them and says what is wrong with them, rather than refusing the declared type.
      const response = declared
        ? await this.#send('POST', '/api/v1/uploads', { raw: bytes, headers: { 'content-type': declared }, signal: options.signal })
        : await this.#send('POST', '/api/v1/uploads', { raw: formWithFile(bytes), signal: options.signal });
      return (await response.json()) as Upload;
    },
    get: (id, options = {}) => this.#json<UploadWithLink>('GET', `/api/v1/uploads/${encodeURIComponent(id)}`, options),
  };

  /**
   * @param options `baseUrl` of the darkroom server; optionally an `apiKey` and a `fetch` to use.
   * @example const darkroom = new Darkroom({ baseUrl: 'http://127.0.0.1:3000' });
   */
  constructor(options: DarkroomOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * Creates one job: text-to-image, or from input images (`images`, e.g. `[{ role: 'init', uploadId }]`,
   * with `strength`). It is queued at once; use `wait` for its result.
   * @throws DarkroomApiError 400 for invalid input, 422 for an idempotency key reused with other input.
   */
  create(input: CreateJobInput, options: CreateOptions = {}): Promise<Job> {
    return this.#json<Job>('POST', '/api/v1/jobs', { body: input, ...options });
  }

  /**
   * Creates 1 to 100 jobs at once, all or nothing (one invalid job refuses the whole batch).
   * @throws DarkroomApiError 400 for invalid input, 422 for an idempotency key reused with other input.
   */
  batch(input: BatchInput, options: CreateOptions = {}): Promise<BatchResult> {
    return this.#json<BatchResult>('POST', '/api/v1/jobs/batch', { body: input, ...options });
  }

  /**
   * Reads a job as it is now.
   * @throws DarkroomApiError 404 when there is no such job.
   */
  get(id: string, options: RequestOptions = {}): Promise<Job> {
    return this.#json<Job>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`, options);
  }

  /**
   * One page of jobs, newest first. Pass the page's `nextCursor` as `cursor` for the next page;
   * it is null on the last one.
   */
  list(query: ListOptions = {}, options: RequestOptions = {}): Promise<JobPage> {
    const search = new URLSearchParams();
    if (query.status !== undefined) search.set('status', query.status);
    if (query.limit !== undefined) search.set('limit', String(query.limit));
    if (query.cursor !== undefined) search.set('cursor', query.cursor);
    const suffix = search.size > 0 ? `?${search}` : '';
    return this.#json<JobPage>('GET', `/api/v1/jobs${suffix}`, options);
  }

  /**
   * Cancels a queued or running job, here and at its provider.
   * @throws DarkroomApiError 409 when the job has already finished, 404 when there is no such job.
   */
  cancel(id: string, options: RequestOptions = {}): Promise<Job> {
    return this.#json<Job>('POST', `/api/v1/jobs/${encodeURIComponent(id)}/cancel`, options);
  }

  /**
   * Waits until the job has finished (succeeded, failed, cancelled or expired) and returns it. Follows
   * the job's live events, and falls back to long polling when no event stream gets through (a proxy
   * that buffers, say). A finished job that did not succeed is returned, not thrown: look at `status`.
   * @throws the abort reason when `signal` aborts; a `TimeoutError` DOMException after `timeoutMs`.
   */
  async wait(id: string, options: WaitOptions = {}): Promise<Job> {
    const signals = [options.signal, options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs)];
    const present = signals.filter((signal): signal is AbortSignal => signal !== undefined);
    const signal = present.length > 0 ? AbortSignal.any(present) : undefined;
    let last: JobProgress | undefined;
    const report = (progress: JobProgress) => {
      const changed = !last || (['status', 'stage', 'progress', 'queuePosition'] as const).some((field) => last?.[field] !== progress[field]);
      last = progress;
      if (changed) options.onProgress?.(progress);
    };

    try {
      let current: JobProgress = { id, status: 'queued', stage: null, progress: null, queuePosition: null };
      for await (const event of this.events(id, { signal })) {
        if (event.type === 'image') continue;
        current = {
          ...current,
          status: event.status,
          stage: event.stage,
          ...(event.type === 'progress' ? { progress: event.progress, queuePosition: event.queuePosition } : {}),
        };
        report(current);
      }
      return await this.get(id, { signal });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof DarkroomApiError) throw error;
    }

    for (;;) {
      const job = await this.#json<Job>('GET', `/api/v1/jobs/${encodeURIComponent(id)}?wait=${LONG_POLL_SECONDS}`, { signal }).catch((error: unknown) => {
        throw signal?.aborted ? signal.reason : error;
      });
      report({ id: job.id, status: job.status, stage: job.stage, progress: job.progress, queuePosition: job.queuePosition });
      if (isTerminal(job.status)) return job;
    }
  }

  /**
   * The job's live events in order: `status` (the first is its creation, the last is terminal),
   * `stage`, `progress` and `image` (with signed links). Ends after the terminal status. A dropped
   * connection is resumed where it stopped (Last-Event-ID), so no event is lost or repeated.
   * @throws DarkroomApiError 404 when there is no such job.
   */
  async *events(id: string, options: EventsOptions = {}): AsyncGenerator<JobStreamEvent> {
    const { signal } = options;
    let lastEventId = options.lastEventId;
    let failures = 0;
    for (;;) {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
      try {
        const response = await this.#send('GET', `/api/v1/jobs/${encodeURIComponent(id)}/events`, { headers, signal });
        if (!response.body || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
          await response.body?.cancel();
          throw new EventStreamUnavailable(`GET ${id}/events answered ${response.headers.get('content-type') ?? 'no content type'}, not an event stream`);
        }
        for await (const message of parseEventStream(response.body)) {
          const event = JSON.parse(message.data) as JobStreamEvent;
          failures = 0;
          lastEventId = event.id;
          yield event;
          if (event.type === 'status' && isTerminal(event.status)) return;
        }
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (error instanceof DarkroomApiError || error instanceof EventStreamUnavailable) throw error;
        failures += 1;
        if (failures > MAX_RECONNECTS) throw error;
      }
      // The stream ended before the job did (a server restarting, a proxy timeout): resume it.
      await sleep(RECONNECT_DELAY_MS * Math.max(1, failures), signal);
    }
  }

  /**
   * A fresh signed link to one image of a succeeded job.
   * @throws DarkroomApiError 409 while the job has not succeeded, 404 for an unknown job or image.
   */
  imageLink(id: string, index: number, options: DownloadOptions = {}): Promise<ImageLink> {
    const type = options.type ?? 'original';
    return this.#json<ImageLink>('GET', `/api/v1/jobs/${encodeURIComponent(id)}/images/${index}?type=${type}`, options);
  }

  /**
   * The bytes of one image of a succeeded job (`contentType` says whether PNG, JPEG or WebP).
   * @throws DarkroomApiError 409 while the job has not succeeded, 404 for an unknown job or image.
   */
  async download(id: string, index: number, options: DownloadOptions = {}): Promise<{ bytes: Uint8Array; contentType: string }> {
    const link = await this.imageLink(id, index, options);
    const response = await this.#fetch(link.url, { signal: options.signal });
    if (!response.ok) throw await apiError(response);
    return { bytes: new Uint8Array(await response.arrayBuffer()), contentType: response.headers.get('content-type') ?? link.contentType };
  }

  /** Sends one request with the client's headers; an error answer is thrown as DarkroomApiError. */
  /** `body` is sent as JSON, `raw` as it is (with the content type `headers` give it, or a form's own). */
  async #send(
    method: string,
    path: string,
    init: { body?: unknown; raw?: Uint8Array | Blob | FormData; headers?: Record<string, string>; signal?: AbortSignal; idempotencyKey?: string },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    if (init.idempotencyKey !== undefined) headers['idempotency-key'] = init.idempotencyKey;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const response = await this.#fetch(`${this.#baseUrl}${path}`, {
      method,
      headers,
      body: init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
      signal: init.signal,
    });
    if (!response.ok) throw await apiError(response);
    return response;
  }

  /** `#send`, reading the answer as JSON of the type the route's schema promises. */
  async #json<T>(method: string, path: string, init: { body?: unknown; signal?: AbortSignal; idempotencyKey?: string }): Promise<T> {
    const response = await this.#send(method, path, init);
    return (await response.json()) as T;
  }
}

/** An error answer as DarkroomApiError; a body that is not problem details becomes one. */
async function apiError(response: Response): Promise<DarkroomApiError> {
  const text = await response.text().catch(() => '');
  let problem: Problem | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (typeof parsed.title === 'string' && typeof parsed.detail === 'string') {
      problem = { ...parsed, type: parsed.type ?? 'about:blank', title: parsed.title, detail: parsed.detail, status: response.status, code: parsed.code ?? 'http_error' };
    }
  } catch {
    // Not JSON (a proxy's error page): described below.
  }
  problem ??= {
    type: 'about:blank',
    title: response.statusText || 'Error',
    status: response.status,
    detail: text.slice(0, 500) || `HTTP ${response.status}`,
    code: 'http_error',
  };
  return new DarkroomApiError(response.status, problem);
}
