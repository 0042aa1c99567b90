/**
 * ComfyUI's server API: the prompt graph in API format, `/prompt`, `/history`, `/queue`, `/view`,
 * `/upload/image`, `/object_info` and the `/ws` messages, as its server answers them; reading the
 * parameters out of a graph made of the core nodes, and the graphs darkroom sends for parameter
 * jobs. Shared by darkroom's ComfyUI dialect and its comfyui provider.
 */

/** A link to another node's output: `[nodeId, outputIndex]`. */
export type Link = [string, number];

export interface WorkflowNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string };
}

/** A prompt in API format: node id → node. */
export type Workflow = Record<string, WorkflowNode>;

export interface PromptRequest {
  prompt: Workflow;
  client_id?: string;
  /** Recent servers take the id from the client, so a client that lost the answer can look it up. */
  prompt_id?: string;
  extra_data?: Record<string, unknown>;
  front?: boolean;
  number?: number;
}

export interface PromptResponse {
  prompt_id: string;
  number: number;
  node_errors: Record<string, NodeError>;
}

export interface ComfyError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

export interface NodeError {
  errors: ComfyError[];
  dependent_outputs: string[];
  class_type: string;
}

/** What `/prompt` answers with 400. */
export interface PromptErrorBody {
  error: ComfyError;
  node_errors: Record<string, NodeError> | [];
}

export interface ImageRef {
  filename: string;
  subfolder: string;
  type: 'output' | 'input' | 'temp';
}

/** One `/history` entry. */
export interface HistoryEntry {
  prompt: [number, string, Workflow, Record<string, unknown>, string[]];
  outputs: Record<string, { images: ImageRef[] }>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: [string, Record<string, unknown>][] };
  meta: Record<string, { node_id: string; display_node: string; parent_node: null; real_node_id: string }>;
}

/** One `/queue` item: number, prompt id, graph, extra data, output node ids. */
export type QueueItem = [number, string, Workflow, Record<string, unknown>, string[]];

/** The nodes darkroom's ComfyUI dialect can read (ComfyUI's core nodes for SD 1.5/SDXL graphs). */
export const KNOWN_NODES = [
  'CheckpointLoaderSimple',
  'CLIPTextEncode',
  'EmptyLatentImage',
  'KSampler',
  'KSamplerAdvanced',
  'VAEDecode',
  'VAEEncode',
  'SetLatentNoiseMask',
  'LoadImage',
  'LoadImageMask',
  'SaveImage',
  'PreviewImage',
] as const;

export const OUTPUT_NODES = ['SaveImage', 'PreviewImage'];

export const COMFY_SAMPLERS = [
  'euler', 'euler_cfg_pp', 'euler_ancestral', 'euler_ancestral_cfg_pp', 'heun', 'heunpp2', 'dpm_2', 'dpm_2_ancestral', 'lms', 'dpm_fast',
  'dpm_adaptive', 'dpmpp_2s_ancestral', 'dpmpp_sde', 'dpmpp_sde_gpu', 'dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_2m_sde_gpu', 'dpmpp_3m_sde',
  'dpmpp_3m_sde_gpu', 'ddpm', 'lcm', 'ipndm', 'ipndm_v', 'deis', 'ddim', 'uni_pc', 'uni_pc_bh2',
] as const;
export const COMFY_SCHEDULERS = ['normal', 'karras', 'exponential', 'sgm_uniform', 'simple', 'ddim_uniform', 'beta', 'linear_quadratic', 'kl_optimal'] as const;

const isLink = (value: unknown): value is Link =>
  Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && Number.isInteger(value[1]);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** What a graph asks for, in darkroom's terms. */
export interface WorkflowParameters {
  prompt: string;
  negativePrompt: string;
  width?: number;
  height?: number;
  batchSize: number;
  seed: number;
  steps: number;
  cfg: number;
  sampler: string;
  scheduler: string;
  /** 1 for text to image; how much of the init image may change otherwise. */
  denoise: number;
  checkpoint?: string;
  /** The LoadImage (or LoadImageMask) file names, by role. */
  initImage?: string;
  maskImage?: string;
  /** The sampler node (progress is reported on it) and the output nodes (with their class). */
  samplerNode: string;
  outputs: { id: string; classType: string }[];
}

export type ReadResult = { ok: true; parameters: WorkflowParameters } | { ok: false; error: PromptErrorBody };

const problem = (type: string, message: string, details = '', extra_info: Record<string, unknown> = {}): ComfyError => ({ type, message, details, extra_info });

/**
 * Reads a graph as ComfyUI's validation would see it and takes out its parameters: the sampler
 * reached from each output through VAEDecode, its prompts, latent (empty, or an encoded LoadImage
 * with an optional noise mask), seed, steps, cfg, sampler, scheduler, denoise and checkpoint.
 * A graph with nodes it does not know, a missing input, a dangling link or no output is answered
 * as ComfyUI answers it (`node_errors` per node).
 */
export function readWorkflow(graph: unknown): ReadResult {
  if (!isRecord(graph) || Object.keys(graph).length === 0) {
    return { ok: false, error: { error: problem('invalid_prompt', 'Cannot execute because the prompt is not a graph of nodes.', ''), node_errors: [] } };
  }
  for (const [id, node] of Object.entries(graph)) {
    if (!isRecord(node) || typeof node.class_type !== 'string' || !isRecord(node.inputs)) {
      return { ok: false, error: { error: problem('invalid_prompt', `Cannot execute because node ${id} has no class_type and inputs.`, `Node ID '#${id}'`), node_errors: [] } };
    }
    if (!(KNOWN_NODES as readonly string[]).includes(node.class_type)) {
      return {
        ok: false,
        error: {
          error: problem('missing_node_type', `Node '${node.class_type}' not found. darkroom runs graphs of ComfyUI's core nodes (${KNOWN_NODES.join(', ')}).`, `Node ID '#${id}'`, { node_id: id, class_type: node.class_type }),
          node_errors: [],
        },
      };
    }
  }
  const workflow = graph as unknown as Workflow;
  const outputs = Object.entries(workflow)
    .filter(([, node]) => OUTPUT_NODES.includes(node.class_type))
    .map(([id, node]) => ({ id, classType: node.class_type }));
  if (outputs.length === 0) return { ok: false, error: { error: problem('prompt_no_outputs', 'Prompt has no outputs', ''), node_errors: [] } };

  const nodeErrors: Record<string, NodeError> = {};
  const fail = (id: string, output: string, error: ComfyError) => {
    const entry = (nodeErrors[id] ??= { errors: [], dependent_outputs: [], class_type: workflow[id]?.class_type ?? 'unknown' });
    entry.errors.push(error);
    if (!entry.dependent_outputs.includes(output)) entry.dependent_outputs.push(output);
  };
  const missing = (name: string) => problem('required_input_missing', 'Required input is missing', name, { input_name: name });
  const invalid = (name: string, value: unknown, expected: string) =>
    problem('value_not_valid', `Value not valid: ${name} must be ${expected}`, `${name}: ${JSON.stringify(value)?.slice(0, 100)}`, { input_name: name, received_value: value });

  /** The node a link input points at, when it is of one of `classes`; records the problem otherwise. */
  const linked = (id: string, output: string, name: string, classes: string[]): [string, WorkflowNode] | undefined => {
    const value = workflow[id]?.inputs[name];
    if (value === undefined) return void fail(id, output, missing(name));
    if (!isLink(value)) return void fail(id, output, problem('bad_linked_input', 'Bad linked input, must be a length-2 list of [string, int]', name, { input_name: name }));
    const target = workflow[value[0]];
    if (!target) return void fail(id, output, problem('bad_linked_input', `Bad linked input: node ${value[0]} does not exist`, name, { input_name: name }));
    if (!classes.includes(target.class_type)) {
      return void fail(id, output, problem('return_type_mismatch', `Return type mismatch between linked nodes: ${name} takes the output of ${classes.join(' or ')}, not ${target.class_type}`, name, { input_name: name }));
    }
    return [value[0], target];
  };
  const number = (id: string, output: string, name: string, min: number, max: number, integer: boolean): number | undefined => {
    const value = workflow[id]?.inputs[name];
    if (value === undefined) return void fail(id, output, missing(name));
    if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
      return void fail(id, output, invalid(name, value, `${integer ? 'an integer' : 'a number'} from ${min} to ${max}`));
    }
    return value;
  };
  const text = (id: string, output: string, name: string, allowed?: readonly string[]): string | undefined => {
    const value = workflow[id]?.inputs[name];
    if (value === undefined) return void fail(id, output, missing(name));
    if (typeof value !== 'string' || (allowed && !allowed.includes(value))) return void fail(id, output, invalid(name, value, allowed ? `one of ${allowed.join(', ')}` : 'text'));
    return value;
  };

  let parameters: WorkflowParameters | undefined;
  for (const output of outputs) {
    const decode = linked(output.id, output.id, 'images', ['VAEDecode']);
    if (!decode) continue;
    const sampler = linked(decode[0], output.id, 'samples', ['KSampler', 'KSamplerAdvanced']);
    if (!sampler) continue;
    const [samplerId, samplerNode] = sampler;
    const advanced = samplerNode.class_type === 'KSamplerAdvanced';
    const seed = number(samplerId, output.id, advanced ? 'noise_seed' : 'seed', 0, Number.MAX_SAFE_INTEGER, true);
    const steps = number(samplerId, output.id, 'steps', 1, 10_000, true);
    const cfg = number(samplerId, output.id, 'cfg', 0, 100, false);
    const samplerName = text(samplerId, output.id, 'sampler_name', COMFY_SAMPLERS);
    const scheduler = text(samplerId, output.id, 'scheduler', COMFY_SCHEDULERS);
    let denoise = 1;
    if (advanced) {
      const start = number(samplerId, output.id, 'start_at_step', 0, 10_000, true);
      if (steps !== undefined && start !== undefined) denoise = Math.max(0, Math.min(1, 1 - start / steps));
    } else {
      denoise = number(samplerId, output.id, 'denoise', 0, 1, false) ?? 1;
    }
    const prompts = ['positive', 'negative'].map((name) => {
      const encoder = linked(samplerId, output.id, name, ['CLIPTextEncode']);
      return encoder ? text(encoder[0], output.id, 'text') : undefined;
    });
    const model = linked(samplerId, output.id, 'model', ['CheckpointLoaderSimple']);
    const checkpoint = model ? text(model[0], output.id, 'ckpt_name') : undefined;
    linked(decode[0], output.id, 'vae', ['CheckpointLoaderSimple']);

    const latent = linked(samplerId, output.id, 'latent_image', ['EmptyLatentImage', 'VAEEncode', 'SetLatentNoiseMask']);
    let width: number | undefined;
    let height: number | undefined;
    let batchSize = 1;
    let initImage: string | undefined;
    let maskImage: string | undefined;
    const encoded = (encoderId: string) => {
      const loader = linked(encoderId, output.id, 'pixels', ['LoadImage']);
      return loader ? text(loader[0], output.id, 'image') : undefined;
    };
    if (latent?.[1].class_type === 'EmptyLatentImage') {
      width = number(latent[0], output.id, 'width', 16, 16_384, true);
      height = number(latent[0], output.id, 'height', 16, 16_384, true);
      batchSize = number(latent[0], output.id, 'batch_size', 1, 4096, true) ?? 1;
    } else if (latent?.[1].class_type === 'VAEEncode') {
      initImage = encoded(latent[0]);
    } else if (latent?.[1].class_type === 'SetLatentNoiseMask') {
      const samples = linked(latent[0], output.id, 'samples', ['VAEEncode']);
      if (samples) initImage = encoded(samples[0]);
      const mask = linked(latent[0], output.id, 'mask', ['LoadImageMask']);
      if (mask) {
        maskImage = text(mask[0], output.id, 'image');
        // A black-and-white mask reads the same in any colour channel; its alpha is another picture.
        text(mask[0], output.id, 'channel', ['red', 'green', 'blue']);
      }
    }
    if (parameters === undefined && samplerName !== undefined && scheduler !== undefined && seed !== undefined && steps !== undefined && cfg !== undefined) {
      parameters = {
        prompt: prompts[0] ?? '',
        negativePrompt: prompts[1] ?? '',
        ...(width === undefined ? {} : { width }),
        ...(height === undefined ? {} : { height }),
        batchSize,
        seed,
        steps,
        cfg,
        sampler: samplerName,
        scheduler,
        denoise,
        ...(checkpoint === undefined ? {} : { checkpoint }),
        ...(initImage === undefined ? {} : { initImage }),
        ...(maskImage === undefined ? {} : { maskImage }),
        samplerNode: samplerId,
        outputs,
      };
    }
  }
  if (Object.keys(nodeErrors).length > 0 || !parameters) {
    return { ok: false, error: { error: problem('prompt_outputs_failed_validation', 'Prompt outputs failed validation', ''), node_errors: nodeErrors } };
  }
  return { ok: true, parameters };
}

/**
 * A darkroom job's parameters read from a graph, in the native API's terms: what a workflow job
 * without its own says (its own win), or ComfyUI's validation errors as one sentence each.
 */
export function workflowFields(graph: unknown): { ok: true; fields: Record<string, unknown> } | { ok: false; problems: string[] } {
  const read = readWorkflow(graph);
  if (!read.ok) {
    const nodes = Array.isArray(read.error.node_errors) ? [] : Object.entries(read.error.node_errors);
    const problems = nodes.flatMap(([id, entry]) => entry.errors.map((error) => `node ${id} (${entry.class_type}): ${error.message}${error.details ? ` (${error.details})` : ''}`));
    return { ok: false, problems: problems.length > 0 ? problems : [`${read.error.error.message}${read.error.error.details ? ` (${read.error.error.details})` : ''}`] };
  }
  const p = read.parameters;
  const side = (value: number | undefined) => (value === undefined ? undefined : Math.min(2048, Math.max(64, Math.floor(value / 8) * 8)));
  const fields: Record<string, unknown> = {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt || undefined,
    width: side(p.width),
    height: side(p.height),
    numImages: Math.min(10, p.batchSize),
    steps: Math.min(150, p.steps),
    cfgScale: Math.min(30, Math.max(1, p.cfg)),
    seed: p.seed % 4294967296,
    scheduler: darkroomSchedulerOf(p.sampler, p.scheduler),
    model: p.checkpoint,
    strength: p.initImage ? p.denoise : undefined,
  };
  return { ok: true, fields: Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined && value !== '')) };
}

/** The image file names a graph's LoadImage and LoadImageMask nodes load, in node id order, each once. */
export function loadImageNames(graph: Workflow): string[] {
  const names: string[] = [];
  const ids = Object.keys(graph).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const id of ids) {
    const node = graph[id] as WorkflowNode;
    const image = node.inputs.image;
    if ((node.class_type === 'LoadImage' || node.class_type === 'LoadImageMask') && typeof image === 'string' && !names.includes(image)) names.push(image);
  }
  return names;
}

/** What darkroom's graphs for a parameter job are made of. */
export interface TemplateParameters {
  checkpoint: string;
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  batchSize: number;
  seed: number;
  steps: number;
  cfg: number;
  sampler: string;
  scheduler: string;
  /** For image to image: the uploaded init image's name and how much of it may change. */
  init?: { image: string; denoise: number };
  /** For inpainting: the uploaded mask's name (white is repainted). */
  mask?: string;
  filenamePrefix: string;
}

/**
 * The classic graph: checkpoint → two prompts → latent → KSampler → VAE decode → SaveImage. The
 * latent is empty for text to image, the encoded init image for image to image, and that with a
 * noise mask from the mask's red channel for inpainting.
 */
export function templateWorkflow(p: TemplateParameters): Workflow {
  const graph: Workflow = {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: p.checkpoint } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: p.prompt, clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: p.negativePrompt, clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: { seed: p.seed, steps: p.steps, cfg: p.cfg, sampler_name: p.sampler, scheduler: p.scheduler, denoise: p.init?.denoise ?? 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: p.filenamePrefix, images: ['8', 0] } },
  };
  if (!p.init) {
    graph['5'] = { class_type: 'EmptyLatentImage', inputs: { width: p.width, height: p.height, batch_size: p.batchSize } };
    return graph;
  }
  graph['10'] = { class_type: 'LoadImage', inputs: { image: p.init.image } };
  graph['11'] = { class_type: 'VAEEncode', inputs: { pixels: ['10', 0], vae: ['4', 2] } };
  if (!p.mask) {
    graph['5'] = { class_type: 'VAEEncode', inputs: { pixels: ['10', 0], vae: ['4', 2] } };
    delete graph['11'];
    return graph;
  }
  graph['12'] = { class_type: 'LoadImageMask', inputs: { image: p.mask, channel: 'red' } };
  graph['5'] = { class_type: 'SetLatentNoiseMask', inputs: { samples: ['11', 0], mask: ['12', 0] } };
  return graph;
}

/** ComfyUI's KSampler sampler and scheduler for darkroom's free-text scheduler (A1111 or Civitai spelling). */
export function comfySampler(name: string | undefined): { sampler: string; scheduler: string } {
  if (name === undefined) return { sampler: 'euler', scheduler: 'normal' };
  if ((COMFY_SAMPLERS as readonly string[]).includes(name)) return { sampler: name, scheduler: 'normal' };
  const key = name.toLowerCase().replaceAll('+', 'p').replace(/[^a-z0-9]/g, '');
  const scheduler = key.endsWith('karras') ? 'karras' : key.endsWith('exponential') ? 'exponential' : 'normal';
  const base = key.replace(/(karras|exponential)$/, '');
  const table: Record<string, string> = {
    euler: 'euler', eulera: 'euler_ancestral', eulerancestral: 'euler_ancestral', heun: 'heun', lms: 'lms', ddim: 'ddim', dpm2: 'dpm_2',
    dpm2a: 'dpm_2_ancestral', dpmpp2m: 'dpmpp_2m', dpm2m: 'dpmpp_2m', dpmpp2msde: 'dpmpp_2m_sde', dpmppsde: 'dpmpp_sde', dpmpp2sa: 'dpmpp_2s_ancestral',
    dpmpp3msde: 'dpmpp_3m_sde', unipc: 'uni_pc', lcm: 'lcm', dpmfast: 'dpm_fast', dpmadaptive: 'dpm_adaptive',
  };
  return { sampler: table[base] ?? 'euler', scheduler };
}

/** darkroom's scheduler for a KSampler's sampler and scheduler (`dpmpp_2m` + `karras` → `dpmpp_2m karras`). */
export const darkroomSchedulerOf = (sampler: string, scheduler: string) => (scheduler === 'normal' ? sampler : `${sampler} ${scheduler}`);

/** The error text of a `/prompt` refusal: the error's message and each node's, with the node ids. */
export function promptErrorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as Partial<PromptErrorBody>;
    const parts: string[] = [];
    if (parsed.error?.message) parts.push(parsed.error.message + (parsed.error.details ? ` (${parsed.error.details})` : ''));
    if (isRecord(parsed.node_errors)) {
      for (const [id, entry] of Object.entries(parsed.node_errors as Record<string, NodeError>)) {
        for (const error of entry.errors ?? []) parts.push(`node ${id} (${entry.class_type}): ${error.message}${error.details ? ` ${error.details}` : ''}`);
      }
    }
    if (parts.length > 0) return parts.join('; ').slice(0, 500);
    const generic = parsed as { error?: unknown; message?: unknown; detail?: unknown };
    for (const value of [generic.error, generic.message, generic.detail]) if (typeof value === 'string' && value) return value.slice(0, 500);
  } catch {
    // Not JSON: the text is the message.
  }
  return body.trim().replace(/\s+/g, ' ').slice(0, 300);
}

/** The graphs an operator may give for parameter jobs, one file each in COMFYUI_TEMPLATES_DIR (`txt2img.json`, …). */
export const TEMPLATE_KINDS = ['txt2img', 'img2img', 'inpaint'] as const;
export type TemplateKind = (typeof TEMPLATE_KINDS)[number];

/** What a template's map may place, and where a job's value for it comes from. */
export const TEMPLATE_FIELDS = ['prompt', 'negativePrompt', 'seed', 'steps', 'cfg', 'sampler', 'scheduler', 'width', 'height', 'batch', 'checkpoint', 'init', 'mask', 'denoise', 'filenamePrefix'] as const;
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

/**
 * An operator's graph and where each value goes: `{"workflow": {…API format…}, "map": {"prompt":
 * "6.inputs.text", "seed": "3.inputs.noise_seed", …}}`. A field may go to several places (a list).
 */
export interface OperatorTemplate {
  workflow: Workflow;
  map: Partial<Record<TemplateField, string[]>>;
}

const REQUIRED_FIELDS: Record<TemplateKind, TemplateField[]> = {
  txt2img: ['prompt', 'seed'],
  img2img: ['prompt', 'seed', 'init'],
  inpaint: ['prompt', 'seed', 'init', 'mask'],
};

/** Reads one template file's text; the problem, in words for an operator, when it is not one. */
export function parseOperatorTemplate(kind: TemplateKind, text: string): { ok: true; template: OperatorTemplate } | { ok: false; problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: `is not JSON (${error instanceof Error ? error.message : 'unreadable'})` };
  }
  if (!isRecord(parsed) || !isRecord(parsed.workflow) || !isRecord(parsed.map)) return { ok: false, problem: 'must be {"workflow": {…}, "map": {…}}' };
  const read = readWorkflow(parsed.workflow);
  if (!read.ok && read.error.error.type === 'invalid_prompt') return { ok: false, problem: `has a workflow that is not a graph: ${read.error.error.message}` };
  const workflow = parsed.workflow as unknown as Workflow;
  const map: Partial<Record<TemplateField, string[]>> = {};
  for (const [field, where] of Object.entries(parsed.map)) {
    if (!(TEMPLATE_FIELDS as readonly string[]).includes(field)) return { ok: false, problem: `maps "${field}", which is none of ${TEMPLATE_FIELDS.join(', ')}` };
    const paths = Array.isArray(where) ? where : [where];
    for (const path of paths) {
      const match = typeof path === 'string' ? /^([^.]+)\.inputs\.([^.]+)$/.exec(path) : null;
      if (!match || !workflow[match[1] as string]) return { ok: false, problem: `maps ${field} to ${JSON.stringify(path)}, which is not "<node id>.inputs.<name>" of a node in its workflow` };
    }
    map[field as TemplateField] = paths as string[];
  }
  const missing = REQUIRED_FIELDS[kind].filter((field) => !map[field]);
  if (missing.length > 0) return { ok: false, problem: `does not map ${missing.join(', ')}` };
  return { ok: true, template: { workflow, map } };
}

/** The template's graph with a job's values put where its map says. */
export function fillTemplate(template: OperatorTemplate, p: TemplateParameters): Workflow {
  const graph = structuredClone(template.workflow);
  const values: Record<TemplateField, unknown> = {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    seed: p.seed,
    steps: p.steps,
    cfg: p.cfg,
    sampler: p.sampler,
    scheduler: p.scheduler,
    width: p.width,
    height: p.height,
    batch: p.batchSize,
    checkpoint: p.checkpoint,
    init: p.init?.image,
    mask: p.mask,
    denoise: p.init?.denoise ?? 1,
    filenamePrefix: p.filenamePrefix,
  };
  for (const [field, paths] of Object.entries(template.map) as [TemplateField, string[]][]) {
    const value = values[field];
    if (value === undefined) continue;
    for (const path of paths) {
      const [id, , name] = path.split('.') as [string, string, string];
      (graph[id] as WorkflowNode).inputs[name] = value;
    }
  }
  return graph;
}
