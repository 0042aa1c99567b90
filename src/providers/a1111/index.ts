import { randomUUID } from 'node:crypto';
import { ProviderError } from '../../core/errors.ts';
import { fleetMemberOf, makeFleet, type FleetMember } from '../../core/fleet.ts';
import type { PollResult, Provider, ProviderCapabilities, ProviderContext, ProviderModule, ProviderOutput } from '../../core/ports/provider.ts';
import { inputOf, type GenerationRequest } from '../../core/request.ts';
import { a1111ErrorMessage, a1111Sampler, seedsOfInfo, type A1111Img2ImgRequest, type A1111ProgressResponse, type A1111TaskProgressResponse, type A1111Txt2ImgRequest } from '../../protocols/a1111/index.ts';
import { parseRetryAfter, sniffImageType } from '../../protocols/http/index.ts';

export interface A1111ProviderOptions {
  /** Each server's base URL; credentials in a URL become its HTTP Basic auth (--api-auth). */
  urls: string[];
  /** Longest one generation may take on a server. */
  generationTimeoutMs: number;
  /** How long a server that failed is left out before a job is sent to it again. */
  downMs: number;
  /** Bounds the short calls (progress, interrupt, checks). */
  timeoutMs: number;
  maxImageBytes: number;
  fetch?: typeof fetch;
  random?: () => number;
}

const MAX_SEED = 4294967295;
/** How often a running generation's progress is read. */
const PROGRESS_EVERY_MS = 500;
/** A finished call nobody collected (its job was cancelled meanwhile) is forgotten after this long. */
const UNCOLLECTED_MS = 10 * 60_000;
/** How long a cancel waits for a queued request to reach the GPU, so it can be interrupted there. */
const CANCEL_WAIT_MS = 10_000;

const CAPABILITIES: ProviderCapabilities = { textToImage: true, imageToImage: true, inpainting: true, references: false, maxInputs: 2 };

type Outcome = { outputs: ProviderOutput[] } | { error: ProviderError };

/** One generation request in flight from this process to a server. */
interface Call {
  member: FleetMember;
  controller: AbortController;
  outcome?: Outcome;
}

/**
 * What darkroom keeps of an A1111 job (its provider job id): the task id the server knows the
 * request by (`force_task_id`), the seed (chosen here when the job names none, so sending the
 * request again makes the same pictures) and the server's URL.
 */
interface JobRef {
  task: string;
  seed: number;
  url: string;
}

const encodeRef = (ref: JobRef) => `${ref.task} ${ref.seed} ${ref.url}`;

function decodeRef(providerJobId: string): JobRef {
  const [task, seed, url] = providerJobId.split(' ');
  if (!task || !seed || !url || !/^\d+$/.test(seed)) {
    throw new ProviderError(`"${providerJobId}" is not an a1111 job id`, { code: 'invalid_job_id', retryable: true, resubmit: true });
  }
  return { task, seed: Number(seed), url };
}

/** A model darkroom names by AIR is no checkpoint file a webui could load: the server's own is used. */
const checkpointOf = (model: string | undefined) => (model && !/^(?:urn:)?air:/i.test(model) ? model : undefined);

/**
 * AUTOMATIC1111 / Forge servers as one fleet (docs/providers/a1111.md). The webui answers a
 * generation on the request that asked for it and works one request at a time, so:
 *
 * - each server gets one job at a time from this process (the least loaded healthy one is picked);
 * - `submit` starts the request and returns at once; `poll` reads /sdapi/v1/progress while it runs
 *   and collects the answer when it comes;
 * - the request carries `force_task_id` and, as its `Idempotency-Key`, the same task id: after a
 *   restart (the answer was lost with the process) `poll` sends it again, byte for byte. A darkroom
 *   in front answers the repeat with the first answer; a webui makes the pictures again, with the
 *   same seed;
 * - cancel interrupts the server only while /internal/progress says it is on this job;
 * - a server that cannot be reached is left out for a while and its job runs on another.
 */
export function makeA1111Provider(options: A1111ProviderOptions): Provider {
  const doFetch = options.fetch ?? fetch;
  const random = options.random ?? Math.random;
  const fleet = makeFleet(options.urls.map(fleetMemberOf), { downMs: options.downMs });
  const calls = new Map<string, Call>();
  const inFlight = (member: FleetMember) => [...calls.values()].filter((call) => call.member === member && !call.outcome).length;

  async function body(request: GenerationRequest, ref: JobRef, context: ProviderContext): Promise<{ path: string; payload: A1111Txt2ImgRequest | A1111Img2ImgRequest }> {
    const checkpoint = checkpointOf(request.model);
    const common: A1111Txt2ImgRequest = {
      prompt: request.prompt,
      negative_prompt: request.negativePrompt ?? '',
      seed: ref.seed,
      ...a1111Sampler(request.scheduler),
      batch_size: request.numImages,
      n_iter: 1,
      width: request.width,
      height: request.height,
      ...(request.steps === undefined ? {} : { steps: request.steps }),
      ...(request.cfgScale === undefined ? {} : { cfg_scale: request.cfgScale }),
      ...(checkpoint ? { override_settings: { sd_model_checkpoint: checkpoint }, override_settings_restore_afterwards: true } : {}),
      force_task_id: ref.task,
      send_images: true,
      save_images: false,
    };
    const init = inputOf(request, 'init');
    if (!init) return { path: '/sdapi/v1/txt2img', payload: common };
    const mask = inputOf(request, 'mask');
    const payload: A1111Img2ImgRequest = {
      ...common,
      init_images: [(await context.readInput(init)).toString('base64')],
      denoising_strength: request.strength ?? 0.75,
      resize_mode: 0,
      ...(mask
        ? { mask: (await context.readInput(mask)).toString('base64'), inpainting_fill: 1, inpaint_full_res: false, mask_blur: 4, inpainting_mask_invert: 0 }
        : {}),
    };
    return { path: '/sdapi/v1/img2img', payload };
  }

  function failure(status: number, headers: Headers, text: string, member: FleetMember, what: string): ProviderError {
    const said = a1111ErrorMessage(text);
    const message = `${member.url} answered ${status} to ${what}${said ? `: ${said}` : ''}`;
    if (status === 429) return new ProviderError(message, { code: 'rate_limited', retryable: true, retryAfterMs: parseRetryAfter(headers.get('retry-after')), resubmit: true });
    if (status >= 500 || status === 408) return new ProviderError(message, { code: 'upstream_unavailable', retryable: true, resubmit: true });
    if (status === 401 || status === 403) return new ProviderError(message, { code: 'upstream_unauthorized', retryable: false });
    return new ProviderError(message, { code: 'upstream_rejected', retryable: false });
  }

  function unreachable(cause: unknown, member: FleetMember, what: string, timedOutMessage: string): ProviderError {
    const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
    if (timedOut) return new ProviderError(`${member.url} ${timedOutMessage}`, { code: 'upstream_timeout', retryable: true, resubmit: true, cause });
    const reason = cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : cause instanceof Error ? cause.message : 'unknown error';
    return new ProviderError(`Could not reach ${member.url} for ${what}: ${reason}`, { code: 'network_error', retryable: true, resubmit: true, cause });
  }

  async function outputsOf(text: string, member: FleetMember, request: GenerationRequest, ref: JobRef): Promise<ProviderOutput[]> {
    let answer: { images?: unknown; info?: unknown };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      throw new ProviderError(`${member.url} answered a generation with something that is not JSON`, { code: 'invalid_response', retryable: true, resubmit: true });
    }
    const images = Array.isArray(answer.images) ? answer.images.filter((image): image is string => typeof image === 'string') : [];
    const seeds = seedsOfInfo(answer.info, images.length);
    return images.slice(0, request.numImages).map((image, index) => {
      const bytes = Buffer.from(image.startsWith('data:') ? image.slice(image.indexOf(',') + 1) : image, 'base64');
      if (bytes.length > options.maxImageBytes) {
        throw new ProviderError(`${member.url} answered an image of ${bytes.length} bytes, more than PROVIDER_MAX_IMAGE_BYTES`, { code: 'image_too_large', retryable: false });
      }
      return { bytes, contentType: sniffImageType(bytes) ?? 'image/png', seed: seeds[index] ?? ref.seed + index };
    });
  }

  /**
   * Sends the generation and keeps its outcome for `poll`. A darkroom in front answers 409 while the
   * first request with the same Idempotency-Key still runs: the repeat waits and asks again.
   */
  function start(providerJobId: string, member: FleetMember, request: GenerationRequest, ref: JobRef, path: string, payload: unknown): Call {
    const controller = new AbortController();
    const call: Call = { member, controller };
    calls.set(providerJobId, call);
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(options.generationTimeoutMs)]);
    const what = `POST ${path}`;
    const run = async (): Promise<ProviderOutput[]> => {
      for (;;) {
        let response: Response;
        let text: string;
        try {
          response = await doFetch(`${member.url}${path}`, {
            method: 'POST',
            headers: { ...member.headers, 'content-type': 'application/json', accept: 'application/json', 'idempotency-key': ref.task },
            body: JSON.stringify(payload),
            signal,
          });
          text = await response.text();
        } catch (cause) {
          if (!controller.signal.aborted) fleet.markDown(member);
          throw unreachable(cause, member, what, `did not finish the generation within ${options.generationTimeoutMs} ms`);
        }
        if (response.status === 409) {
          await new Promise((resolve) => setTimeout(resolve, parseRetryAfter(response.headers.get('retry-after')) ?? 1000));
          continue;
        }
        // A server that answers is up, whatever it answers: only one that cannot be reached is left out.
        if (!response.ok) throw failure(response.status, response.headers, text, member, what);
        fleet.markUp(member);
        return outputsOf(text, member, request, ref);
      }
    };
    run().then(
      (outputs) => (call.outcome = { outputs }),
      (error: unknown) =>
        (call.outcome = {
          error: error instanceof ProviderError ? error : new ProviderError('The generation failed unexpectedly', { code: 'internal_error', retryable: true, resubmit: true, cause: error }),
        }),
    ).finally(() => {
      setTimeout(() => {
        if (calls.get(providerJobId) === call) calls.delete(providerJobId);
      }, UNCOLLECTED_MS).unref();
    });
    return call;
  }

  async function short(member: FleetMember, what: string, path: string, payload?: unknown): Promise<unknown> {
    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${member.url}${path}`, {
        method: what.split(' ')[0],
        headers: { ...member.headers, accept: 'application/json', ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      text = await response.text();
    } catch (cause) {
      throw unreachable(cause, member, what, `did not answer ${what} in time`);
    }
    if (!response.ok) throw failure(response.status, response.headers, text, member, what);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError(`${member.url} answered ${what} with something that is not JSON`, { code: 'invalid_response', retryable: true });
    }
  }

  const taskProgress = (member: FleetMember, task: string) => short(member, 'POST /internal/progress', '/internal/progress', { id_task: task }) as Promise<A1111TaskProgressResponse>;

  return {
    name: 'a1111',
    capabilities: CAPABILITIES,

    async submit(request, context) {
      const picked = fleet.pick(inFlight);
      if ('retryInMs' in picked) {
        throw new ProviderError('No A1111 server is reachable', { code: 'upstream_unavailable', retryable: true, retryAfterMs: picked.retryInMs });
      }
      const ref: JobRef = { task: `task(${randomUUID()})`, seed: request.seed ?? Math.floor(random() * (MAX_SEED + 1)), url: picked.member.url };
      const { path, payload } = await body(request, ref, context);
      const providerJobId = encodeRef(ref);
      start(providerJobId, picked.member, request, ref, path, payload);
      return { providerJobId };
    },

    async poll(job, context): Promise<PollResult> {
      let call = calls.get(job.providerJobId);
      if (!call) {
        // Another process sent it (this one restarted, or took the job over): send it again under the same task id.
        const ref = decodeRef(job.providerJobId);
        const member = fleet.byUrl(ref.url);
        if (!member) throw new ProviderError(`${ref.url} is no longer in A1111_URLS`, { code: 'upstream_gone', retryable: true, resubmit: true });
        const { path, payload } = await body(job.request, ref, context);
        call = start(job.providerJobId, member, job.request, ref, path, payload);
      }
      const outcome = call.outcome;
      if (outcome) {
        calls.delete(job.providerJobId);
        if ('error' in outcome) throw outcome.error;
        // Interrupted on the server before any picture was done.
        return outcome.outputs.length === 0 ? { state: 'cancelled' } : { state: 'succeeded', outputs: outcome.outputs };
      }
      try {
        const progress = (await short(call.member, 'GET /sdapi/v1/progress', '/sdapi/v1/progress?skip_current_image=true')) as A1111ProgressResponse;
        const value = typeof progress.progress === 'number' && Number.isFinite(progress.progress) ? Math.min(1, Math.max(0, progress.progress)) : undefined;
        return { state: 'running', ...(value === undefined ? {} : { progress: value }), nextPollMs: PROGRESS_EVERY_MS };
      } catch {
        // Progress is a courtesy: the generation's own request says whether the server is gone.
        return { state: 'running', nextPollMs: PROGRESS_EVERY_MS };
      }
    },

    async cancel(job) {
      const ref = decodeRef(job.providerJobId);
      const member = fleet.byUrl(ref.url);
      const call = calls.get(job.providerJobId);
      calls.delete(job.providerJobId);
      if (!member) return;
      try {
        // The webui interrupts whatever it is on: only interrupt when that is this job.
        const until = Date.now() + CANCEL_WAIT_MS;
        let task = await taskProgress(member, ref.task);
        while (!task.active && task.queued && Date.now() < until) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          task = await taskProgress(member, ref.task);
        }
        if (task.active) await short(member, 'POST /sdapi/v1/interrupt', '/sdapi/v1/interrupt');
      } finally {
        call?.controller.abort();
      }
    },

    async check() {
      const results = await Promise.all(
        fleet.members.map(async (member) => {
          try {
            const progress = (await short(member, 'GET /sdapi/v1/progress', '/sdapi/v1/progress?skip_current_image=true')) as A1111ProgressResponse;
            fleet.markUp(member);
            return { ok: true, text: `${member.url} ${progress.state?.job_count ? 'busy' : 'idle'}` };
          } catch (error) {
            fleet.markDown(member);
            return { ok: false, text: `${member.url} down (${error instanceof Error ? error.message : 'no answer'})` };
          }
        }),
      );
      const up = results.filter((result) => result.ok).length;
      return { ok: up > 0, detail: `${up} of ${results.length} A1111 servers answer: ${results.map((result) => result.text).join('; ')}` };
    },
  };
}

type A1111Settings = Pick<A1111ProviderOptions, 'urls' | 'generationTimeoutMs' | 'downMs'>;

/** Configured by A1111_URLS. */
export const a1111ProviderModule: ProviderModule<A1111Settings> = {
  name: 'a1111',
  settings(read) {
    const list = read.text('A1111_URLS');
    const generationTimeoutMs = read.integer('A1111_GENERATION_TIMEOUT_MS', 600_000, 1_000, 86_400_000);
    const downMs = read.integer('A1111_DOWN_MS', 30_000, 0, 3_600_000);
    if (list === undefined) return undefined;
    const urls = list.split(',').map((entry) => entry.trim()).filter(Boolean);
    for (const url of urls) {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {
        parsed = undefined;
      }
      // The entry is not echoed: it may hold a password.
      if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) read.problem(`A1111_URLS entry ${urls.indexOf(url) + 1} is not an http(s) URL`);
    }
    if (urls.length === 0) read.problem('A1111_URLS is set but names no server');
    return { urls, generationTimeoutMs, downMs };
  },
  create: (settings, shared) => makeA1111Provider({ ...settings, timeoutMs: shared.timeoutMs, maxImageBytes: shared.maxImageBytes, random: shared.random }),
};
