import { ProviderError } from '../../core/errors.ts';
import type { GenerationRequest } from '../../core/request.ts';
import { TEXT_ONLY, type PollResult, type Provider, type ProviderModule, type ProviderOutput } from '../../core/ports/provider.ts';
import { decodeImageFile } from './files.ts';
import { makeFusionBrainHttp, SMALL_ANSWER_BYTES } from './http.ts';
import { FUSIONBRAIN_LIMITS, isKandinskyStyle, KANDINSKY_STYLES } from '../../protocols/fusionbrain/index.ts';

export interface FusionBrainProviderOptions {
  /** Base URL without the `key/api/v1` part, e.g. https://api-key.fusionbrain.ai */
  apiUrl: string;
  apiKey: string;
  secretKey: string;
  /** Largest image accepted from a result (PROVIDER_MAX_IMAGE_BYTES). */
  maxImageBytes: number;
  /** Budget of `check()`, which runs outside any job and so has no job's signal. */
  timeoutMs: number;
}

const API = 'key/api/v1';
/** How long a discovered pipeline id is reused before the list is read again. */
const PIPELINE_TTL_MS = 5 * 60_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The problems that keep Fusion Brain from running `request`, in words for the job's error. Checked
 * before any call, so a job that can never run fails at once instead of after its retries.
 *
 * numImages above 1 is refused rather than split into several upstream generations: each result can
 * be read only once and the provider port keeps no state between polls, so images read from a
 * finished generation could not wait for the others without being lost on a restart.
 */
export function fusionBrainProblems(request: Pick<GenerationRequest, 'prompt' | 'width' | 'height' | 'numImages'>): string[] {
  const { maxSide, sideMultiple, maxQueryLength, numImages } = FUSIONBRAIN_LIMITS;
  const problems: string[] = [];
  for (const [side, value] of [['width', request.width], ['height', request.height]] as const) {
    if (value > maxSide || value % sideMultiple !== 0) problems.push(`${side} ${value} must be a multiple of ${sideMultiple} up to ${maxSide}`);
  }
  if (request.numImages !== numImages) {
    problems.push(`numImages ${request.numImages}: Fusion Brain makes one image per job, so create ${request.numImages} jobs instead`);
  }
  if (request.prompt.length > maxQueryLength) {
    problems.push(`the prompt has ${request.prompt.length} characters; Fusion Brain takes at most ${maxQueryLength}`);
  }
  return problems;
}

/**
 * Fusion Brain (Kandinsky): find the TEXT2IMAGE pipeline, check it is taking work, run it with a
 * multipart request, poll the generation's uuid. The provider job id is that uuid, so a restarted
 * process polls on without any other state. Fusion Brain takes no seed, so outputs carry none, and
 * it ignores steps, cfgScale, scheduler and model.
 */
export function makeFusionBrainProvider(options: FusionBrainProviderOptions): Provider {
  const http = makeFusionBrainHttp(options);
  // A finished result arrives once, base64 inside JSON: room for the largest accepted image plus the envelope.
  const resultAnswerBytes = Math.ceil((options.maxImageBytes * 4) / 3) + SMALL_ANSWER_BYTES;
  let pipeline: { id: string; until: number } | undefined;

  async function pipelineId(signal: AbortSignal): Promise<string> {
    if (pipeline && pipeline.until > Date.now()) return pipeline.id;
    const action = 'the pipeline list';
    const answer = await http.send('GET', `${API}/pipelines`, action, { signal });
    if (answer.status !== 200) throw http.failure(answer, action);
    const list = http.json(answer, action);
    const found = (Array.isArray(list) ? list : []).filter(isRecord).find((candidate) => candidate.type === 'TEXT2IMAGE');
    // The docs call the pipeline's id `uuid` in places; the service and its SDK say `id`.
    const id = found?.id ?? found?.uuid;
    if (typeof id !== 'string' && typeof id !== 'number') {
      throw new ProviderError('Fusion Brain lists no TEXT2IMAGE pipeline', { code: 'upstream_unavailable', retryable: true });
    }
    pipeline = { id: String(id), until: Date.now() + PIPELINE_TTL_MS };
    return pipeline.id;
  }

  /** A pipeline that vanished (404) is forgotten, so the retry discovers the current one. */
  function pipelineGone(id: string): ProviderError {
    pipeline = undefined;
    return new ProviderError(`Fusion Brain no longer has pipeline ${id}`, { code: 'upstream_unavailable', retryable: true });
  }

  /** `pipeline_status` per the docs, `status` per the SDK, `model_status` in older answers; absent means active. */
  function pipelineStatus(body: unknown): string | undefined {
    if (!isRecord(body)) return undefined;
    const status = body.pipeline_status ?? body.status ?? body.model_status;
    return typeof status === 'string' ? status : undefined;
  }

  async function availability(id: string, signal: AbortSignal): Promise<string> {
    const action = 'the availability check';
    const answer = await http.send('GET', `${API}/pipeline/${encodeURIComponent(id)}/availability`, action, { signal });
    if (answer.status === 404) throw pipelineGone(id);
    if (answer.status !== 200) throw http.failure(answer, action);
    return pipelineStatus(http.json(answer, action)) ?? 'ACTIVE';
  }

  const busy = (status: string) =>
    new ProviderError(`Fusion Brain's pipeline is not taking jobs right now (${status})`, { code: 'upstream_busy', retryable: true });

  function params(request: GenerationRequest): Record<string, unknown> {
    // Routing matches Kandinsky styles case-insensitively, so send them the way Fusion Brain spells them.
    const known = KANDINSKY_STYLES.find((style) => style === request.style?.toUpperCase());
    return {
      type: 'GENERATE',
      numImages: 1,
      width: request.width,
      height: request.height,
      ...(request.style ? { style: known ?? request.style } : {}),
      ...(request.negativePrompt ? { negativePromptDecoder: request.negativePrompt } : {}),
      generateParams: { query: request.prompt },
    };
  }

  function outputs(body: Record<string, unknown>): ProviderOutput[] {
    // Older answers put `images` and `censored` at the top level instead of under `result`.
    const result = isRecord(body.result) ? body.result : body;
    if (result.censored === true) {
      throw new ProviderError("Fusion Brain's moderation blocked the image", { code: 'content_filtered', retryable: false });
    }
    const files = Array.isArray(result.files) ? result.files : Array.isArray(result.images) ? result.images : [];
    return files
      .filter((file): file is string => typeof file === 'string')
      .map((file) => decodeImageFile(file, options.maxImageBytes));
  }

  return {
    name: 'fusionbrain',
    capabilities: TEXT_ONLY,
    claims: (request) => request.style !== undefined && isKandinskyStyle(request.style),

    async submit(request, { signal }) {
      const problems = fusionBrainProblems(request);
      if (problems.length > 0) {
        throw new ProviderError(`Fusion Brain cannot run this request: ${problems.join('; ')}`, { code: 'invalid_request', retryable: false });
      }
      const id = await pipelineId(signal);
      const status = await availability(id, signal);
      if (status !== 'ACTIVE') throw busy(status);

      const form = new FormData();
      form.append('pipeline_id', id);
      // The service answers 415 unless this part carries its own application/json content type.
      form.append('params', new Blob([JSON.stringify(params(request))], { type: 'application/json' }));
      const action = 'the run request';
      const answer = await http.send('POST', `${API}/pipeline/run`, action, { signal, body: form });
      if (answer.status === 404) throw pipelineGone(id);
      if (answer.status < 200 || answer.status > 299) throw http.failure(answer, action);
      const body = http.json(answer, action);
      if (isRecord(body) && typeof body.uuid === 'string' && body.uuid !== '') return { providerJobId: body.uuid };
      // A busy pipeline answers with its status and no uuid.
      throw busy(pipelineStatus(body) ?? 'no generation uuid in the answer');
    },

    async poll(job, { signal }): Promise<PollResult> {
      const action = `the status request for ${job.providerJobId}`;
      const answer = await http.send('GET', `${API}/pipeline/status/${encodeURIComponent(job.providerJobId)}`, action, {
        signal,
        maxBytes: resultAnswerBytes,
      });
      if (answer.status === 404) {
        throw new ProviderError(`Fusion Brain no longer has generation ${job.providerJobId} (its result was already read, or it expired)`, {
          code: 'upstream_job_not_found',
          retryable: true,
          resubmit: true,
        });
      }
      if (answer.status !== 200) throw http.failure(answer, action);
      const body = http.json(answer, action);
      const status = isRecord(body) ? body.status : undefined;
      switch (status) {
        case 'INITIAL':
          return { state: 'queued' };
        case 'PROCESSING':
          return { state: 'running' };
        case 'DONE':
          // The only read the service allows: the pipeline stores these before this turn ends.
          return { state: 'succeeded', outputs: outputs(body as Record<string, unknown>) };
        case 'FAIL': {
          const description = isRecord(body) && typeof body.errorDescription === 'string' ? body.errorDescription : 'no description';
          throw new ProviderError(`Fusion Brain failed the generation: ${description}`, { code: 'upstream_failed', retryable: true, resubmit: true });
        }
        default:
          throw new ProviderError(`Fusion Brain answered the status request with an unknown status (${String(status)})`, {
            code: 'invalid_response',
            retryable: true,
          });
      }
    },

    async cancel() {
      // Fusion Brain has no cancel call: the generation runs to its end upstream and its result is never read.
    },

    async check() {
      const signal = AbortSignal.timeout(options.timeoutMs);
      pipeline = undefined;
      try {
        const id = await pipelineId(signal);
        const status = await availability(id, signal);
        return { ok: status === 'ACTIVE', detail: `Fusion Brain pipeline ${id} is ${status}` };
      } catch (error) {
        if (error instanceof ProviderError) return { ok: false, detail: error.message };
        throw error;
      }
    },
  };
}

type FusionBrainSettings = Pick<FusionBrainProviderOptions, 'apiUrl' | 'apiKey' | 'secretKey'>;

/** Configured by FUSIONBRAIN_API_KEY with FUSIONBRAIN_SECRET_KEY. */
export const fusionBrainProviderModule: ProviderModule<FusionBrainSettings> = {
  name: 'fusionbrain',
  settings(read) {
    const apiUrl = read.url('FUSIONBRAIN_API_URL', 'https://api-key.fusionbrain.ai');
    const apiKey = read.text('FUSIONBRAIN_API_KEY');
    const secretKey = read.text('FUSIONBRAIN_SECRET_KEY');
    if (Boolean(apiKey) !== Boolean(secretKey)) read.problem('FUSIONBRAIN_API_KEY and FUSIONBRAIN_SECRET_KEY must be set together');
    return apiKey && secretKey ? { apiUrl, apiKey, secretKey } : undefined;
  },
  create: (settings, shared) => makeFusionBrainProvider({ ...settings, timeoutMs: shared.timeoutMs, maxImageBytes: shared.maxImageBytes }),
};
