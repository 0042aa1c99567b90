import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * Property: whatever a client sends to any operation /openapi.json documents, darkroom answers
 * below 500, and every error is in the error shape of the dialect the path belongs to.
 *
 * Requests are generated from the document itself: path parameters, query values and headers from
 * their schemas, JSON bodies from the request body's schema with strings replaced by hostile ones
 * (NUL, lone surrogates, 10,000 characters, RTL marks, `../`, SQL-ish text), numbers by huge or
 * fractional ones, values by ones of the wrong type, and now and then nesting 65–150 levels deep.
 * Operations whose body the document does not describe (the Civitai routes, which check bodies
 * with their service's own spec, and Fusion Brain's multipart form) get hostile JSON objects, and
 * mutations of a valid example where this file has one. Bounded: a fixed seed and CASES requests
 * per operation, one at a time.
 *
 * darkroom runs with AUTH=off and no worker, so jobs stay queued; long polls (`wait`) are pinned to
 * their shortest, so an accepted request answers within a second.
 */

const SEED = 20_261_206;
const CASES = 20;
/** A request that takes longer has hung: a failure like a 5xx. */
const REQUEST_TIMEOUT_MS = 15_000;
/** How long an A1111 generation request may stay open before it counts as taken (it holds until its job ends). */
const HELD_AFTER_MS = 1500;

interface Schema {
  type?: string | string[];
  minItems?: number;
  maxItems?: number;
  multipleOf?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  format?: string;
}

interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema?: Schema;
}

interface Operation {
  method: string;
  /** The path as documented: `/v2/{endpointId}/run`. */
  template: string;
  parameters: Parameter[];
  body?: Schema;
}

const HOSTILE_STRINGS = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfff',
  'prompt \ud83d',
  'k'.repeat(10_000),
  '\u202eRTL override\u202c \u200f',
  '../../../../etc/passwd',
  '..%2F..%2Fetc',
  "'; DROP TABLE jobs; --",
  '" OR 1=1 --',
  '${jndi:ldap://x}',
  '%00',
  '%',
  '',
  ' ',
  '\r\n\t',
  'null',
  '-1',
  '1e309',
  '😀👍🏽',
  'urn:air:sdxl:checkpoint:civitai:101055@128078',
  '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
];

const hostileString = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 20, unit: 'binary' }));
const hugeNumber = fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -(2 ** 63), 4294967296, 1.5, -0.000001, 0);
/** A value of any JSON type: whatever a schema expects, this is often something else. */
const wrongType = fc.oneof(hugeNumber, fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}), hostileString);
/** Arrays nested past darkroom's JSON limit (64 levels). */
const deepNesting = fc.integer({ min: 65, max: 150 }).map((depth) => {
  let value: unknown = 'deep';
  for (let level = 0; level < depth; level += 1) value = [value];
  return value;
});

const typesOf = (schema: Schema): string[] => (Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : []);

/** A value for `schema`: mostly of its shape, with hostile strings and numbers, sometimes wrong altogether. */
function valueFor(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const variants: fc.Arbitrary<unknown>[] = [];
  if (schema.enum) variants.push(fc.constantFrom(...schema.enum));
  if (schema.const !== undefined) variants.push(fc.constant(schema.const));
  for (const branch of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) variants.push(valueFor(branch, depth + 1));
  for (const type of typesOf(schema)) {
    switch (type) {
      case 'string':
        variants.push(hostileString);
        break;
      case 'integer':
        variants.push(fc.integer({ min: schema.minimum ?? -1000, max: Math.min(schema.maximum ?? 1000, 2 ** 31) }), hugeNumber);
        break;
      case 'number':
        variants.push(fc.double({ noNaN: true, noDefaultInfinity: true }), hugeNumber);
        break;
      case 'boolean':
        variants.push(fc.boolean());
        break;
      case 'null':
        variants.push(fc.constant(null));
        break;
      case 'array':
        variants.push(depth > 5 ? fc.constant([]) : fc.array(valueFor(schema.items ?? {}, depth + 1), { maxLength: 4 }));
        break;
      case 'object':
        variants.push(objectFor(schema, depth));
        break;
    }
  }
  if (variants.length === 0) variants.push(depth > 5 ? hostileString : fc.jsonValue({ maxDepth: 3 }));
  return fc.oneof(
    { weight: 8, arbitrary: fc.oneof(...variants) },
    { weight: 2, arbitrary: wrongType },
    { weight: depth === 1 ? 1 : 0, arbitrary: deepNesting },
  );
}

/** A value the schema accepts (within its bounds, formats and enumerations): what a mutation starts from. */
function validFor(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.const !== undefined) return fc.constant(schema.const);
  const branch = schema.anyOf?.[0] ?? schema.oneOf?.[0];
  if (branch) return validFor(branch, depth);
  const type = typesOf(schema).find((candidate) => candidate !== 'null');
  switch (type) {
    case 'string': {
      if (schema.format === 'uuid') return fc.uuid();
      if (schema.format === 'date-time') return fc.constant(new Date(Date.now() + 3_600_000).toISOString());
      if (schema.format === 'uri') return fc.constant('https://example.com/hook');
      const texts = ['a red kite over the dunes', 'kite', 'urn:air:sdxl:checkpoint:civitai:101055@128078'];
      const fitting = texts.filter((text) => text.length >= (schema.minLength ?? 0) && text.length <= (schema.maxLength ?? Infinity));
      return fc.constantFrom(...(fitting.length > 0 ? fitting : ['k'.repeat(schema.minLength ?? 1)]));
    }
    case 'integer': {
      const step = schema.multipleOf ?? 1;
      const low = Math.ceil((schema.minimum ?? 0) / step);
      const high = Math.floor(Math.min(schema.maximum ?? 1000, 2 ** 31) / step);
      return fc.integer({ min: low, max: Math.max(low, Math.min(high, low + 100)) }).map((n) => n * step);
    }
    case 'number':
      return fc.double({ min: schema.minimum ?? 0, max: schema.maximum ?? 1000, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'array': {
      const items = depth > 5 ? fc.constant('kite') : validFor(schema.items ?? {}, depth + 1);
      return fc.array(items, { minLength: schema.minItems ?? 0, maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? 3, 3)) });
    }
    case 'object': {
      // The required properties and at most two others: many options at once are rarely all valid together.
      const properties = Object.entries(schema.properties ?? {});
      const required = new Set(schema.required ?? []);
      const values = fc.record(Object.fromEntries(properties.map(([name, property]) => [name, validFor(property, depth + 1)])));
      const optional = properties.map(([name]) => name).filter((name) => !required.has(name));
      return fc
        .tuple(values, fc.subarray(optional, { maxLength: Math.min(2, optional.length) }))
        .map(([all, chosen]) => Object.fromEntries(Object.entries(all).filter(([name]) => required.has(name) || chosen.includes(name))));
    }
    default:
      return fc.constant('kite');
  }
}

/** An object with the schema's required properties, some optional ones, and now and then a hostile extra key. */
function objectFor(schema: Schema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 5) return fc.constant({});
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const known = fc.record(
    Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, valueFor(property, depth + 1)])),
    { requiredKeys: Object.keys(properties).filter((name) => required.has(name)) },
  );
  const extraValue = typeof schema.additionalProperties === 'object' ? valueFor(schema.additionalProperties, depth + 1) : valueFor({}, depth + 1);
  const extras = fc.dictionary(hostileString, extraValue, { maxKeys: 2 });
  return fc.tuple(known, fc.option(extras, { freq: 3 })).map(([own, extra]) => ({ ...own, ...(extra ?? {}) }));
}

/**
 * Known good bodies: for operations whose body the document leaves out, and for those whose schema
 * says too little to build a valid one (RunPod's `input` is any object; a batch needs one of two
 * fields). Mutations of them reach the checks behind the schema.
 */
const RUNPOD_INPUT = { input: { prompt: 'a red kite', negative_prompt: 'blurry', width: 512, height: 512, num_inference_steps: 20 } };
const EXAMPLES: Record<string, unknown> = {
  'POST /api/v1/jobs/batch': { jobs: [{ prompt: 'a red kite', metadata: { tag: { nested: 'kite' } } }, { prompt: 'a boat' }], negativePrompt: 'blurry' },
  'POST /v2/{endpointId}/run': RUNPOD_INPUT,
  'POST /v2/{endpointId}/runsync': RUNPOD_INPUT,
  'POST /v1/consumer/jobs': {
    $type: 'textToImage',
    model: 'urn:air:sdxl:checkpoint:civitai:101055@128078',
    params: { prompt: 'a red kite', negativePrompt: 'blurry', width: 512, height: 512, steps: 20 },
    additionalNetworks: { 'urn:air:sdxl:lora:civitai:1@2': { strength: 0.5 } },
    properties: { tag: 'kite' },
  },
  'POST /v1/consumer/jobs/query': { properties: { tag: 'kite' } },
  'POST /v2/resources': { air: 'urn:air:sdxl:checkpoint:civitai:101055@128078', size: 1, hashes: { SHA256: 'ab' }, downloadUrls: ['https://example.com/x'] },
  'PUT /v2/resources/{air}': { air: 'urn:air:sdxl:checkpoint:civitai:101055@128078', size: 1, hashes: {}, downloadUrls: [] },
  'PATCH /v2/resources/{air}': { modelName: 'a model', size: 2 },
};

/** `example` with one leaf replaced, one hostile key added, or one value nested too deep. */
function mutationOf(example: unknown): fc.Arbitrary<unknown> {
  const leaves: (string | number)[][] = [];
  const walk = (value: unknown, path: (string | number)[]) => {
    if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) walk(item, [...path, Array.isArray(value) ? Number(key) : key]);
    }
    leaves.push(path);
  };
  walk(example, []);
  const replaceAt = (path: (string | number)[], replacement: unknown): unknown => {
    if (path.length === 0) return replacement;
    const copy = structuredClone(example) as Record<string | number, unknown>;
    let parent = copy;
    for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
    parent[path.at(-1) as string | number] = replacement;
    return copy;
  };
  const replacement = fc.oneof({ weight: 4, arbitrary: hostileString }, { weight: 1, arbitrary: wrongType }, { weight: 1, arbitrary: deepNesting });
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...leaves), replacement).map(([path, value]) => replaceAt(path, value)) },
    { weight: 1, arbitrary: fc.tuple(hostileString, hostileString).map(([key, value]) => ({ ...(example as object), [key]: value })) },
  );
}

/**
 * A body for an operation: mostly a valid body (an example's, or one built from the schema) with one
 * spot made hostile, which reaches the checks behind the schema; else one hostile throughout; with
 * neither schema nor example, a hostile object. Sometimes no body at all.
 */
function bodyFor(operation: Operation): fc.Arbitrary<unknown> {
  const example = EXAMPLES[`${operation.method} ${operation.template}`];
  const { body } = operation;
  const choices: fc.WeightedArbitrary<unknown>[] = [];
  if (example !== undefined) choices.push({ weight: 6, arbitrary: mutationOf(example) });
  if (body) choices.push({ weight: 6, arbitrary: validFor(body).chain(mutationOf) }, { weight: 3, arbitrary: valueFor(body) });
  if (choices.length === 0) choices.push({ weight: 1, arbitrary: fc.dictionary(hostileString, valueFor({}, 1), { maxKeys: 4 }) });
  const generated = fc.oneof(...choices);
  return fc.oneof({ weight: 9, arbitrary: generated }, { weight: 1, arbitrary: fc.constant(undefined) });
}

/**
 * A path segment or query value percent-encoded as a hostile client would send it: UTF-8, except
 * that a lone surrogate is sent as the three bytes it would take (which are not UTF-8).
 */
function encode(text: string): string {
  let encoded = '';
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    if (code >= 0xd800 && code <= 0xdfff) {
      encoded += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join('');
    } else {
      encoded += encodeURIComponent(character);
    }
  }
  return encoded;
}

const asText = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value) ?? '');

interface Request {
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

/** `arbitrary` one time in `outOf`, else null. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, outOf: number) => fc.oneof({ weight: outOf - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });

function requestFor(operation: Operation): fc.Arbitrary<Request> {
  // A valid value a third of the time, so that the request gets past this parameter to the others.
  const parameter = (item: Parameter) =>
    (item.schema ? fc.oneof({ weight: 1, arbitrary: validFor(item.schema) }, { weight: 2, arbitrary: valueFor(item.schema) }) : hostileString).map(asText);
  const path = fc.tuple(...operation.parameters.filter((item) => item.in === 'path').map((item) => parameter(item).map((value) => [item.name, value] as const)));
  const query = fc.tuple(
    ...operation.parameters
      .filter((item) => item.in === 'query')
      .map((item) => sometimes(parameter(item).map((value) => [item.name, value] as const), 2)),
  );
  // Header values must be visible ASCII, or fetch refuses to send them.
  const header = fc.tuple(
    ...operation.parameters
      .filter((item) => item.in === 'header')
      .map((item) => sometimes(fc.constantFrom(...HOSTILE_STRINGS.filter((text) => /^[\x20-\x7e]{1,1000}$/.test(text))).map((value) => [item.name, value] as const), 4)),
  );
  return fc.record({ path, query, header, body: bodyFor(operation) }).map(({ path: values, query: pairs, header: headers, body }) => {
    let filled = operation.template;
    for (const [name, value] of values) filled = filled.replace(`{${name}}`, encode(value));
    const present = pairs.filter((pair) => pair !== null);
    // Long polls at their shortest: an accepted request must not wait for a job no worker runs.
    if (operation.parameters.some((item) => item.in === 'query' && item.name === 'wait')) {
      const index = present.findIndex(([name]) => name === 'wait');
      if (index === -1 || /^\d+$/.test(present[index]?.[1] ?? '')) present.splice(index === -1 ? present.length : index, index === -1 ? 0 : 1, ['wait', '1']);
    }
    const search = present.map(([name, value]) => `${encode(name)}=${encode(value)}`).join('&');
    return { path: search ? `${filled}?${search}` : filled, headers: Object.fromEntries(headers.filter((pair) => pair !== null)), body };
  });
}

type Shape = 'problem' | 'civitai' | 'runpod' | 'fusionbrain' | 'tasks' | 'images' | 'openai' | 'a1111' | 'comfyui';

/** Whose error shape a documented path answers in. */
function shapeOf(template: string): Shape {
  if (template.startsWith('/api/v1/runpod/')) return 'tasks';
  if (template.startsWith('/v1/consumer/') || template.startsWith('/v2/resources')) return 'civitai';
  if (template.startsWith('/v2/')) return 'runpod';
  if (template.startsWith('/key/api/v1/')) return 'fusionbrain';
  if (template.startsWith('/image/')) return 'images';
  if (template.startsWith('/v1/images/') || template.startsWith('/v1/models')) return 'openai';
  if (template.startsWith('/sdapi/v1/') || template === '/internal/progress') return 'a1111';
  if (/^\/(?:api\/)?(?:prompt|queue|history|interrupt|view|upload|object_info|system_stats|features|ws)\b/.test(template)) return 'comfyui';
  return 'problem';
}

interface Answer {
  status: number;
  contentType: string;
  // Each shape check narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

const isProblem = (answer: Answer) =>
  /^application\/problem\+json\b/.test(answer.contentType) &&
  typeof answer.body?.type === 'string' &&
  typeof answer.body.title === 'string' &&
  answer.body.status === answer.status &&
  typeof answer.body.detail === 'string';

const keysAre = (body: unknown, keys: string[]) => typeof body === 'object' && body !== null && Object.keys(body).sort().join() === [...keys].sort().join();

const SHAPES: Record<Shape, (answer: Answer) => boolean> = {
  problem: (answer) => isProblem(answer) && answer.body.type.startsWith('/problems/') && typeof answer.body.code === 'string',
  civitai: (answer) => isProblem(answer) && typeof answer.body.traceId === 'string' && answer.body.code === undefined,
  runpod: (answer) => /^application\/json\b/.test(answer.contentType) && keysAre(answer.body, ['error']) && typeof answer.body.error === 'string',
  fusionbrain: (answer) => keysAre(answer.body, ['timestamp', 'status', 'error', 'message', 'path']) && answer.body.status === answer.status,
  tasks: (answer) => keysAre(answer.body, ['detail']),
  openai: (answer) =>
    /^application\/json\b/.test(answer.contentType) &&
    keysAre(answer.body, ['error']) &&
    typeof answer.body.error.message === 'string' &&
    typeof answer.body.error.type === 'string' &&
    'param' in answer.body.error &&
    'code' in answer.body.error,
  a1111: (answer) =>
    (keysAre(answer.body, ['detail']) && (typeof answer.body.detail === 'string' || Array.isArray(answer.body.detail))) ||
    (keysAre(answer.body, ['error', 'detail', 'body', 'errors']) && typeof answer.body.detail === 'string'),
  comfyui: (answer) => keysAre(answer.body, ['error', 'node_errors']) && typeof answer.body.error?.message === 'string' && typeof answer.body.error.type === 'string',
  images: (answer) =>
    answer.body?.statusCode === answer.status && typeof answer.body.error === 'string' && (typeof answer.body.message === 'string' || Array.isArray(answer.body.message)),
};

/**
 * The Civitai and RunPod dialects leave paths none of their routes match to darkroom's own
 * problems: a generated parameter can make one (an AIR without a `:` is not a resource path), and
 * the router answers it as an unknown path, or as a path it cannot read.
 */
const darkroomUnknownPath = (answer: Answer) => isProblem(answer) && ['route_not_found', 'bad_url', 'uri_too_long'].includes(answer.body.code);

let dr: TestDarkroom;
let operations: Operation[] = [];

beforeAll(async () => {
  dr = await startDarkroom({ AUTH: 'off', WORKER_CONCURRENCY: '0' });
  const document = (await dr.api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Schema }> } }>> };
  operations = Object.entries(document.paths).flatMap(([template, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      method: method.toUpperCase(),
      template,
      parameters: operation.parameters ?? [],
      body: operation.requestBody?.content['application/json']?.schema,
    })),
  );
}, 120_000);

afterAll(async () => {
  await dr?.close({ removeData: true });
});

async function call(operation: Operation, request: Request, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Answer> {
  const headers: Record<string, string> = { ...request.headers };
  const init: RequestInit = { method: operation.method, headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) };
  if (request.body !== undefined && operation.method !== 'GET' && operation.method !== 'HEAD') {
    init.body = JSON.stringify(request.body);
    headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${dr.url}${request.path}`, init);
  const contentType = response.headers.get('content-type') ?? '';
  // A live event stream never ends: its status and headers are the answer.
  if (contentType.startsWith('text/event-stream')) {
    await response.body?.cancel();
    return { status: response.status, contentType, body: undefined };
  }
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: the shape check fails with the text in its message.
  }
  return { status: response.status, contentType, body };
}

describe('every documented operation, under hostile input', () => {
  it('documents the operations of every dialect', () => {
    const shapes = new Set(operations.map((operation) => shapeOf(operation.template)));
    expect([...shapes].sort()).toEqual(['a1111', 'civitai', 'comfyui', 'fusionbrain', 'images', 'openai', 'problem', 'runpod', 'tasks']);
    expect(operations.length).toBeGreaterThan(50);
  });

  it('never answers 5xx, and answers every error in its dialect’s shape', async () => {
    const failures: string[] = [];
    for (const operation of operations) {
      const shape = shapeOf(operation.template);
      const property = fc.asyncProperty(requestFor(operation), async (request) => {
        // A1111's generation routes hold a valid request until its job ends, and nothing runs jobs here.
        const holds = shape === 'a1111' && /\/(txt2img|img2img)$/.test(operation.template);
        // A refusal comes at once; a request still held after a second was taken.
        const answer = await call(operation, request, holds ? HELD_AFTER_MS : REQUEST_TIMEOUT_MS).catch((error: unknown) => {
          if (holds && error instanceof Error && error.name === 'TimeoutError') return undefined;
          throw error;
        });
        if (!answer) return;
        const where = `${operation.method} ${request.path.slice(0, 200)} → ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`;
        if (answer.status >= 500) throw new Error(`5xx: ${where}`);
        if (answer.status >= 400 && !SHAPES[shape](answer) && !((shape === 'civitai' || shape === 'runpod') && darkroomUnknownPath(answer))) {
          throw new Error(`not in the ${shape} error shape: ${where}`);
        }
      });
      const result = await fc.check(property, { seed: SEED, numRuns: CASES, endOnFailure: true });
      if (result.failed) failures.push(`${operation.method} ${operation.template}: ${String(result.errorInstance)}`);
    }
    expect(failures).toEqual([]);
  }, 240_000);
});
