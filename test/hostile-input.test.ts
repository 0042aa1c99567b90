import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * Hostile input on every dialect, table-driven: text the database cannot store (a NUL, lone
 * surrogates) in every kind of field, deep nesting, huge bodies, ids of 5,000 characters, NUL and
 * non-UTF-8 escapes in paths, every content type, and wrong methods. Each is a 4xx in the dialect's
 * own error shape, never a 5xx, and nothing stored changes: one darkroom (AUTH=off, no worker) whose
 * jobs, resources and keys are compared before and after everything is sent.
 */

interface Answer {
  status: number;
  contentType: string;
  allow: string | null;
  // Tests inspect arbitrary JSON shapes; each assertion narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

const NUL = 'a red \u0000kite';
const LONE_HIGH = 'a red kite \ud83d';
const LONE_LOW = '\ude00 a red kite';
const HOSTILE_TEXTS: [string, string][] = [
  ['a NUL', NUL],
  ['a lone high surrogate', LONE_HIGH],
  ['a lone low surrogate', LONE_LOW],
];
const LONG_ID = 'a'.repeat(5000);
const UNKNOWN_ID = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const AIR = 'urn:air:sdxl:checkpoint:civitai:101055@128078';
const PIPELINE_ID = '5b1e2c3d-8f4a-4e6b-9c7d-0a1b2c3d4e5f';
/** Deeper than any JSON darkroom reads (64 levels), and than JSON.stringify can serialise. */
const DEEP = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;

let dr: TestDarkroom;

async function send(method: string, path: string, body?: string | Buffer | FormData, contentType?: string): Promise<Answer> {
  const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
  const response = await fetch(`${dr.url}${path}`, { method, body, headers, redirect: 'manual' });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: the assertion on the shape says so.
  }
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', allow: response.headers.get('allow'), body: parsed };
}

const json = (method: string, path: string, body: unknown) => send(method, path, typeof body === 'string' ? body : JSON.stringify(body), 'application/json');

/** Fusion Brain's run form: `pipeline_id` and a `params` part typed application/json. */
function runForm(params: string | Buffer): FormData {
  const form = new FormData();
  form.append('pipeline_id', PIPELINE_ID);
  form.append('params', new Blob([params], { type: 'application/json' }));
  return form;
}
const fusionRun = (params: unknown) => send('POST', '/key/api/v1/pipeline/run', runForm(typeof params === 'string' ? params : JSON.stringify(params)));

/** Bytes that are not UTF-8 (0xff never is) inside an otherwise well-formed JSON body. */
const notUtf8 = (before: string, after: string) => Buffer.concat([Buffer.from(before), Buffer.from([0xff, 0xfe]), Buffer.from(after)]);

interface DialectCase {
  name: string;
  /** Asserts the dialect's error shape, with `status`. */
  expectError(answer: Answer, status: number): void;
  /** What a refused field answers: 400, or FastAPI's 422. */
  invalid: number;
  /**
   * Requests storing `text` in one field each: [field as the client wrote it, send, what the refusal
   * says when not the storage check's words (a schema that refuses the text first)].
   */
  creates: [string, (text: string) => Promise<Answer>, RegExp?][];
  /** A job-creating request whose body nests deeper than darkroom reads. */
  deep(): Promise<Answer>;
  /** A job-creating request whose body is within the body limit but holds a 600,000-character prompt. */
  huge(): Promise<Answer>;
  /** The job-creating request's body as bytes that are not UTF-8. */
  badBytes(): Promise<Answer>;
  /** The job-creating route with no body, with text/plain, and with the other of JSON/multipart. */
  contentTypes: [string, () => Promise<Answer>, number][];
  /** A route with an id (or name) in its path or query: `id` placed there as sent (already escaped). */
  byId(id: string): Promise<Answer>;
  /** What an id of 5,000 characters answers on `byId`: 414 in a path, a refusal in a query string. */
  longIdStatus: number;
  /** What an unknown but well-formed id answers on `byId` (to tell refusals from lookups); undefined when any id is found. */
  unknownStatus?: number;
  /** Wrong methods on known paths: [method, path, Allow]. */
  wrongMethods: [string, string, string][];
}

/** The reason a refusal of text the database cannot store gives. */
const UNSTORABLE = /NUL character|lone UTF-16 surrogate/;
/** A webhook URL's schema (format uri) refuses such text before anything else sees it. */
const WEBHOOK_REFUSED = /match format \\"uri\\"/;

const DIALECTS: DialectCase[] = [
  {
    name: 'native',
    expectError(answer, status) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.contentType).toMatch(/^application\/problem\+json\b/);
      expect(answer.body).toMatchObject({ type: expect.stringMatching(/^\/problems\/[a-z_]+$/), title: expect.any(String), status, detail: expect.any(String), code: expect.any(String) });
    },
    invalid: 400,
    creates: [
      ['prompt', (text) => json('POST', '/api/v1/jobs', { prompt: text })],
      ['negativePrompt', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', negativePrompt: text })],
      ['style', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', style: text })],
      ['model', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', model: text })],
      ['scheduler', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', scheduler: text })],
      ['metadata.a.b', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', metadata: { a: { b: text } } })],
      ['metadata.a.1', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', metadata: { a: ['fine', text] } })],
      ['metadata (a key)', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', metadata: { [text]: 1 } })],
      ['webhook', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', webhook: `https://example.com/${text}` }), WEBHOOK_REFUSED],
      ['additionalNetworks (a key)', (text) => json('POST', '/api/v1/jobs', { prompt: 'a kite', additionalNetworks: { [text]: { type: 'lora' } } })],
      ['batch prompts.1', (text) => json('POST', '/api/v1/jobs/batch', { prompts: ['a kite', text] })],
      ['batch jobs.0.prompt', (text) => json('POST', '/api/v1/jobs/batch', { jobs: [{ prompt: text }, { prompt: 'a kite' }] })],
      ['batch shared style', (text) => json('POST', '/api/v1/jobs/batch', { prompts: ['a kite', 'a boat'], style: text })],
    ],
    deep: () => json('POST', '/api/v1/jobs', `{"prompt":"a kite","metadata":{"a":${DEEP}}}`),
    huge: () => json('POST', '/api/v1/jobs', { prompt: 'k'.repeat(600_000) }),
    badBytes: () => send('POST', '/api/v1/jobs', notUtf8('{"prompt":"a kite ', '"}'), 'application/json'),
    contentTypes: [
      ['no body', () => send('POST', '/api/v1/jobs', '', 'application/json'), 400],
      ['text/plain', () => send('POST', '/api/v1/jobs', 'a kite', 'text/plain'), 415],
      ['multipart', () => send('POST', '/api/v1/jobs', runForm('{"prompt":"a kite"}')), 415],
    ],
    byId: (id) => send('GET', `/api/v1/jobs/${id}`),
    unknownStatus: 404,
    longIdStatus: 414,
    wrongMethods: [
      ['PUT', '/api/v1/jobs', 'GET, HEAD, POST'],
      ['PATCH', `/api/v1/jobs/${UNKNOWN_ID}`, 'GET, HEAD, DELETE'],
      ['PUT', '/api/v1/jobs/batch', 'GET, HEAD, POST, DELETE'],
      ['DELETE', '/api/v1/keys', 'GET, HEAD, POST'],
    ],
  },
  {
    name: 'civitai',
    expectError(answer, status) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.contentType).toMatch(/^application\/problem\+json\b/);
      expect(answer.body).toMatchObject({ type: expect.stringMatching(/^https:\/\/tools\.ietf\.org\//), title: expect.any(String), status, detail: expect.any(String), traceId: expect.any(String) });
      expect(answer.body).not.toHaveProperty('code');
    },
    invalid: 400,
    creates: [
      ['params.prompt', (text) => json('POST', '/v1/consumer/jobs', civitaiJob({ prompt: text }))],
      ['params.negativePrompt', (text) => json('POST', '/v1/consumer/jobs', civitaiJob({ negativePrompt: text }))],
      ['properties.a.b', (text) => json('POST', '/v1/consumer/jobs', { ...civitaiJob(), properties: { a: { b: text } } })],
      ['extra[1]', (text) => json('POST', '/v1/consumer/jobs', { ...civitaiJob(), extra: ['kept in the spec', text] })],
      ['jobs[1].params.prompt', (text) => json('POST', '/v1/consumer/jobs', { jobs: [civitaiJob(), civitaiJob({ prompt: text })] })],
      ['jobs[0].properties (quantity 20: two darkroom jobs)', (text) => json('POST', '/v1/consumer/jobs', { jobs: [{ ...civitaiJob(), quantity: 20, properties: { x: text } }] })],
      ['resource modelName', (text) => json('POST', '/v2/resources', { air: AIR, size: 1, hashes: {}, downloadUrls: [], modelName: text })],
      ['resource hashes (a key)', (text) => json('PUT', `/v2/resources/${AIR}`, { air: AIR, size: 1, hashes: { [text]: 'x' }, downloadUrls: [] })],
      ['resource extra.b', (text) => json('PATCH', `/v2/resources/${AIR}`, { extra: { b: text } })],
    ],
    deep: () => json('POST', '/v1/consumer/jobs', `{"$type":"textToImage","params":{"prompt":"a kite","width":512,"height":512},"extra":${DEEP}}`),
    huge: () => json('POST', '/v1/consumer/jobs', civitaiJob({ prompt: 'k'.repeat(600_000) })),
    badBytes: () => send('POST', '/v1/consumer/jobs', notUtf8('{"$type":"textToImage","params":{"prompt":"a kite ', '","width":512,"height":512}}'), 'application/json'),
    contentTypes: [
      ['no body', () => send('POST', '/v1/consumer/jobs', '', 'application/json'), 400],
      ['text/plain', () => send('POST', '/v1/consumer/jobs', 'a kite', 'text/plain'), 415],
      ['multipart', () => send('POST', '/v1/consumer/jobs', runForm('{}')), 415],
    ],
    byId: (id) => send('GET', `/v1/consumer/jobs/${id}`),
    unknownStatus: 404,
    longIdStatus: 414,
    wrongMethods: [
      ['PUT', '/v1/consumer/jobs', 'GET, HEAD, POST, DELETE'],
      ['POST', `/v1/consumer/jobs/${UNKNOWN_ID}`, 'GET, HEAD, DELETE'],
      ['POST', `/v2/resources/${AIR}`, 'GET, HEAD, PUT, PATCH, DELETE'],
      ['DELETE', '/v2/resources', 'GET, HEAD, POST'],
    ],
  },
  {
    name: 'runpod',
    expectError(answer, status) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.contentType).toMatch(/^application\/json\b/);
      expect(Object.keys(answer.body)).toEqual(['error']);
      expect(typeof answer.body.error).toBe('string');
    },
    invalid: 400,
    creates: [
      ['input.prompt', (text) => json('POST', '/v2/ep-1/run', { input: { prompt: text } })],
      ['input.negative_prompt', (text) => json('POST', '/v2/ep-1/run', { input: { prompt: 'a kite', negative_prompt: text } })],
      ['input.prompt (runsync)', (text) => json('POST', '/v2/ep-1/runsync?wait=1000', { input: { prompt: text } })],
      ['webhook', (text) => json('POST', '/v2/ep-1/run', { input: { prompt: 'a kite' }, webhook: `https://example.com/${text}` }), WEBHOOK_REFUSED],
      ['input.workflow.6.inputs.text', (text) => json('POST', '/v2/ep-1/run', { input: { workflow: comfyWorkflow(text) } })],
    ],
    deep: () => json('POST', '/v2/ep-1/run', `{"input":{"prompt":"a kite","extra":${DEEP}}}`),
    huge: () => json('POST', '/v2/ep-1/run', { input: { prompt: 'k'.repeat(600_000) } }),
    badBytes: () => send('POST', '/v2/ep-1/run', notUtf8('{"input":{"prompt":"a kite ', '"}}'), 'application/json'),
    contentTypes: [
      ['no body', () => send('POST', '/v2/ep-1/run', '', 'application/json'), 400],
      ['text/plain', () => send('POST', '/v2/ep-1/run', 'a kite', 'text/plain'), 415],
      ['multipart', () => send('POST', '/v2/ep-1/run', runForm('{}')), 415],
    ],
    byId: (id) => send('GET', `/v2/ep-1/status/${id}`),
    unknownStatus: 404,
    longIdStatus: 414,
    wrongMethods: [
      ['GET', '/v2/ep-1/run', 'POST'],
      ['PUT', `/v2/ep-1/status/${UNKNOWN_ID}`, 'GET, HEAD'],
      ['DELETE', '/v2/ep-1/health', 'GET, HEAD'],
    ],
  },
  {
    name: 'fusionbrain',
    expectError(answer, status) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.contentType).toMatch(/^application\/json\b/);
      expect(Object.keys(answer.body).sort()).toEqual(['error', 'message', 'path', 'status', 'timestamp']);
      expect(answer.body.status).toBe(status);
      expect(Number.isNaN(Date.parse(answer.body.timestamp))).toBe(false);
    },
    invalid: 400,
    creates: [
      ['generateParams.query', (text) => fusionRun(fusionParams({ generateParams: { query: text } }))],
      ['style', (text) => fusionRun(fusionParams({ style: text }))],
      ['negativePromptDecoder', (text) => fusionRun(fusionParams({ negativePromptDecoder: text }))],
      ['extra.b (ignored, still refused)', (text) => fusionRun(fusionParams({ extra: { b: text } }))],
    ],
    deep: () => fusionRun(`{"type":"GENERATE","generateParams":{"query":"a kite"},"extra":${DEEP}}`),
    huge: () => fusionRun(fusionParams({ generateParams: { query: 'k'.repeat(600_000) } })),
    badBytes: () => send('POST', '/key/api/v1/pipeline/run', runForm(notUtf8('{"type":"GENERATE","generateParams":{"query":"a kite ', '"}}'))),
    contentTypes: [
      ['no body', () => send('POST', '/key/api/v1/pipeline/run', '', 'application/json'), 415],
      ['text/plain', () => send('POST', '/key/api/v1/pipeline/run', 'a kite', 'text/plain'), 415],
      ['JSON', () => json('POST', '/key/api/v1/pipeline/run', { pipeline_id: PIPELINE_ID, params: fusionParams({}) }), 415],
    ],
    byId: (id) => send('GET', `/key/api/v1/pipeline/status/${id}`),
    unknownStatus: 404,
    longIdStatus: 414,
    wrongMethods: [
      ['POST', '/key/api/v1/pipelines', 'GET, HEAD'],
      ['GET', '/key/api/v1/pipeline/run', 'POST'],
      ['DELETE', `/key/api/v1/pipeline/status/${UNKNOWN_ID}`, 'GET, HEAD'],
    ],
  },
  {
    name: 'tasks',
    expectError(answer, status) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.contentType).toMatch(/^application\/json\b/);
      expect(Object.keys(answer.body)).toEqual(['detail']);
      if (Array.isArray(answer.body.detail)) {
        for (const item of answer.body.detail) expect(item).toMatchObject({ type: expect.any(String), loc: expect.any(Array), msg: expect.any(String) });
      } else {
        expect(typeof answer.body.detail).toBe('string');
      }
    },
    invalid: 422,
    creates: [
      ['prompt', (text) => json('POST', '/api/v1/runpod/generate', { prompt: text })],
      ['negative_prompt', (text) => json('POST', '/api/v1/runpod/generate', { prompt: 'a kite', negative_prompt: text })],
      ['sampler_name', (text) => json('POST', '/api/v1/runpod/generate', { prompt: 'a kite', sampler_name: text })],
      ['prompts.1', (text) => json('POST', '/api/v1/runpod/generate/batch', { prompts: ['a kite', text] })],
      ['unknown (ignored, still refused)', (text) => json('POST', '/api/v1/runpod/generate', { prompt: 'a kite', unknown: text })],
    ],
    deep: () => json('POST', '/api/v1/runpod/generate/batch', DEEP),
    huge: () => json('POST', '/api/v1/runpod/generate', { prompt: 'k'.repeat(600_000) }),
    badBytes: () => send('POST', '/api/v1/runpod/generate', notUtf8('{"prompt":"a kite ', '"}'), 'application/json'),
    contentTypes: [
      ['no body', () => send('POST', '/api/v1/runpod/generate', '', 'application/json'), 422],
      ['text/plain', () => send('POST', '/api/v1/runpod/generate', 'a kite', 'text/plain'), 415],
      ['multipart', () => send('POST', '/api/v1/runpod/generate', runForm('{}')), 415],
    ],
    byId: (id) => send('GET', `/api/v1/runpod/status/${id}`),
    unknownStatus: 404,
    longIdStatus: 414,
    wrongMethods: [
      ['GET', '/api/v1/runpod/generate', 'POST'],
      ['GET', `/api/v1/runpod/cancel/${UNKNOWN_ID}`, 'DELETE'],
      ['POST', '/api/v1/runpod/queue/stats', 'GET, HEAD'],
    ],
  },
  {
    name: 'images',
    expectError(answer, status) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.contentType).toMatch(/^application\/json\b/);
      expect(answer.body).toMatchObject({ statusCode: status, error: expect.any(String) });
      expect(typeof answer.body.message === 'string' || Array.isArray(answer.body.message)).toBe(true);
    },
    invalid: 400,
    creates: [
      ['prompt', (text) => json('POST', '/image/create', { prompt: text })],
      ['style', (text) => json('POST', '/image/create', { prompt: 'a kite', style: text })],
    ],
    deep: () => json('POST', '/image/create', `{"prompt":"a kite","extra":${DEEP}}`),
    huge: () => json('POST', '/image/create', { prompt: 'k'.repeat(600_000) }),
    badBytes: () => send('POST', '/image/create', notUtf8('{"prompt":"a kite ', '"}'), 'application/json'),
    contentTypes: [
      ['no body', () => send('POST', '/image/create', '', 'application/json'), 400],
      ['text/plain', () => send('POST', '/image/create', 'a kite', 'text/plain'), 415],
      ['multipart', () => send('POST', '/image/create', runForm('{}')), 415],
    ],
    byId: (id) => send('GET', `/image/get?id=${id}`),
    unknownStatus: 404,
    longIdStatus: 400,
    wrongMethods: [
      ['GET', '/image/create', 'POST'],
      ['POST', '/image/get', 'GET, HEAD'],
    ],
  },
  {
    name: 'openai',
    expectError(answer, status) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.contentType).toMatch(/^application\/json\b/);
      expect(Object.keys(answer.body)).toEqual(['error']);
      expect(answer.body.error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
      expect('param' in answer.body.error && 'code' in answer.body.error).toBe(true);
    },
    invalid: 400,
    creates: [
      ['prompt', (text) => json('POST', '/v1/images/generations', { prompt: text, model: 'dall-e-2', size: '256x256' })],
      ['user', (text) => json('POST', '/v1/images/generations', { prompt: 'a kite', user: text })],
      ['model', (text) => json('POST', '/v1/images/generations', { prompt: 'a kite', model: text })],
    ],
    deep: () => json('POST', '/v1/images/generations', `{"prompt":"a kite","extra":${DEEP}}`),
    huge: () => json('POST', '/v1/images/generations', { prompt: 'k'.repeat(600_000) }),
    badBytes: () => send('POST', '/v1/images/generations', notUtf8('{"prompt":"a kite ', '"}'), 'application/json'),
    contentTypes: [
      ['no body', () => send('POST', '/v1/images/generations', '', 'application/json'), 400],
      ['text/plain', () => send('POST', '/v1/images/generations', 'a kite', 'text/plain'), 415],
      ['multipart', () => send('POST', '/v1/images/generations', runForm('{}')), 415],
      ['JSON on edits', () => json('POST', '/v1/images/edits', { prompt: 'a kite' }), 415],
      ['an edit form without its prompt', () => send('POST', '/v1/images/edits', editForm({ n: 'three' })), 400],
    ],
    // Any model name is taken (it runs on the default provider), so there is no unknown one.
    byId: (id) => send('GET', `/v1/models/${id}`),
    longIdStatus: 414,
    wrongMethods: [
      ['GET', '/v1/images/generations', 'POST'],
      ['PUT', '/v1/images/edits', 'POST'],
      ['DELETE', '/v1/models', 'GET, HEAD'],
    ],
  },
];

/** An OpenAI edit form: a tiny PNG and the text fields. */
function editForm(fields: Record<string, string>): FormData {
  const form = new FormData();
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAeklEQVRogdXOQREAAAyDMOQjeyL62BEFwTiMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwziMwzi+A6sDPiyBeFlk7fQAAAAASUVORK5CYII=', 'base64');
  form.append('image', new Blob([png], { type: 'image/png' }), 'a.png');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

function civitaiJob(params: Record<string, unknown> = {}) {
  return { $type: 'textToImage', model: AIR, params: { prompt: 'a kite', width: 512, height: 512, ...params } };
}

function fusionParams(params: Record<string, unknown>) {
  return { type: 'GENERATE', numImages: 1, width: 512, height: 512, generateParams: { query: 'a kite' }, ...params };
}

/** The smallest text-to-image ComfyUI graph in API format, its prompt text in node 6. */
function comfyWorkflow(text: string) {
  return {
    '3': { class_type: 'KSampler', inputs: { seed: 1, steps: 20, cfg: 7, sampler_name: 'euler', positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0], model: ['4', 0] } },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text, clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
  };
}

/** Everything stored that a request could change: every job with its request and dialect data, the resources, the keys. */
async function stored(): Promise<unknown> {
  const jobs = await dr.api('GET', '/api/v1/jobs?limit=100');
  const resources = await dr.api('GET', '/v2/resources?limit=100');
  const keys = await dr.api('GET', '/api/v1/keys');
  expect([jobs.status, resources.status, keys.status]).toEqual([200, 200, 200]);
  return { jobs: jobs.body.items.map((job: { id: string; status: string; request: unknown }) => [job.id, job.status, job.request]), resources: resources.body, keys: keys.body.items };
}

let before: unknown;

beforeAll(async () => {
  dr = await startDarkroom({ AUTH: 'off', WORKER_CONCURRENCY: '0' });
  // One of everything, so that "nothing changed" is about something.
  expect((await dr.api('POST', '/api/v1/jobs', { prompt: 'a sentinel', metadata: { keep: 'me' } })).status).toBe(202);
  expect((await dr.api('POST', '/v2/resources', { air: AIR, size: 1, hashes: { SHA256: 'ab' }, downloadUrls: [] })).status).toBe(201);
  expect((await dr.api('POST', '/api/v1/keys', { name: 'a sentinel key' })).status).toBe(201);
  before = await stored();
}, 120_000);

afterAll(async () => {
  await dr?.close({ removeData: true });
});

describe.each(DIALECTS)('$name dialect', (dialect) => {
  describe.each(HOSTILE_TEXTS)('%s', (_label, text) => {
    it.each(dialect.creates)('in %s is refused in the dialect’s shape', async (_field, create, reason = UNSTORABLE) => {
      const answer = await create(text);
      dialect.expectError(answer, dialect.invalid);
      expect(JSON.stringify(answer.body)).toMatch(reason);
    });
  });

  it('refuses a body nested 10,000 levels deep as malformed', async () => {
    const answer = await dialect.deep();
    dialect.expectError(answer, dialect.invalid);
    expect(JSON.stringify(answer.body)).toMatch(/64 levels/);
  });

  it('refuses a huge body within the body limit (a 600,000-character prompt)', async () => {
    const answer = await dialect.huge();
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    dialect.expectError(answer, answer.status);
  });

  it('refuses a body that is not UTF-8', async () => {
    const answer = await dialect.badBytes();
    dialect.expectError(answer, dialect.invalid);
    expect(JSON.stringify(answer.body)).toMatch(/UTF-8/);
  });

  it.each(dialect.contentTypes)('answers %s on the job-creating route with a clear 4xx', async (_label, request, status) => {
    dialect.expectError(await request(), status);
  });

  it('answers an id of 5,000 characters with a 414 (a 400 in a query string)', async () => {
    dialect.expectError(await dialect.byId(LONG_ID), dialect.longIdStatus);
  });

  it.each([
    ['a NUL', '%00'],
    ['a NUL inside', `${UNKNOWN_ID.slice(0, 8)}%00${UNKNOWN_ID.slice(8)}`],
  ])('refuses an id holding %s', async (_label, id) => {
    dialect.expectError(await dialect.byId(id), dialect.invalid);
  });

  it('refuses an id whose %-escapes are not UTF-8 (a lone surrogate, 0xff)', async () => {
    for (const id of ['%ED%A0%80', 'ab%FFcd']) {
      const answer = await dialect.byId(id);
      // In a path the router refuses it (400); in a query string it is an id like any other: unknown, or not an id.
      if (answer.status >= 400 || dialect.unknownStatus !== undefined) {
        expect([400, 422, dialect.unknownStatus]).toContain(answer.status);
        dialect.expectError(answer, answer.status);
      }
    }
  });

  it.runIf(dialect.unknownStatus !== undefined)('tells an unknown, well-formed id from a refused one', async () => {
    dialect.expectError(await dialect.byId(UNKNOWN_ID), dialect.unknownStatus as number);
  });

  it.each(dialect.wrongMethods)('answers %s %s with 405 and Allow: %s', async (method, path, allow) => {
    const answer = await send(method, path);
    dialect.expectError(answer, 405);
    expect(answer.allow).toBe(allow);
  });
});

describe('names of refused fields', () => {
  it('native: every offending field of the request, by its path', async () => {
    const answer = await json('POST', '/api/v1/jobs', { prompt: NUL, metadata: { a: { b: LONE_HIGH }, list: ['ok', LONE_LOW] }, additionalNetworks: { [NUL]: { type: 'lora' } } });
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe('validation_failed');
    expect(answer.body.errors.map((error: { field: string }) => error.field)).toEqual(['prompt', 'metadata.a.b', 'metadata.list.1', 'additionalNetworks.a red \\u0000kite']);
    expect(answer.body.errors.every((error: { in: string }) => error.in === 'body')).toBe(true);
  });

  it('native batch: each job of `jobs` by its index', async () => {
    const answer = await json('POST', '/api/v1/jobs/batch', { jobs: [{ prompt: 'fine' }, { prompt: NUL }] });
    expect(answer.body.errors).toEqual([{ in: 'body', field: 'jobs.1.prompt', message: expect.stringMatching(/NUL character/) }]);
  });

  it('Civitai: ASP.NET names, unknown fields included', async () => {
    const answer = await json('POST', '/v1/consumer/jobs', { jobs: [civitaiJob(), { ...civitaiJob({ prompt: NUL }), extra: [LONE_LOW] }] });
    expect(Object.keys(answer.body.errors)).toEqual(['jobs[1].params.prompt', 'jobs[1].extra[0]']);
  });

  it('RunPod: the input as the client wrote it', async () => {
    const answer = await json('POST', '/v2/ep-1/run', { input: { prompt: 'a kite', negative_prompt: NUL } });
    expect(answer.body.error).toMatch(/^input\.negative_prompt contains a NUL character/);
  });

  it('tasks: located the FastAPI way', async () => {
    const answer = await json('POST', '/api/v1/runpod/generate/batch', { prompts: ['a kite', LONE_HIGH] });
    expect(answer.body.detail).toEqual([{ type: 'value_error', loc: ['body', 'prompts', 1], msg: expect.stringMatching(/lone UTF-16 surrogate/) }]);
  });

  it('Fusion Brain: the params part’s own fields', async () => {
    const answer = await fusionRun(fusionParams({ generateParams: { query: NUL } }));
    expect(answer.body.message).toMatch(/generateParams\.query contains a NUL character/);
  });

  it('images: the field in NestJS’s list', async () => {
    const answer = await json('POST', '/image/create', { prompt: 'a kite', style: NUL });
    expect(answer.body.message).toEqual([expect.stringMatching(/^style contains a NUL character/)]);
  });

  it('path parameters and query values: by name, in their part', async () => {
    const endpoint = await send('GET', '/v2/e%00p/health');
    expect(endpoint).toMatchObject({ status: 400, body: { error: expect.stringMatching(/endpointId contains a NUL character/) } });
    const query = await send('GET', '/v2/resources?q=urn%00');
    expect(query.body.errors).toEqual({ q: [expect.stringMatching(/NUL character/)] });
    const native = await send('GET', '/api/v1/jobs?cursor=%00');
    expect(native.body.errors).toEqual([{ in: 'querystring', field: 'cursor', message: expect.stringMatching(/NUL character/) }]);
  });

  it('API keys: a name the database cannot store', async () => {
    const answer = await json('POST', '/api/v1/keys', { name: LONE_LOW });
    expect(answer.body.errors).toEqual([{ in: 'body', field: 'name', message: expect.stringMatching(/lone UTF-16 surrogate/) }]);
  });
});

describe('an Idempotency-Key on a refused request', () => {
  it('stores nothing, and the key is released: a repeat is refused again rather than replayed', async () => {
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'hostile-1' };
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const refused = await fetch(`${dr.url}/api/v1/jobs`, { method: 'POST', headers, body: JSON.stringify({ prompt: NUL }) });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('idempotent-replayed')).toBeNull();
      await refused.body?.cancel();
    }
    expect(await stored()).toEqual(before);
  });
});

// Runs last (vitest keeps the order of a file): everything above was refused.
describe('after everything', () => {
  it('nothing stored has changed', async () => {
    expect(await stored()).toEqual(before);
  });

  it('the server still answers', async () => {
    expect((await dr.api('GET', '/health')).status).toBe(200);
  });
});
