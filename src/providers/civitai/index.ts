import { ProviderError } from '../../core/errors.ts';
import { parseRetryAfter } from '../../protocols/http/index.ts';
import type { GenerationRequest } from '../../core/request.ts';
import { TEXT_ONLY, type PollResult, type Provider, type ProviderContext, type ProviderModule, type ProviderOutput } from '../../core/ports/provider.ts';
import { describeFetchFailure, downloadBlob } from './download.ts';
import { isCivitaiAir, baseModelFor, canonicalAssetType, canonicalScheduler, DEFAULT_MODEL_AIR, encodeJobToken, interpretJobs, isRecord, type JobOutcome, parseAir, parseJobStatusCollection, problemText, ProtocolError } from '../../protocols/civitai/orchestration.ts';


export interface CivitaiProviderOptions {
  apiUrl: string;
  apiToken: string;
  /** Limit for calls made outside a job turn (cancel, check); job turns bring their own signal. */
  timeoutMs: number;
  maxImageBytes: number;
  now?: () => number;
}

type CallKind = 'submit' | 'poll' | 'cancel' | 'check';

/** The v1 textToImage JobRequest for a darkroom request. */
export function toJobRequest(request: GenerationRequest, context: Pick<ProviderContext, 'jobId' | 'deadlineAt'>): Record<string, unknown> {
  const model = request.model ?? DEFAULT_MODEL_AIR;
  if (!parseAir(model)) {
    throw new ProviderError(`Civitai needs the model as an AIR (urn:air:{ecosystem}:{type}:{source}:{id}@{version}); got "${model}"`, {
      code: 'invalid_request',
      retryable: false,
    });
  }
  const params: Record<string, unknown> = {
    prompt: request.prompt,
    width: request.width,
    height: request.height,
    seed: request.seed ?? -1,
  };
  if (request.negativePrompt !== undefined) params.negativePrompt = request.negativePrompt;
  if (request.scheduler !== undefined) params.scheduler = canonicalScheduler(request.scheduler) ?? request.scheduler;
  if (request.steps !== undefined) params.steps = request.steps;
  if (request.cfgScale !== undefined) params.cfgScale = request.cfgScale;

  const job: Record<string, unknown> = { $type: 'textToImage', model, params, quantity: request.numImages, properties: { darkroomJobId: context.jobId } };
  const baseModel = baseModelFor(model);
  if (baseModel) job.baseModel = baseModel;
  if (request.additionalNetworks && Object.keys(request.additionalNetworks).length > 0) {
    job.additionalNetworks = Object.fromEntries(
      Object.entries(request.additionalNetworks).map(([air, network]) => [air, { ...network, type: canonicalAssetType(network.type) }]),
    );
  }
  if (context.deadlineAt) job.expireAt = context.deadlineAt.toISOString();
  return job;
}

/**
 * The Civitai orchestrator (v1 consumer jobs). One submission is one textToImage job with
 * `quantity` images; its token is the provider job id, since polling and cancelling go by token.
 */
export function makeCivitaiProvider(options: CivitaiProviderOptions): Provider {
  const apiUrl = options.apiUrl.replace(/\/+$/, '');
  const now = options.now ?? Date.now;
  // Whatever an upstream echoes back, darkroom's own credential never reaches a job error or a log.
  const redact = (text: string) => (options.apiToken ? text.split(options.apiToken).join('[redacted]') : text);

  async function call(
    kind: CallKind,
    method: string,
    path: string,
    init: { query?: Record<string, string>; body?: unknown; signal: AbortSignal; notFoundIsEmpty?: boolean },
  ): Promise<unknown> {
    const url = new URL(`${apiUrl}${path}`);
    for (const [name, value] of Object.entries(init.query ?? {})) url.searchParams.append(name, value);
    const headers: Record<string, string> = { authorization: `Bearer ${options.apiToken}`, accept: 'application/json' };
    if (init.body !== undefined) headers['content-type'] = 'application/json';

    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), signal: init.signal });
      text = await response.text();
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      throw new ProviderError(redact(`Civitai ${kind} failed: ${describeFetchFailure(error)}`), {
        code: timedOut ? 'timeout' : 'network_error',
        retryable: true,
        cause: error,
      });
    }
    if (response.status === 404 && init.notFoundIsEmpty) return undefined;
    if (!response.ok) throw httpError(kind, response, text);
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError(`Civitai ${kind} answered HTTP ${response.status} with a body that is not JSON`, { code: 'invalid_response', retryable: true });
    }
  }

  function httpError(kind: CallKind, response: Response, body: string): ProviderError {
    const status = response.status;
    const reason = redact(problemText(body));
    const message = `Civitai ${kind} answered HTTP ${status}${reason ? `: ${reason}` : ''}`;
    if (status === 429) {
      return new ProviderError(message, { code: 'rate_limited', retryable: true, retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), now()) });
    }
    if (status >= 500 || status === 408) return new ProviderError(message, { code: 'upstream_unavailable', retryable: true });
    if (status === 401 || status === 403) return new ProviderError(message, { code: 'unauthorized', retryable: false });
    if (status === 404 && kind === 'poll') return new ProviderError(message, { code: 'upstream_job_not_found', retryable: true, resubmit: true });
    return new ProviderError(message, { code: 'rejected', retryable: false });
  }

  function invalidAnswer(kind: CallKind, error: unknown, retryable: boolean): ProviderError {
    const detail = error instanceof ProtocolError ? error.message : 'unexpected shape';
    return new ProviderError(`Civitai ${kind} gave an answer darkroom cannot read: ${detail}`, { code: 'invalid_response', retryable, cause: error });
  }

  function readOutcome(answer: unknown): JobOutcome {
    try {
      return interpretJobs(parseJobStatusCollection(answer).jobs);
    } catch (error) {
      throw invalidAnswer('poll', error, true);
    }
  }

  return {
    name: 'civitai',
    capabilities: TEXT_ONLY,
    claims: (request) => request.model !== undefined && isCivitaiAir(request.model),

    async submit(request, context) {
      const answer = await call('submit', 'POST', '/v1/consumer/jobs', { body: toJobRequest(request, context), signal: context.signal });
      let token: string | undefined;
      try {
        const collection = parseJobStatusCollection(answer);
        token = collection.token ?? (collection.jobs.length > 0 ? encodeJobToken(collection.jobs.map((job) => job.jobId)) : undefined);
        if (!token) throw new ProtocolError('the answer names no job');
      } catch (error) {
        // The upstream may have accepted (and will bill) a job darkroom cannot address: never resubmit blindly.
        throw invalidAnswer('submit', error, false);
      }
      return { providerJobId: token };
    },

    async poll(job, context): Promise<PollResult> {
      const answer = await call('poll', 'GET', '/v1/consumer/jobs', { query: { token: job.providerJobId }, signal: context.signal });
      const outcome = readOutcome(answer);
      switch (outcome.state) {
        case 'queued':
          return outcome.queuePosition === undefined ? { state: 'queued' } : { state: 'queued', queuePosition: outcome.queuePosition };
        case 'running':
          return outcome.progress === undefined ? { state: 'running' } : { state: 'running', progress: outcome.progress };
        case 'cancelled':
          return { state: 'cancelled' };
        case 'failed':
          throw new ProviderError(redact(outcome.reason), {
            code: outcome.retryable ? 'upstream_failed' : 'rejected',
            retryable: outcome.retryable,
            resubmit: outcome.retryable,
          });
        case 'done': {
          const outputs = await Promise.all(
            outcome.results.map(async (result): Promise<ProviderOutput> => {
              const image = await downloadBlob(result.blobUrl, {
                maxBytes: options.maxImageBytes,
                signal: context.signal,
                expiresAt: result.blobUrlExpirationDate,
                now,
              });
              return result.seed === undefined ? image : { ...image, seed: result.seed };
            }),
          );
          return { state: 'succeeded', outputs };
        }
      }
    },

    async cancel(job) {
      await call('cancel', 'DELETE', '/v1/consumer/jobs', {
        query: { token: job.providerJobId, force: 'true' },
        signal: AbortSignal.timeout(options.timeoutMs),
        // Already gone upstream is what cancelling wants.
        notFoundIsEmpty: true,
      });
    },

    async check() {
      try {
        const answer = await call('check', 'GET', '/v1/consumer/coverage', {
          query: { model: DEFAULT_MODEL_AIR },
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        const coverage = isRecord(answer) ? answer[DEFAULT_MODEL_AIR] : undefined;
        const availability = isRecord(coverage) && typeof coverage.availability === 'string' ? coverage.availability : 'unknown';
        return { ok: true, detail: `Civitai accepted the API token; the default model is ${availability}` };
      } catch (error) {
        return { ok: false, detail: error instanceof Error ? error.message : 'the check failed' };
      }
    },
  };
}

type CivitaiSettings = Pick<CivitaiProviderOptions, 'apiUrl' | 'apiToken'>;

/** Configured by CIVITAI_API_TOKEN. */
export const civitaiProviderModule: ProviderModule<CivitaiSettings> = {
  name: 'civitai',
  settings(read) {
    const apiUrl = read.url('CIVITAI_API_URL', 'https://orchestration.civitai.com');
    const apiToken = read.text('CIVITAI_API_TOKEN');
    return apiToken ? { apiUrl, apiToken } : undefined;
  },
  create: (settings, shared) => makeCivitaiProvider({ ...settings, timeoutMs: shared.timeoutMs, maxImageBytes: shared.maxImageBytes }),
};
