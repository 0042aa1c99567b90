import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { ProviderError } from '../../core/errors.ts';
import { fleetMemberOf, makeFleet, type FleetMember } from '../../core/fleet.ts';
import type { PollResult, Provider, ProviderCapabilities, ProviderContext, ProviderModule, ProviderOutput } from '../../core/ports/provider.ts';
import { inputOf, type GenerationRequest, type JobInput } from '../../core/request.ts';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  comfySampler,
  fillTemplate,
  loadImageNames,
  parseOperatorTemplate,
  promptErrorMessage,
  TEMPLATE_KINDS,
  templateWorkflow,
  type HistoryEntry,
  type OperatorTemplate,
  type QueueItem,
  type TemplateKind,
  type Workflow,
} from '../../protocols/comfyui/index.ts';
import { parseRetryAfter, sniffImageType } from '../../protocols/http/index.ts';

export interface ComfyuiProviderOptions {
  /** Each instance's base URL; credentials in a URL become its HTTP Basic auth (for a proxy in front). */
  urls: string[];
  /** The checkpoint file of parameter jobs whose model is not a file name. */
  checkpoint: string;
  /** How long an instance that could not be reached is left out before jobs go to it again. */
  downMs: number;
  /** The operator's graphs for parameter jobs, by kind (darkroom's own for the kinds not given). */
  templates?: Partial<Record<TemplateKind, OperatorTemplate>>;
  timeoutMs: number;
  maxImageBytes: number;
  fetch?: typeof fetch;
  random?: () => number;
}

const MAX_SEED = 4294967295;
const DEFAULT_STEPS = 20;
const DEFAULT_CFG = 7;
const CAPABILITIES: ProviderCapabilities = { textToImage: true, imageToImage: true, inpainting: true, references: false, workflows: true, maxInputs: 8 };

/** darkroom's id of a ComfyUI job: the prompt id it chose, and the instance that has it. */
const encodeRef = (promptId: string, url: string) => `${promptId} ${url}`;
function decodeRef(providerJobId: string): { promptId: string; url: string } {
  const [promptId, url] = providerJobId.split(' ');
  if (!promptId || !url) throw new ProviderError(`"${providerJobId}" is not a comfyui job id`, { code: 'invalid_job_id', retryable: true, resubmit: true });
  return { promptId, url };
}

const checkpointOf = (model: string | undefined, fallback: string) => (model && !/^(?:urn:)?air:/i.test(model) ? model : fallback);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** What one instance's WebSocket has said about the prompts this process queued there. */
interface Watch {
  socket?: WebSocket;
  clientId: string;
  progress: Map<string, number>;
}

/**
 * ComfyUI instances as one fleet (docs/providers/comfyui.md). A parameter job becomes darkroom's
 * text-to-image, image-to-image or inpainting graph; a workflow job's graph is sent as given, its
 * LoadImage nodes pointed at the job's input images once uploaded. The prompt id is darkroom's job
 * id, so a submission whose answer was lost is found in /queue or /history instead of being sent
 * twice. Progress comes over the instance's WebSocket; /history and /queue say when it is done.
 */
export function makeComfyuiProvider(options: ComfyuiProviderOptions): Provider {
  const doFetch = options.fetch ?? fetch;
  const random = options.random ?? Math.random;
  const fleet = makeFleet(options.urls.map(fleetMemberOf), { downMs: options.downMs });
  const watches = new Map<string, Watch>();

  function watch(member: FleetMember): Watch {
    let entry = watches.get(member.url);
    if (!entry) {
      entry = { clientId: `darkroom-${randomUUID()}`, progress: new Map() };
      watches.set(member.url, entry);
    }
    const current = entry;
    if (!current.socket || current.socket.readyState === WebSocket.CLOSED || current.socket.readyState === WebSocket.CLOSING) {
      const url = `${member.url.replace(/^http/, 'ws')}/ws?clientId=${encodeURIComponent(current.clientId)}`;
      const socket = new WebSocket(url, { headers: member.headers });
      socket.on('message', (raw, binary) => {
        if (binary) return;
        try {
          const message = JSON.parse(raw.toString()) as { type?: string; data?: Record<string, unknown> };
          const data = message.data ?? {};
          if (message.type === 'progress' && typeof data.prompt_id === 'string' && typeof data.value === 'number' && typeof data.max === 'number' && data.max > 0) {
            current.progress.set(data.prompt_id, Math.min(1, data.value / data.max));
          }
        } catch {
          // Not JSON: nothing darkroom reads.
        }
      });
      // The WebSocket only adds progress: without it, /history and /queue still tell how the job goes.
      socket.on('error', () => socket.terminate());
      current.socket = socket;
    }
    return current;
  }

  async function call(member: FleetMember, what: string, path: string, signal: AbortSignal, body?: unknown, form?: FormData): Promise<unknown> {
    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${member.url}${path}`, {
        method: what.split(' ')[0],
        headers: { ...member.headers, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: form ?? (body === undefined ? undefined : JSON.stringify(body)),
        signal,
      });
      text = await response.text();
    } catch (cause) {
      const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
      if (timedOut) throw new ProviderError(`${member.url} did not answer ${what} in time`, { code: 'upstream_timeout', retryable: true, cause });
      fleet.markDown(member);
      const reason = cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : cause instanceof Error ? cause.message : 'unknown error';
      throw new ProviderError(`Could not reach ${member.url} for ${what}: ${reason}`, { code: 'network_error', retryable: true, resubmit: true, cause });
    }
    if (!response.ok) {
      const said = promptErrorMessage(text);
      const message = `${member.url} answered ${response.status} to ${what}${said ? `: ${said}` : ''}`;
      if (response.status === 429) throw new ProviderError(message, { code: 'rate_limited', retryable: true, retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) });
      if (response.status >= 500 || response.status === 408) throw new ProviderError(message, { code: 'upstream_unavailable', retryable: true });
      if (response.status === 401 || response.status === 403) throw new ProviderError(message, { code: 'upstream_unauthorized', retryable: false });
      throw new ProviderError(message, { code: 'upstream_rejected', retryable: false });
    }
    fleet.markUp(member);
    try {
      return text === '' ? {} : (JSON.parse(text) as unknown);
    } catch {
      throw new ProviderError(`${member.url} answered ${what} with something that is not JSON`, { code: 'invalid_response', retryable: true });
    }
  }

  async function view(member: FleetMember, image: { filename: string; subfolder: string; type: string }, signal: AbortSignal): Promise<Buffer> {
    const query = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type });
    let response: Response;
    try {
      response = await doFetch(`${member.url}/view?${query}`, { headers: member.headers, signal });
    } catch (cause) {
      throw new ProviderError(`Could not download ${image.filename} from ${member.url}`, { code: 'network_error', retryable: true, cause });
    }
    if (!response.ok) throw new ProviderError(`${member.url} answered ${response.status} to GET /view for ${image.filename}`, { code: 'upstream_unavailable', retryable: true });
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length > options.maxImageBytes) throw new ProviderError(`${image.filename} has ${bytes.length} bytes, more than PROVIDER_MAX_IMAGE_BYTES`, { code: 'image_too_large', retryable: false });
    return bytes;
  }

  async function upload(member: FleetMember, input: JobInput, filename: string, context: ProviderContext): Promise<string> {
    const bytes = await context.readInput(input);
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(bytes)], { type: input.contentType }), filename);
    form.append('overwrite', 'true');
    form.append('type', 'input');
    const answer = await call(member, 'POST /upload/image', '/upload/image', context.signal, undefined, form);
    if (!isRecord(answer) || typeof answer.name !== 'string') throw new ProviderError(`${member.url} answered an upload without a file name`, { code: 'invalid_response', retryable: true });
    return typeof answer.subfolder === 'string' && answer.subfolder !== '' ? `${answer.subfolder}/${answer.name}` : answer.name;
  }

  /** The graph to send: the job's own (LoadImage nodes renamed to the uploads), or darkroom's for its parameters. */
  async function graphOf(member: FleetMember, request: GenerationRequest, context: ProviderContext): Promise<Workflow> {
    if (request.workflow) {
      const graph = structuredClone(request.workflow) as Workflow;
      const names = loadImageNames(graph);
      const inputs = request.inputs ?? [];
      for (const [index, name] of names.entries()) {
        const input = inputs[index];
        if (!input) continue;
        const uploaded = await upload(member, input, name.replace(/^.*\//, ''), context);
        if (uploaded === name) continue;
        for (const node of Object.values(graph)) {
          if ((node.class_type === 'LoadImage' || node.class_type === 'LoadImageMask') && node.inputs.image === name) node.inputs.image = uploaded;
        }
      }
      return graph;
    }
    const init = inputOf(request, 'init');
    const mask = inputOf(request, 'mask');
    const initName = init ? await upload(member, init, `darkroom-${context.jobId}-init.png`, context) : undefined;
    const maskName = mask ? await upload(member, mask, `darkroom-${context.jobId}-mask.png`, context) : undefined;
    const { sampler, scheduler } = comfySampler(request.scheduler);
    const kind: TemplateKind = maskName ? 'inpaint' : initName ? 'img2img' : 'txt2img';
    const own = options.templates?.[kind];
    return (own ? (parameters: Parameters<typeof templateWorkflow>[0]) => fillTemplate(own, parameters) : templateWorkflow)({
      checkpoint: checkpointOf(request.model, options.checkpoint),
      prompt: request.prompt,
      negativePrompt: request.negativePrompt ?? '',
      width: request.width,
      height: request.height,
      batchSize: request.numImages,
      seed: request.seed ?? Math.floor(random() * (MAX_SEED + 1)),
      steps: request.steps ?? DEFAULT_STEPS,
      cfg: request.cfgScale ?? DEFAULT_CFG,
      sampler,
      scheduler,
      ...(initName ? { init: { image: initName, denoise: request.strength ?? 0.75 } } : {}),
      ...(maskName ? { mask: maskName } : {}),
      filenamePrefix: 'darkroom',
    });
  }

  const history = async (member: FleetMember, promptId: string, signal: AbortSignal) => {
    const answer = await call(member, 'GET /history/{id}', `/history/${encodeURIComponent(promptId)}`, signal);
    return isRecord(answer) && isRecord(answer[promptId]) ? (answer[promptId] as unknown as HistoryEntry) : undefined;
  };
  const queue = async (member: FleetMember, signal: AbortSignal) => {
    const answer = (await call(member, 'GET /queue', '/queue', signal)) as { queue_running?: QueueItem[]; queue_pending?: QueueItem[] };
    return { running: answer.queue_running ?? [], pending: answer.queue_pending ?? [] };
  };

  /** The seed of a graph's sampler, when it names one darkroom can record. */
  function seedOf(graph: Workflow | undefined): number | undefined {
    for (const node of Object.values(graph ?? {})) {
      const seed = node.class_type === 'KSampler' ? node.inputs.seed : node.class_type === 'KSamplerAdvanced' ? node.inputs.noise_seed : undefined;
      if (typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0 && seed <= MAX_SEED) return seed;
    }
    return undefined;
  }

  async function outputs(member: FleetMember, entry: HistoryEntry, request: GenerationRequest, signal: AbortSignal): Promise<ProviderOutput[]> {
    const images = Object.values(entry.outputs ?? {}).flatMap((output) => output.images ?? []);
    // Saved images first; previews (temp) only when nothing was saved.
    const saved = images.filter((image) => image.type === 'output');
    const chosen = (saved.length > 0 ? saved : images).slice(0, request.workflow ? undefined : request.numImages);
    const seed = seedOf(entry.prompt?.[2]);
    return Promise.all(
      chosen.map(async (image, index) => {
        const bytes = await view(member, image, signal);
        return { bytes, contentType: sniffImageType(bytes) ?? 'image/png', ...(index === 0 && seed !== undefined ? { seed } : {}) };
      }),
    );
  }

  function failureOf(entry: HistoryEntry): PollResult {
    const messages = entry.status?.messages ?? [];
    if (messages.some(([type]) => type === 'execution_interrupted')) return { state: 'cancelled' };
    const error = messages.find(([type]) => type === 'execution_error')?.[1] ?? {};
    const said = typeof error.exception_message === 'string' ? error.exception_message : 'the prompt failed';
    const node = typeof error.node_type === 'string' ? ` in ${error.node_type}${typeof error.node_id === 'string' ? ` (node ${error.node_id})` : ''}` : '';
    throw new ProviderError(`ComfyUI could not run the prompt${node}: ${said}`.slice(0, 500), { code: 'upstream_failed', retryable: false });
  }

  /** Where a prompt darkroom may have sent before (its answer lost) already is. */
  async function findSent(promptId: string, signal: AbortSignal): Promise<{ member: FleetMember; failed: boolean } | undefined> {
    for (const member of fleet.members.filter(fleet.isUp)) {
      try {
        const entry = await history(member, promptId, signal);
        if (entry) return { member, failed: entry.status?.status_str === 'error' };
        const { running, pending } = await queue(member, signal);
        if ([...running, ...pending].some((item) => item[1] === promptId)) return { member, failed: false };
      } catch {
        // An instance that does not answer has nothing darkroom can adopt.
      }
    }
    return undefined;
  }

  return {
    name: 'comfyui',
    capabilities: CAPABILITIES,

    async submit(request, context) {
      const sent = await findSent(context.jobId, context.signal);
      if (sent && !sent.failed) return { providerJobId: encodeRef(context.jobId, sent.member.url) };
      // The job's own id, unless an earlier submission under it failed (a retry needs an id of its own).
      const promptId = sent?.failed ? randomUUID() : context.jobId;
      const loads = new Map<string, number>();
      await Promise.all(
        fleet.members.filter(fleet.isUp).map(async (member) => {
          try {
            const { running, pending } = await queue(member, context.signal);
            loads.set(member.url, running.length + pending.length);
          } catch {
            // Marked down if unreachable; left out of this pick either way.
          }
        }),
      );
      const picked = fleet.pick((member) => loads.get(member.url) ?? Number.MAX_SAFE_INTEGER);
      if ('retryInMs' in picked) throw new ProviderError('No ComfyUI instance is reachable', { code: 'upstream_unavailable', retryable: true, retryAfterMs: picked.retryInMs });
      const member = picked.member;
      const { clientId } = watch(member);
      const graph = await graphOf(member, request, context);
      const answer = await call(member, 'POST /prompt', '/prompt', context.signal, { prompt: graph, client_id: clientId, prompt_id: promptId, extra_data: { darkroom_job: context.jobId } });
      const given = isRecord(answer) && typeof answer.prompt_id === 'string' ? answer.prompt_id : promptId;
      return { providerJobId: encodeRef(given, member.url) };
    },

    async poll(job, context): Promise<PollResult> {
      const { promptId, url } = decodeRef(job.providerJobId);
      const member = fleet.byUrl(url);
      if (!member) throw new ProviderError(`${url} is no longer in COMFYUI_URLS`, { code: 'upstream_gone', retryable: true, resubmit: true });
      const progress = watch(member).progress;
      const finished = async (): Promise<PollResult | undefined> => {
        const entry = await history(member, promptId, context.signal);
        if (!entry) return undefined;
        progress.delete(promptId);
        if (entry.status?.status_str === 'error') return failureOf(entry);
        if (entry.status && !entry.status.completed) return undefined;
        return { state: 'succeeded', outputs: await outputs(member, entry, job.request, context.signal) };
      };
      const done = await finished();
      if (done) return done;
      const { running, pending } = await queue(member, context.signal);
      if (running.some((item) => item[1] === promptId)) {
        const value = progress.get(promptId);
        return { state: 'running', ...(value === undefined ? {} : { progress: value }), nextPollMs: 500 };
      }
      const position = pending.findIndex((item) => item[1] === promptId);
      if (position >= 0) return { state: 'queued', queuePosition: position + 1, nextPollMs: 1000 };
      // Finished between the two reads, or gone: ComfyUI keeps no queue across a restart.
      const late = await finished();
      if (late) return late;
      throw new ProviderError(`${url} no longer knows prompt ${promptId} (restarted?)`, { code: 'upstream_job_lost', retryable: true, resubmit: true });
    },

    async cancel(job) {
      const { promptId, url } = decodeRef(job.providerJobId);
      const member = fleet.byUrl(url);
      if (!member) return;
      const signal = AbortSignal.timeout(options.timeoutMs);
      const { running, pending } = await queue(member, signal);
      if (pending.some((item) => item[1] === promptId)) await call(member, 'POST /queue', '/queue', signal, { delete: [promptId] });
      else if (running.some((item) => item[1] === promptId)) await call(member, 'POST /interrupt', '/interrupt', signal, { prompt_id: promptId });
    },

    async check() {
      const results = await Promise.all(
        fleet.members.map(async (member) => {
          const signal = AbortSignal.timeout(options.timeoutMs);
          try {
            const stats = (await call(member, 'GET /system_stats', '/system_stats', signal)) as { system?: { comfyui_version?: string } };
            const { running, pending } = await queue(member, signal);
            return { ok: true, text: `${member.url} (ComfyUI ${stats.system?.comfyui_version ?? '?'}) ${running.length} running, ${pending.length} queued` };
          } catch (error) {
            return { ok: false, text: `${member.url} down (${error instanceof Error ? error.message : 'no answer'})` };
          }
        }),
      );
      const up = results.filter((result) => result.ok).length;
      return { ok: up > 0, detail: `${up} of ${results.length} ComfyUI instances answer: ${results.map((result) => result.text).join('; ')}` };
    },
  };
}

type ComfyuiSettings = Pick<ComfyuiProviderOptions, 'urls' | 'checkpoint' | 'downMs' | 'templates'>;

/** The templates in `dir` (`txt2img.json`, `img2img.json`, `inpaint.json`), each checked; problems are reported through `problem`. */
function readTemplates(dir: string, problem: (message: string) => void): Partial<Record<TemplateKind, OperatorTemplate>> {
  const templates: Partial<Record<TemplateKind, OperatorTemplate>> = {};
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (error) {
    problem(`COMFYUI_TEMPLATES_DIR cannot be read: ${error instanceof Error ? error.message : 'unknown error'}`);
    return templates;
  }
  for (const kind of TEMPLATE_KINDS) {
    if (!files.includes(`${kind}.json`)) continue;
    const parsed = parseOperatorTemplate(kind, readFileSync(join(dir, `${kind}.json`), 'utf8'));
    if (parsed.ok) templates[kind] = parsed.template;
    else problem(`COMFYUI_TEMPLATES_DIR/${kind}.json ${parsed.problem}`);
  }
  if (!TEMPLATE_KINDS.some((kind) => files.includes(`${kind}.json`))) problem(`COMFYUI_TEMPLATES_DIR holds none of ${TEMPLATE_KINDS.map((kind) => `${kind}.json`).join(', ')}`);
  return templates;
}

/** Configured by COMFYUI_URLS. */
export const comfyuiProviderModule: ProviderModule<ComfyuiSettings> = {
  name: 'comfyui',
  settings(read) {
    const list = read.text('COMFYUI_URLS');
    const checkpoint = read.text('COMFYUI_CHECKPOINT', 'sd_xl_base_1.0.safetensors');
    const downMs = read.integer('COMFYUI_DOWN_MS', 30_000, 0, 3_600_000);
    const templatesDir = read.text('COMFYUI_TEMPLATES_DIR');
    if (list === undefined) return undefined;
    const templates = templatesDir === undefined ? {} : readTemplates(templatesDir, (message) => read.problem(message));
    const urls = list.split(',').map((entry) => entry.trim()).filter(Boolean);
    urls.forEach((url, index) => {
      let protocol: string | undefined;
      try {
        protocol = new URL(url).protocol;
      } catch {
        protocol = undefined;
      }
      // The entry is not echoed: it may hold a password.
      if (protocol !== 'http:' && protocol !== 'https:') read.problem(`COMFYUI_URLS entry ${index + 1} is not an http(s) URL`);
    });
    if (urls.length === 0) read.problem('COMFYUI_URLS is set but names no instance');
    return { urls, checkpoint, downMs, templates };
  },
  create: (settings, shared) => makeComfyuiProvider({ ...settings, timeoutMs: shared.timeoutMs, maxImageBytes: shared.maxImageBytes, random: shared.random }),
};
