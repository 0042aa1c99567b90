import { randomUUID } from 'node:crypto';
import { freemem, platform, totalmem } from 'node:os';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import multipart from '@fastify/multipart';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import { DarkroomError } from '../../../core/errors.ts';
import type { EventFeed } from '../../../core/event-feed.ts';
import type { JobService, JobView, ScopedJobs } from '../../../core/job-service.ts';
import { isTerminal, type JobEvent } from '../../../core/job.ts';
import type { CreateJobInput, InputSource } from '../../../core/request.ts';
import {
  COMFY_SAMPLERS,
  COMFY_SCHEDULERS,
  darkroomSchedulerOf,
  KNOWN_NODES,
  loadImageNames,
  readWorkflow,
  type PromptErrorBody,
  type Workflow,
} from '../../../protocols/comfyui/index.ts';
import { DialectError } from '../../http/errors.ts';
import { addJsonParser } from '../../http/json.ts';
import { dataOf, executionError, historyEntry, outputsOf, parseOutputName, prefixOf, queueItem, type ComfyJobData } from './present.ts';
import { HistoryQuery, ManageBody, NodeClassParams, PromptBody, PromptIdParams, ViewQuery, WsQuery } from './schemas.ts';

export interface ComfyuiRoutesOptions {
  jobs: JobService;
  feed: EventFeed;
}

const DIALECT = 'comfyui';
const tags = ['comfyui'];
const DEFAULT_HISTORY = 100;
/** How often a WebSocket's event stream looks at the database when the bus is quiet. */
const RECHECK_MS = 1000;
const UPLOAD_NAME = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(?:png|jpg|webp)$/;
const EXTENSION: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/** `/prompt`'s refusal: 400 with ComfyUI's body as is. */
const refused = (body: PromptErrorBody) => new DialectError(400, body.error.message, { code: body.error.type, extra: { error: body.error, node_errors: body.node_errors } });

const nodeError = (id: string, classType: string, type: string, message: string, details: string) =>
  refused({
    error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} },
    node_errors: { [id]: { errors: [{ type, message, details, extra_info: {} }], dependent_outputs: [], class_type: classType } },
  });

/** A side darkroom can make: within 64–2048, a multiple of 8. */
const side = (value: number) => Math.min(2048, Math.max(64, Math.floor(value / 8) * 8));

/**
 * ComfyUI's server API (docs/dialects/comfyui.md), at its own paths and under `/api/`: a graph
 * POSTed to /prompt becomes a darkroom job that keeps the graph (a comfyui provider sends it on
 * unchanged) and its parameters (any other provider runs those). /history, /queue and the /ws
 * messages show the caller's jobs; /view serves their stored images.
 */
export const comfyuiRoutes: FastifyPluginAsyncTypebox<ComfyuiRoutesOptions> = async (app, { jobs: service, feed }) => {
  const scoped = (request: FastifyRequest) => service.for(request.caller);
  const maxBytes = service.inputLimits.maxBytes;
  await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, parts: 6, fields: 5, fieldSize: 1024 } });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  // ComfyUI reads every body as JSON whatever its type: its Python examples send form-encoded JSON,
  // and client libraries that set their own headers send text/plain.
  addJsonParser(app, 'text/plain');
  addJsonParser(app, 'application/x-www-form-urlencoded');

  async function findPrompt(jobs: ScopedJobs, promptId: string): Promise<JobView | undefined> {
    return (await jobs.list({ dialect: DIALECT, dialectData: { promptId }, limit: 1 })).items[0];
  }

  async function remaining(jobs: ScopedJobs): Promise<number> {
    const counts = await jobs.countByStatus({ dialect: DIALECT });
    return counts.queued + counts.running;
  }

  /** The job's input images: the graph's LoadImage names, each an upload of this caller. */
  async function inputsOf(jobs: ScopedJobs, graph: Workflow, roles: { init?: string; mask?: string }): Promise<{ images: InputSource[]; init?: { width: number; height: number } }> {
    const images: InputSource[] = [];
    let init: { width: number; height: number } | undefined;
    for (const name of loadImageNames(graph)) {
      const uploadId = UPLOAD_NAME.exec(name)?.[1];
      const [id, node] = Object.entries(graph).find(([, candidate]) => candidate.inputs.image === name) as [string, Workflow[string]];
      const upload = uploadId ? await jobs.getUpload(uploadId).catch(() => undefined) : undefined;
      if (!uploadId || !upload) throw nodeError(id, node.class_type, 'value_not_in_list', `Invalid image file: ${name}`, `image: ${name} is not a file uploaded to this server (POST /upload/image)`);
      const role = name === roles.init ? 'init' : name === roles.mask ? 'mask' : 'reference';
      if (role === 'init') init = { width: upload.width, height: upload.height };
      images.push({ role, uploadId });
    }
    return { images, ...(init ? { init } : {}) };
  }

  async function queuePrompt(request: FastifyRequest, body: { prompt?: object; client_id?: string; prompt_id?: string; extra_data?: object }) {
    const jobs = scoped(request);
    if (body.prompt === undefined) {
      throw refused({ error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: [] });
    }
    if (body.prompt_id !== undefined) {
      // The client's own id, sent again (it lost the answer): the first submission stands.
      const known = await findPrompt(jobs, body.prompt_id);
      if (known) return { prompt_id: body.prompt_id, number: dataOf(known).number, node_errors: {} };
    }
    const read = readWorkflow(body.prompt);
    if (!read.ok) throw refused(read.error);
    const graph = body.prompt as unknown as Workflow;
    const p = read.parameters;
    for (const [name, value] of [['width', p.width], ['height', p.height]] as const) {
      const latent = Object.entries(graph).find(([, node]) => node.class_type === 'EmptyLatentImage');
      if (value !== undefined && latent && (value < 64 || value > 2048 || value % 8 !== 0)) {
        throw nodeError(latent[0], 'EmptyLatentImage', 'value_not_valid', `Value not valid: ${name} must be a multiple of 8 from 64 to 2048 here`, `${name}: ${value}`);
      }
    }
    if (p.batchSize > 10) {
      const latent = Object.entries(graph).find(([, node]) => node.class_type === 'EmptyLatentImage') as [string, unknown];
      throw nodeError(latent[0], 'EmptyLatentImage', 'value_bigger_than_max', 'Value 10 bigger than max: batch_size', `batch_size: ${p.batchSize}`);
    }
    const { images, init } = await inputsOf(jobs, graph, { init: p.initImage, mask: p.maskImage });
    const promptId = body.prompt_id ?? randomUUID();
    const input: CreateJobInput = {
      prompt: p.prompt,
      ...(p.negativePrompt ? { negativePrompt: p.negativePrompt } : {}),
      width: side(p.width ?? init?.width ?? 512),
      height: side(p.height ?? init?.height ?? 512),
      numImages: p.batchSize,
      // darkroom's ranges; the graph itself keeps the values it was given.
      steps: Math.min(150, p.steps),
      cfgScale: Math.min(30, Math.max(1, p.cfg)),
      seed: p.seed % 4294967296,
      scheduler: darkroomSchedulerOf(p.sampler, p.scheduler),
      ...(p.checkpoint ? { model: p.checkpoint } : {}),
      ...(images.length > 0 ? { images } : {}),
      ...(p.initImage ? { strength: p.denoise } : {}),
      workflow: graph,
    };
    const data: ComfyJobData = {
      promptId,
      ...(body.client_id ? { clientId: body.client_id } : {}),
      number: Date.now(),
      samplerNode: p.samplerNode,
      outputs: p.outputs.map((output) => ({ ...output, prefix: prefixOf(graph[output.id]?.inputs.filename_prefix) })),
      extraData: { ...body.extra_data },
    };
    const job = await jobs.create(input, { dialect: DIALECT, dialectData: { ...data } }).catch((error: unknown) => {
      // The core names the inputs by their place in `images`; ComfyUI clients know their LoadImage nodes.
      if (error instanceof DarkroomError && error.fieldErrors.some((problem) => problem.field.includes('images'))) {
        throw refused({ error: { type: 'invalid_prompt', message: error.message, details: '', extra_info: {} }, node_errors: [] });
      }
      throw error;
    });
    request.log.info({ jobId: job.id, promptId, provider: job.provider }, 'prompt queued');
    return { prompt_id: promptId, number: data.number, node_errors: {} };
  }

  /** Each route at ComfyUI's path and at the `/api/` alias its current frontend uses. */
  const both = (path: string) => [path, `/api${path}`];

  for (const path of both('/prompt')) {
    app.post(path, { config: { group: 'generate' as const, idempotent: true }, schema: { tags, summary: 'Queue a graph (API format)', body: PromptBody } }, async (request) =>
      queuePrompt(request, request.body),
    );
    app.get(path, { schema: { tags, summary: 'How many of the caller’s prompts are queued or running' } }, async (request) => ({
      exec_info: { queue_remaining: await remaining(scoped(request)) },
    }));
  }

  for (const path of both('/queue')) {
    app.get(path, { schema: { tags, summary: 'The caller’s running and pending prompts' } }, async (request) => {
      const jobs = scoped(request);
      const [running, queued] = await Promise.all([
        jobs.list({ status: 'running', dialect: DIALECT, limit: 100 }),
        jobs.list({ status: 'queued', dialect: DIALECT, limit: 100 }),
      ]);
      return { queue_running: running.items.reverse().map(queueItem), queue_pending: queued.items.reverse().map(queueItem) };
    });
    app.post(path, { schema: { tags, summary: 'Cancel pending prompts: {clear: true} or {delete: [prompt_id]}', body: ManageBody } }, async (request) => {
      const jobs = scoped(request);
      const pending = (await jobs.list({ status: 'queued', dialect: DIALECT, limit: 100 })).items;
      const doomed = request.body.clear ? pending : pending.filter((job) => request.body.delete?.includes(dataOf(job).promptId));
      await Promise.all(doomed.map((job) => jobs.cancel(job.id).catch(() => undefined)));
      return {};
    });
  }

  for (const path of both('/interrupt')) {
    // Clients send it with no body as often as with one, so the body is read here rather than by a schema.
    app.post(path, { schema: { tags, summary: 'Stop the caller’s running prompt (that one with prompt_id)' } }, async (request) => {
      const jobs = scoped(request);
      const body: unknown = request.body;
      const promptId = typeof body === 'object' && body !== null && 'prompt_id' in body ? (body as { prompt_id: unknown }).prompt_id : undefined;
      if (promptId !== undefined && (typeof promptId !== 'string' || promptId.length > 200)) {
        throw new DialectError(400, 'prompt_id must be a prompt id', { fields: [{ field: 'prompt_id', message: 'must be text of at most 200 characters' }] });
      }
      const running = (await jobs.list({ status: 'running', dialect: DIALECT, limit: 100 })).items;
      const doomed = promptId === undefined ? running : running.filter((job) => dataOf(job).promptId === promptId);
      await Promise.all(doomed.map((job) => jobs.cancel(job.id).catch(() => undefined)));
      return {};
    });
  }

  for (const path of both('/history')) {
    app.get(path, { schema: { tags, summary: 'The caller’s finished prompts, newest first', querystring: HistoryQuery } }, async (request) => {
      const page = await scoped(request).page({ dialect: DIALECT, page: 1 + Math.floor((request.query.offset ?? 0) / (request.query.max_items ?? DEFAULT_HISTORY)), pageSize: request.query.max_items ?? DEFAULT_HISTORY });
      return Object.fromEntries(page.filter((job) => isTerminal(job.status)).map((job) => [dataOf(job).promptId, historyEntry(job)]));
    });
    app.post(path, { schema: { tags, summary: 'Accepted; darkroom keeps its jobs as its record', body: ManageBody } }, async () => ({}));
    app.get(`${path}/:id`, { schema: { tags, summary: 'One finished prompt; {} until it finishes', params: PromptIdParams } }, async (request) => {
      const job = await findPrompt(scoped(request), request.params.id);
      return job && isTerminal(job.status) ? { [request.params.id]: historyEntry(job) } : {};
    });
  }

  for (const path of both('/view')) {
    app.get(path, { schema: { tags, summary: 'An output image of one of the caller’s prompts', querystring: ViewQuery } }, async (request, reply) => {
      const named = parseOutputName(request.query.filename);
      if (!named || request.query.type === 'input') throw new DialectError(404, `No file ${request.query.filename}`);
      const image = await scoped(request).readImage(named.jobId, named.index);
      return reply.type(image.contentType).header('cache-control', 'private, max-age=3600').send(image.bytes);
    });
  }

  async function upload(request: FastifyRequest) {
    if (!request.isMultipart()) throw new DialectError(415, 'Send the image as multipart/form-data with a part named image');
    let file: Buffer | undefined;
    let declared: string | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'file' && part.fieldname === 'image' && file === undefined) {
        file = await part.toBuffer();
        declared = part.mimetype;
      } else if (part.type === 'file') {
        await part.toBuffer();
      }
    }
    if (!file) throw new DialectError(400, 'The form has no image part', { fields: [{ field: 'image', message: 'is required' }] });
    const stored = await scoped(request).upload(file, declared?.startsWith('image/') ? declared : undefined);
    return { name: `${stored.id}.${EXTENSION[stored.contentType] ?? 'png'}`, subfolder: '', type: 'input' };
  }
  for (const path of [...both('/upload/image'), ...both('/upload/mask')]) {
    app.post(path, { config: { group: 'generate' as const }, bodyLimit: maxBytes + 1_048_576, schema: { tags, summary: 'Store an input image; LoadImage nodes name it by the answer’s name', consumes: ['multipart/form-data'] } }, upload);
  }

  const objectInfo = (): Record<string, NodeDefinition> => Object.fromEntries(KNOWN_NODES.map((name) => [name, nodeDefinition(name)]));
  for (const path of both('/object_info')) {
    app.get(path, { schema: { tags, summary: 'The nodes darkroom reads' } }, async () => objectInfo());
    app.get(`${path}/:node`, { schema: { tags, summary: 'One node’s definition; {} for one darkroom does not read', params: NodeClassParams } }, async (request) => {
      const definition = objectInfo()[request.params.node];
      return definition ? { [request.params.node]: definition } : {};
    });
  }

  for (const path of both('/system_stats')) {
    app.get(path, { schema: { tags, summary: 'This server' } }, async () => ({
      system: { os: platform(), ram_total: totalmem(), ram_free: freemem(), comfyui_version: 'darkroom', python_version: '', pytorch_version: '', embedded_python: false, argv: [] },
      devices: [],
    }));
  }
  for (const path of both('/features')) {
    app.get(path, { schema: { tags, summary: 'What this server supports' } }, async () => ({ supports_preview_metadata: false, max_upload_size: maxBytes }));
  }

  for (const path of both('/ws')) {
    app.get(path, { websocket: true, schema: { tags, summary: 'ComfyUI’s WebSocket: status, execution_start, executing, progress, executed, execution_success, execution_error, execution_interrupted', querystring: WsQuery } }, (socket, request) => {
      const clientId = (request.query as { clientId?: string }).clientId ?? randomUUID().replaceAll('-', '');
      void stream(socket, request, clientId);
    });
  }

  /** Sends the caller's events as ComfyUI's messages: every queue change as `status`, a prompt's own progress to the client that queued it. */
  async function stream(socket: WebSocket, request: FastifyRequest, clientId: string): Promise<void> {
    const jobs = scoped(request);
    const controller = new AbortController();
    socket.on('close', () => controller.abort());
    socket.on('error', () => controller.abort());
    const send = (type: string, data: Record<string, unknown>) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type, data }));
    };
    const status = async () => send('status', { status: { exec_info: { queue_remaining: await remaining(jobs) } }, sid: clientId });
    const seen = new Map<string, JobView | null>();
    try {
      const after = await feed.lastEventId();
      await status();
      const owner = request.caller.owner === null ? undefined : request.caller.owner;
      for await (const event of feed.follow({ after, recheckMs: RECHECK_MS, signal: controller.signal, owner })) {
        let job = seen.get(event.jobId);
        if (job === undefined) {
          const found = (await jobs.getMany([event.jobId]))[0];
          job = found && found.dialect === DIALECT ? found : null;
          seen.set(event.jobId, job);
        }
        if (!job) continue;
        if (event.type === 'created' || event.type === 'status') await status();
        if (dataOf(job).clientId !== clientId) continue;
        await translate(jobs, event, job, send);
      }
    } catch (error) {
      if (!controller.signal.aborted) request.log.warn({ err: error }, 'comfyui websocket stream stopped');
    } finally {
      if (socket.readyState === socket.OPEN) socket.close();
    }
  }

  async function translate(jobs: ScopedJobs, event: JobEvent, job: JobView, send: (type: string, data: Record<string, unknown>) => void): Promise<void> {
    const data = dataOf(job);
    const base = { prompt_id: data.promptId };
    const node = data.samplerNode;
    if (event.type === 'status' && event.status === 'running') {
      send('execution_start', { ...base, timestamp: event.createdAt.getTime() });
      send('execution_cached', { nodes: [], ...base, timestamp: event.createdAt.getTime() });
      send('executing', { node, display_node: node, ...base });
    } else if (event.type === 'progress' && typeof event.data.progress === 'number') {
      const steps = job.request.steps ?? 20;
      // Again with each step: a client that queued the prompt and subscribed after it started (a
      // fast queue answers the start before the POST) still learns which prompt is executing.
      send('executing', { node, display_node: node, ...base });
      send('progress', { value: Math.round(event.data.progress * steps), max: steps, ...base, node });
    } else if (event.type === 'status' && event.status === 'succeeded') {
      const finished = await jobs.get(job.id);
      const outputs = outputsOf(finished);
      for (const output of data.outputs) {
        send('executing', { node: output.id, display_node: output.id, ...base });
        send('executed', { node: output.id, display_node: output.id, output: outputs[output.id], ...base });
      }
      send('execution_success', { ...base, timestamp: event.createdAt.getTime() });
      send('executing', { node: null, ...base });
    } else if (event.type === 'status' && (event.status === 'failed' || event.status === 'expired')) {
      const finished = await jobs.get(job.id);
      send('execution_error', { ...executionError(finished), timestamp: event.createdAt.getTime() });
    } else if (event.type === 'status' && event.status === 'cancelled') {
      send('execution_interrupted', { ...base, node_id: node, node_type: 'KSampler', executed: [], timestamp: event.createdAt.getTime() });
    }
  }
};

interface NodeDefinition {
  input: { required: Record<string, unknown[]>; optional?: Record<string, unknown[]> };
  input_order: { required: string[] };
  output: string[];
  output_is_list: boolean[];
  output_name: string[];
  name: string;
  display_name: string;
  description: string;
  python_module: string;
  category: string;
  output_node: boolean;
}

const INT = (defaultValue: number, min: number, max: number) => ['INT', { default: defaultValue, min, max }];
const FLOAT = (defaultValue: number, min: number, max: number, step: number) => ['FLOAT', { default: defaultValue, min, max, step }];

/** The inputs and outputs of each node darkroom reads, as ComfyUI's /object_info describes them. */
const NODES: Record<string, { inputs: Record<string, unknown[]>; outputs: [string, string][]; category: string; outputNode?: boolean }> = {
  CheckpointLoaderSimple: { inputs: { ckpt_name: [['default']] }, outputs: [['MODEL', 'MODEL'], ['CLIP', 'CLIP'], ['VAE', 'VAE']], category: 'loaders' },
  CLIPTextEncode: { inputs: { text: ['STRING', { multiline: true }], clip: ['CLIP'] }, outputs: [['CONDITIONING', 'CONDITIONING']], category: 'conditioning' },
  EmptyLatentImage: { inputs: { width: INT(512, 64, 2048), height: INT(512, 64, 2048), batch_size: INT(1, 1, 10) }, outputs: [['LATENT', 'LATENT']], category: 'latent' },
  KSampler: {
    inputs: {
      model: ['MODEL'], seed: INT(0, 0, Number.MAX_SAFE_INTEGER), steps: INT(20, 1, 10000), cfg: FLOAT(8, 0, 100, 0.1),
      sampler_name: [[...COMFY_SAMPLERS]], scheduler: [[...COMFY_SCHEDULERS]], positive: ['CONDITIONING'], negative: ['CONDITIONING'],
      latent_image: ['LATENT'], denoise: FLOAT(1, 0, 1, 0.01),
    },
    outputs: [['LATENT', 'LATENT']],
    category: 'sampling',
  },
  KSamplerAdvanced: {
    inputs: {
      model: ['MODEL'], add_noise: [['enable', 'disable']], noise_seed: INT(0, 0, Number.MAX_SAFE_INTEGER), steps: INT(20, 1, 10000), cfg: FLOAT(8, 0, 100, 0.1),
      sampler_name: [[...COMFY_SAMPLERS]], scheduler: [[...COMFY_SCHEDULERS]], positive: ['CONDITIONING'], negative: ['CONDITIONING'], latent_image: ['LATENT'],
      start_at_step: INT(0, 0, 10000), end_at_step: INT(10000, 0, 10000), return_with_leftover_noise: [['disable', 'enable']],
    },
    outputs: [['LATENT', 'LATENT']],
    category: 'sampling',
  },
  VAEDecode: { inputs: { samples: ['LATENT'], vae: ['VAE'] }, outputs: [['IMAGE', 'IMAGE']], category: 'latent' },
  VAEEncode: { inputs: { pixels: ['IMAGE'], vae: ['VAE'] }, outputs: [['LATENT', 'LATENT']], category: 'latent' },
  SetLatentNoiseMask: { inputs: { samples: ['LATENT'], mask: ['MASK'] }, outputs: [['LATENT', 'LATENT']], category: 'latent/inpaint' },
  LoadImage: { inputs: { image: [[], { image_upload: true }] }, outputs: [['IMAGE', 'IMAGE'], ['MASK', 'MASK']], category: 'image' },
  LoadImageMask: { inputs: { image: [[], { image_upload: true }], channel: [['alpha', 'red', 'green', 'blue']] }, outputs: [['MASK', 'MASK']], category: 'mask' },
  SaveImage: { inputs: { images: ['IMAGE'], filename_prefix: ['STRING', { default: 'ComfyUI' }] }, outputs: [], category: 'image', outputNode: true },
  PreviewImage: { inputs: { images: ['IMAGE'] }, outputs: [], category: 'image', outputNode: true },
};

function nodeDefinition(name: string): NodeDefinition {
  const node = NODES[name] as (typeof NODES)[string];
  return {
    input: { required: node.inputs },
    input_order: { required: Object.keys(node.inputs) },
    output: node.outputs.map(([type]) => type),
    output_is_list: node.outputs.map(() => false),
    output_name: node.outputs.map(([, label]) => label),
    name,
    display_name: name,
    description: '',
    python_module: 'nodes',
    category: node.category,
    output_node: node.outputNode ?? false,
  };
}
