import { randomUUID } from 'node:crypto';
import { ProviderError } from '../../core/errors.ts';
import { inputOf, referencesOf, type GenerationRequest } from '../../core/request.ts';
import type { PollResult, Provider, ProviderContext, ProviderModule, ProviderOutput } from '../../core/ports/provider.ts';
import { limitsOf, MAX_IMAGES, MAX_PROMPT_LENGTH, readImageUsage, sizeText, STYLES } from '../../protocols/openai/index.ts';
import { imageBytes, makeOpenAIHttp } from './http.ts';

export interface OpenAIProviderOptions {
  /** Up to and including the version, e.g. https://api.openai.com/v1 */
  baseUrl: string;
  apiKey: string;
  organization?: string;
  project?: string;
  /** The models it claims; the first is used for jobs that name none. */
  models: string[];
  maxImageBytes: number;
  /** Budget of `check()`, which runs outside any job. */
  timeoutMs: number;
}

/** Room for an answer: n base64 images of the largest size accepted, plus the envelope. */
const answerBytes = (images: number, maxImageBytes: number) => images * Math.ceil((maxImageBytes * 4) / 3) + 1_048_576;

/**
 * OpenAI Images, and any server that speaks its API. The API is synchronous: one request makes
 * the images, with no job to poll. So `submit` only checks the request (sizes and counts per model,
 * before any call) and hands out a ticket; `poll` makes the call and returns the images, which the
 * pipeline stores at once. A crash or a lost lease during that call costs one more call on the
 * next turn (docs/providers/openai.md); the ticket is sent as Idempotency-Key, which darkroom's own
 * OpenAI dialect honours, so there a repeat gets the first answer instead of new images.
 */
export function makeOpenAIProvider(options: OpenAIProviderOptions): Provider {
  const http = makeOpenAIHttp(options);
  const [defaultModel = 'gpt-image-1'] = options.models;
  const modelOf = (request: GenerationRequest) => (request.model && options.models.includes(request.model) ? request.model : defaultModel);

  /** Why the model cannot run `request`, in words for the job's error; empty when it can. */
  function problems(request: GenerationRequest): string[] {
    const model = modelOf(request);
    const limits = limitsOf(model);
    const found: string[] = [];
    const size = sizeText(request.width, request.height);
    if (limits && !limits.sizes.includes(size)) found.push(`${model} renders ${limits.sizes.filter((each) => each !== 'auto').join(', ')}, not ${size}`);
    const most = limits?.maxImages ?? MAX_IMAGES;
    if (request.numImages > most) found.push(`${model} makes at most ${most} image${most === 1 ? '' : 's'} per request, not ${request.numImages}`);
    const longest = limits?.maxPromptLength ?? MAX_PROMPT_LENGTH;
    if (request.prompt.length > longest) found.push(`${model} takes prompts of at most ${longest} characters; this one has ${request.prompt.length}`);
    const inputs = request.inputs ?? [];
    if (inputs.length > 0 && !inputOf(request, 'init')) found.push('an OpenAI edit needs an init image');
    const images = inputs.filter((input) => input.role !== 'mask').length;
    if (limits && images > limits.maxEditImages) {
      found.push(limits.maxEditImages === 0 ? `${model} does not edit images` : `${model} edits at most ${limits.maxEditImages} image${limits.maxEditImages === 1 ? '' : 's'}, not ${images}`);
    }
    return found;
  }

  async function maskOf(bytes: Buffer): Promise<Buffer> {
    // sharp (libvips) loads with the first image, not with the server.
    const { default: sharp } = await import('sharp');
    // darkroom's mask is white where the image may change; OpenAI's is transparent there.
    const { data, info } = await sharp(bytes).greyscale().extractChannel(0).negate().raw().toBuffer({ resolveWithObject: true });
    return sharp({ create: { width: info.width, height: info.height, channels: 3, background: '#000000' } })
      .joinChannel(data, { raw: { width: info.width, height: info.height, channels: 1 } })
      .png()
      .toBuffer();
  }

  /** The edit form: the init image, then the references (OpenAI's `image[]`), the mask, and the text fields. */
  async function editForm(request: GenerationRequest, fields: Record<string, string>, context: ProviderContext): Promise<FormData> {
    const form = new FormData();
    const images = [inputOf(request, 'init'), ...referencesOf(request)].filter((input) => input !== undefined);
    const name = images.length > 1 ? 'image[]' : 'image';
    for (const [index, input] of images.entries()) {
      const extension = input.contentType.split('/')[1] ?? 'png';
      form.append(name, new Blob([new Uint8Array(await context.readInput(input))], { type: input.contentType }), `image-${index}.${extension}`);
    }
    const mask = inputOf(request, 'mask');
    if (mask) form.append('mask', new Blob([new Uint8Array(await maskOf(await context.readInput(mask)))], { type: 'image/png' }), 'mask.png');
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    return form;
  }

  return {
    name: 'openai',
    capabilities: { textToImage: true, imageToImage: true, inpainting: true, references: true, maxInputs: 17 },
    models: options.models,
    claims: (request) => request.model !== undefined && options.models.includes(request.model),

    async submit(request, context) {
      const found = problems(request);
      if (found.length > 0) throw new ProviderError(`OpenAI cannot run this job: ${found.join('; ')}`, { code: 'invalid_request', retryable: false });
      // No call yet: the ticket names the job's one upstream call, made by poll.
      return { providerJobId: `${context.jobId}.${randomUUID()}` };
    },

    async poll(job, context): Promise<PollResult> {
      const { request } = job;
      const model = modelOf(request);
      const limits = limitsOf(model);
      const fields: Record<string, string> = { model, prompt: request.prompt, n: String(request.numImages), size: sizeText(request.width, request.height) };
      // The GPT image models always answer base64 and refuse the parameter; the others default to links.
      if (!limits?.base64Only) fields.response_format = 'b64_json';
      if (model === 'dall-e-3' && request.style && (STYLES as readonly string[]).includes(request.style)) fields.style = request.style;
      const edit = (request.inputs ?? []).length > 0;
      const action = edit ? 'the image edit' : 'the image generation';
      const init = { signal: context.signal, maxBytes: answerBytes(request.numImages, options.maxImageBytes), idempotencyKey: job.providerJobId };
      const answer = edit
        ? await http.send('POST', 'images/edits', action, { ...init, form: await editForm(request, fields, context) })
        : await http.send('POST', 'images/generations', action, { ...init, json: { ...fields, n: request.numImages } });
      if (answer.status < 200 || answer.status >= 300) throw http.failure(answer, action);
      let body: { data?: unknown; usage?: unknown } = {};
      try {
        body = (JSON.parse(answer.text) as typeof body | null) ?? {};
      } catch {
        body = {};
      }
      const { data } = body;
      if (!Array.isArray(data) || data.length === 0) {
        throw new ProviderError(`OpenAI answered ${action} without images`, { code: 'invalid_response', retryable: true, resubmit: true });
      }
      const outputs: ProviderOutput[] = [];
      for (const item of data as { b64_json?: unknown; url?: unknown }[]) outputs.push(await imageBytes(item, { signal: context.signal, maxBytes: options.maxImageBytes }));
      const usage = readImageUsage(body.usage);
      if (!usage) return { state: 'succeeded', outputs };
      const { input_tokens_details: details } = usage;
      return {
        state: 'succeeded',
        outputs,
        usage: { inputTokens: usage.input_tokens, outputTokens: usage.output_tokens, inputTextTokens: details.text_tokens, inputImageTokens: details.image_tokens },
      };
    },

    async cancel() {
      // Nothing runs upstream between calls: a call in flight is abandoned by its turn, and OpenAI has no way to stop one.
    },

    async check() {
      const signal = AbortSignal.timeout(options.timeoutMs);
      try {
        const answer = await http.send('GET', 'models', 'the model list', { signal, maxBytes: 4 * 1_048_576 });
        if (answer.status !== 200) return { ok: false, detail: http.failure(answer, 'the model list').message };
        return { ok: true, detail: `${options.baseUrl} answers; models claimed: ${options.models.join(', ')}` };
      } catch (error) {
        if (error instanceof ProviderError) return { ok: false, detail: error.message };
        throw error;
      }
    },
  };
}

type OpenAISettings = Pick<OpenAIProviderOptions, 'baseUrl' | 'apiKey' | 'organization' | 'project' | 'models'>;

export const DEFAULT_OPENAI_MODELS = ['gpt-image-1', 'gpt-image-1-mini', 'dall-e-3', 'dall-e-2'];

/** Configured by OPENAI_API_KEY. */
export const openaiProviderModule: ProviderModule<OpenAISettings> = {
  name: 'openai',
  settings(read) {
    const baseUrl = read.url('OPENAI_BASE_URL', 'https://api.openai.com/v1');
    const apiKey = read.text('OPENAI_API_KEY');
    const models = read
      .text('OPENAI_MODELS', DEFAULT_OPENAI_MODELS.join(','))
      .split(',')
      .map((model) => model.trim())
      .filter(Boolean);
    if (models.length === 0) read.problem('OPENAI_MODELS must name at least one model');
    const organization = read.text('OPENAI_ORGANIZATION');
    const project = read.text('OPENAI_PROJECT');
    if (!apiKey) return undefined;
    return { baseUrl, apiKey, models, ...(organization ? { organization } : {}), ...(project ? { project } : {}) };
  },
  create: (settings, shared) => makeOpenAIProvider({ ...settings, maxImageBytes: shared.maxImageBytes, timeoutMs: shared.timeoutMs }),
};
