import { ProviderError } from '../../core/errors.ts';
import { TEXT_ONLY, type PollResult, type Provider, type ProviderCapabilities, type ProviderContext, type ProviderJobRef, type ProviderModule, type ProviderOutput } from '../../core/ports/provider.ts';
import { DEFAULT_STRENGTH, inputOf, referencesOf, type GenerationRequest, type JobInput } from '../../core/request.ts';
import { RUNPOD_INPUT_FORMATS, type RunpodInputFormat } from '../../protocols/runpod/status.ts';
import { loadImageNames, type Workflow } from '../../protocols/comfyui/index.ts';
import { httpError, networkError } from './http.ts';
import { resolveImage } from './images.ts';
import { buildInput, buildPolicy, IMAGE_INPUT_FORMATS, type WorkerImage, type WorkerImages } from '../../protocols/runpod/input.ts';
import { parseOutput, workerFailure } from './output.ts';

export interface RunpodProviderOptions {
  /** e.g. https://api.runpod.ai/v2 (no trailing slash). */
  apiUrl: string;
  apiKey: string;
  endpointId: string;
  inputFormat: RunpodInputFormat;
  /** Bounds calls made outside a job turn (cancel, health), which have no context signal. */
  timeoutMs: number;
  maxImageBytes: number;
  fetch?: typeof fetch;
  random?: () => number;
  now?: () => number;
}

/** RunPod refuses /run bodies over 10 MB; input images, as base64, are what makes a body that large. */
const RUN_PAYLOAD_LIMIT_BYTES = 10_000_000;

interface RunpodJobStatus {
  id?: unknown;
  status?: unknown;
  output?: unknown;
  error?: unknown;
}

/**
 * What the endpoint's worker can run: the A1111 and ComfyUI workers take an init image and a mask;
 * worker-sdxl and the custom worker take text only. Neither is given reference images.
 */
export function runpodCapabilities(format: RunpodInputFormat): ProviderCapabilities {
  if (!IMAGE_INPUT_FORMATS.includes(format)) return TEXT_ONLY;
  // worker-comfyui runs any graph in API format: workflow jobs go as given.
  return { textToImage: true, imageToImage: true, inpainting: true, references: false, maxInputs: format === 'comfyui' ? 8 : 2, workflows: format === 'comfyui' };
}

/**
 * RunPod serverless (docs/providers/runpod.md): one endpoint, whose
 * worker takes the input shape `inputFormat` names. The RunPod job id is the provider job id, so a
 * restarted darkroom polls it without any other state.
 */
export function makeRunpodProvider(options: RunpodProviderOptions): Provider {
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const endpointUrl = `${options.apiUrl}/${encodeURIComponent(options.endpointId)}`;

  /** Nothing darkroom shows (job errors, logs, provider checks) may carry the key, even if an upstream echoes it. */
  function redact(error: unknown): unknown {
    if (!(error instanceof ProviderError) || !error.message.includes(options.apiKey)) return error;
    return new ProviderError(error.message.replaceAll(options.apiKey, '[redacted]'), {
      code: error.code,
      retryable: error.retryable,
      retryAfterMs: error.retryAfterMs,
      resubmit: error.resubmit,
    });
  }

  /**
   * Calls the endpoint; answers the parsed JSON of a 2xx, or null for a 404 when `allow404`. `what`
   * names the call in messages ("GET /status/{id}").
   */
  async function call(what: string, path: string, signal: AbortSignal, body?: unknown, allow404 = false): Promise<unknown> {
    const method = what.split(' ')[0];
    let response: Response;
    try {
      response = await doFetch(`${endpointUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.apiKey}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (cause) {
      throw networkError(cause, what);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (cause) {
      throw networkError(cause, what);
    }
    if (allow404 && response.status === 404) return null;
    if (!response.ok) throw httpError(response.status, response.headers, text, what);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError(`RunPod answered ${what} with something that is not JSON`, { code: 'invalid_response', retryable: true });
    }
  }

  const ownSignal = () => AbortSignal.timeout(options.timeoutMs);
  const capabilities = runpodCapabilities(options.inputFormat);

  /** The request's init image and mask as the worker is sent them, read from darkroom's storage. */
  /**
   * A workflow job for worker-comfyui: the graph as given, with the job's input images sent as the
   * files its LoadImage nodes name (in node order), which the worker puts in ComfyUI's input folder.
   */
  async function workflowInput(workflow: Record<string, unknown>, inputs: JobInput[], context: ProviderContext): Promise<Record<string, unknown>> {
    const names = loadImageNames(workflow as Workflow);
    const files = await Promise.all(
      names.slice(0, inputs.length).map(async (name, index) => ({ name, image: (await context.readInput(inputs[index] as JobInput)).toString('base64') })),
    );
    return files.length > 0 ? { workflow, images: files } : { workflow };
  }

  async function workerImages(request: GenerationRequest, context: ProviderContext): Promise<WorkerImages | undefined> {
    if (!request.inputs || request.inputs.length === 0) return undefined;
    const refuse = (why: string) => new ProviderError(`This job has input images, but ${why}`, { code: 'unsupported_request', retryable: false });
    if (!capabilities.imageToImage) throw refuse(`the endpoint's worker (RUNPOD_INPUT_FORMAT=${options.inputFormat}) takes text only`);
    if (referencesOf(request).length > 0) throw refuse('RunPod workers take no reference images');
    const init = inputOf(request, 'init');
    if (!init) throw refuse('a mask needs an init image');
    const mask = inputOf(request, 'mask');
    const read = async (input: JobInput): Promise<WorkerImage> => ({
      base64: (await context.readInput(input)).toString('base64'),
      contentType: input.contentType,
      sha256: input.sha256,
    });
    return { init: await read(init), ...(mask ? { mask: await read(mask) } : {}), strength: request.strength ?? DEFAULT_STRENGTH };
  }

  async function outputs(output: unknown, job: ProviderJobRef, context: ProviderContext): Promise<ProviderOutput[]> {
    if (options.inputFormat === 'a1111' && inputOf(job.request, 'init') && ranTextToImage(output)) {
      throw new ProviderError(
        "The RunPod worker ran text-to-image and ignored the init image (its answer's parameters have no init_images): the endpoint's A1111 worker must send inputs with init_images to /sdapi/v1/img2img",
        { code: 'inputs_ignored', retryable: false },
      );
    }
    const parsed = parseOutput(output);
    if (parsed.images.length === 0) {
      throw new ProviderError('The RunPod job completed without an image', { code: 'no_output', retryable: true, resubmit: true });
    }
    const wanted = parsed.images.slice(0, job.request.numImages);
    const resolved = await Promise.all(
      wanted.map((image) => resolveImage(image, { maxBytes: options.maxImageBytes, signal: context.signal, fetch: doFetch })),
    );
    // Outputs that name no seeds (ComfyUI, the custom worker) still ran the first image on the seed darkroom sent.
    const seeds = parsed.seeds.some((seed) => seed !== undefined) ? parsed.seeds : [job.request.seed];
    return resolved.map((image, index) => {
      const seed = seeds[index];
      return seed === undefined ? image : { ...image, seed };
    });
  }

  async function interpret(status: RunpodJobStatus, job: ProviderJobRef, context: ProviderContext): Promise<PollResult> {
    switch (status.status) {
      case 'IN_QUEUE':
        return { state: 'queued' };
      case 'IN_PROGRESS':
        return { state: 'running' };
      case 'COMPLETED':
        return { state: 'succeeded', outputs: await outputs(status.output, job, context) };
      case 'FAILED':
        throw workerFailure(status.error ?? (isRecord(status.output) ? status.output.error : undefined));
      case 'TIMED_OUT':
        throw new ProviderError('The RunPod job timed out on the worker', { code: 'upstream_timed_out', retryable: true, resubmit: true });
      case 'CANCELLED':
        return { state: 'cancelled' };
      default:
        throw new ProviderError(`RunPod reported an unknown job status ${JSON.stringify(status.status)}`, {
          code: 'invalid_response',
          retryable: true,
        });
    }
  }

  return {
    name: 'runpod',
    capabilities,

    async submit(request, context) {
      try {
        if (options.inputFormat === 'custom' && request.numImages > 1) {
          throw new ProviderError('The custom RunPod worker makes one image per job; ask for numImages 1', {
            code: 'unsupported_request',
            retryable: false,
          });
        }
        const policy = buildPolicy(context.deadlineAt, now());
        const images = request.workflow ? undefined : await workerImages(request, context);
        const params = images ? { ...request, images } : request;
        const input = request.workflow ? await workflowInput(request.workflow, request.inputs ?? [], context) : buildInput(params, options.inputFormat, options.random);
        const body = { input, ...(policy ? { policy } : {}) };
        if ((images || request.inputs?.length) && Buffer.byteLength(JSON.stringify(body)) > RUN_PAYLOAD_LIMIT_BYTES) {
          throw new ProviderError('The input images are too large for RunPod: a /run request may carry at most 10 MB, base64 included', {
            code: 'request_too_large',
            retryable: false,
          });
        }
        const answer = (await call('POST /run', '/run', context.signal, body)) as RunpodJobStatus | null;
        if (typeof answer?.id !== 'string' || answer.id === '') {
          throw new ProviderError('RunPod accepted the job but answered no job id', { code: 'invalid_response', retryable: true });
        }
        return { providerJobId: answer.id };
      } catch (error) {
        throw redact(error);
      }
    },

    async poll(job, context) {
      try {
        const answer = await call('GET /status/{id}', `/status/${encodeURIComponent(job.providerJobId)}`, context.signal, undefined, true);
        if (answer === null) {
          // RunPod forgets a job some time after it ends (its TTL): only a new run can produce the images.
          throw new ProviderError(`RunPod no longer knows job ${job.providerJobId}`, {
            code: 'upstream_job_not_found',
            retryable: true,
            resubmit: true,
          });
        }
        if (!isRecord(answer)) throw new ProviderError('RunPod answered a job status that is not an object', { code: 'invalid_response', retryable: true });
        return await interpret(answer, job, context);
      } catch (error) {
        throw redact(error);
      }
    },

    async cancel(job) {
      try {
        // A job RunPod no longer knows needs no cancelling.
        await call('POST /cancel/{id}', `/cancel/${encodeURIComponent(job.providerJobId)}`, ownSignal(), undefined, true);
      } catch (error) {
        throw redact(error);
      }
    },

    async check() {
      try {
        const health = await call('GET /health', '/health', ownSignal());
        const workers = isRecord(health) && isRecord(health.workers) ? health.workers : {};
        const jobs = isRecord(health) && isRecord(health.jobs) ? health.jobs : {};
        const count = (value: unknown) => (typeof value === 'number' ? value : 0);
        return {
          ok: true,
          detail: `RunPod endpoint ${options.endpointId}: ${count(workers.idle)} idle and ${count(workers.running)} running workers, ${count(jobs.inQueue)} jobs queued`,
        };
      } catch (error) {
        const safe = redact(error);
        return { ok: false, detail: safe instanceof Error ? safe.message : 'the health check failed' };
      }
    },
  };
}

/**
 * A1111 answers with the request it ran as `parameters`; img2img's always has `init_images` (set to
 * null, so the images are not sent back), txt2img's never does. A worker that hands every input to
 * /txt2img (runpod-workers/worker-a1111 does) would otherwise return a picture that silently ignores
 * the init image.
 */
function ranTextToImage(output: unknown): boolean {
  return isRecord(output) && isRecord(output.parameters) && !('init_images' in output.parameters);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type RunpodSettings = Pick<RunpodProviderOptions, 'apiUrl' | 'apiKey' | 'endpointId' | 'inputFormat'>;

/** Configured by RUNPOD_API_KEY with RUNPOD_ENDPOINT_ID. */
export const runpodProviderModule: ProviderModule<RunpodSettings> = {
  name: 'runpod',
  settings(read) {
    const apiUrl = read.url('RUNPOD_API_URL', 'https://api.runpod.ai/v2');
    const apiKey = read.text('RUNPOD_API_KEY');
    const endpointId = read.text('RUNPOD_ENDPOINT_ID');
    const inputFormat = read.oneOf('RUNPOD_INPUT_FORMAT', RUNPOD_INPUT_FORMATS, 'sdxl');
    if (apiKey && !endpointId) read.problem('RUNPOD_API_KEY is set but RUNPOD_ENDPOINT_ID is missing');
    return apiKey && endpointId ? { apiUrl, apiKey, endpointId, inputFormat } : undefined;
  },
  create: (settings, shared) => makeRunpodProvider({ ...settings, timeoutMs: shared.timeoutMs, maxImageBytes: shared.maxImageBytes }),
};
