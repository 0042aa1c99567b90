import runpodSdk from 'runpod-sdk';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * The official runpod-sdk pointed at darkroom, with nothing changed but its base URL (the SDK's
 * `baseUrl` option), plus raw HTTP for what the SDK cannot send: bad input of every kind.
 */

type Endpoint = NonNullable<ReturnType<ReturnType<typeof runpodSdk>['endpoint']>>;
// The SDK's types say `any` for outputs; each test narrows what it reads.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

const PROMPT = 'a red fox in fresh snow';
const bytesOf = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());

let darkroom: TestDarkroom;
let endpoint: Endpoint;

beforeAll(async () => {
  darkroom = await startDarkroom({ MOCK_LATENCY_MS: '200', AUTH: 'off' });
  endpoint = runpodSdk('rp_any_key', { baseUrl: `${darkroom.url}/v2` }).endpoint('ep-a') as Endpoint;
  // runSync prints every status it sees.
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await darkroom?.close({ removeData: true });
});

async function finished(id: string): Promise<Loose> {
  for (let i = 0; i < 200; i += 1) {
    const status: Loose = await endpoint.status(id);
    if (['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'].includes(status.status)) return status;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`job ${id} did not finish`);
}

describe('runpod dialect through runpod-sdk', () => {
  it('run + status: a worker-sdxl input answers worker-sdxl output with darkroom links', async () => {
    const queued = await endpoint.run({ input: { prompt: PROMPT, width: 512, height: 512, num_images: 2, seed: 5, num_inference_steps: 20 } });
    expect(queued).toMatchObject({ status: 'IN_QUEUE' });
    const done = await finished(queued.id);
    expect(done).toMatchObject({ id: queued.id, status: 'COMPLETED', completed: true, succeeded: true });
    expect(done.delayTime).toBeGreaterThanOrEqual(0);
    expect(done.executionTime).toBeGreaterThan(0);
    expect(done.output.seed).toBe(5);
    expect(done.output.images).toHaveLength(2);
    expect(done.output.image_url).toBe(done.output.images[0]);
    expect((await bytesOf(done.output.images[1])).equals(await renderMockImage(PROMPT, 6, 512, 512))).toBe(true);
  });

  it('runSync: an A1111 input answers base64 images, parameters and info with all_seeds', async () => {
    const done: Loose = await endpoint.runSync({ input: { prompt: PROMPT, width: 256, height: 256, steps: 10, cfg_scale: 6, seed: 40, batch_size: 2, sampler_name: 'Euler a' } });
    expect(done).toMatchObject({ status: 'COMPLETED', completed: true });
    const info = JSON.parse(done.output.info as string);
    expect(info.all_seeds).toEqual([40, 41]);
    expect(done.output.parameters).toMatchObject({ prompt: PROMPT, steps: 10, cfg_scale: 6, batch_size: 2, sampler_name: 'Euler a' });
    expect(Buffer.from(done.output.images[1] as string, 'base64').equals(await renderMockImage(PROMPT, 41, 256, 256))).toBe(true);
  });

  it('runSync: a ComfyUI workflow answers worker-comfyui images', async () => {
    const workflow = {
      '3': { class_type: 'KSampler', inputs: { seed: 2 ** 40 + 7, steps: 8, cfg: 5, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
      '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
      '5': { class_type: 'EmptyLatentImage', inputs: { width: 320, height: 256, batch_size: 1 } },
      '6': { class_type: 'CLIPTextEncode', inputs: { text: PROMPT, clip: ['4', 1] } },
      '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
      '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
      '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
    };
    const done: Loose = await endpoint.runSync({ input: { workflow } });
    expect(done.status).toBe('COMPLETED');
    const [image] = done.output.images as { filename: string; type: string; data: string }[];
    expect(image).toMatchObject({ filename: 'ComfyUI_00001_.png', type: 'base64' });
    // ComfyUI seeds are 64-bit; darkroom keeps them modulo 2^32.
    expect(Buffer.from(image!.data, 'base64').equals(await renderMockImage(PROMPT, 7, 320, 256))).toBe(true);
    const native = (await darkroom.api('GET', `/api/v1/jobs/${done.id}`)).body;
    expect(native.request).toMatchObject({ negativePrompt: 'blurry', steps: 8, cfgScale: 5, scheduler: 'euler', model: 'sd_xl_base_1.0.safetensors' });
  });

  it('the custom worker: {image_url} by default, {image} with return_type base64; sdxl data URIs when asked', async () => {
    const link: Loose = await endpoint.runSync({ input: { prompt: PROMPT, width: 256, height: 256, seed: 1, return_type: 'url' } });
    expect(Object.keys(link.output)).toEqual(['image_url']);
    const inline: Loose = await endpoint.runSync({ input: { prompt: PROMPT, width: 256, height: 256, seed: 1, return_type: 'base64' } });
    expect(Buffer.from(inline.output.image as string, 'base64').equals(await bytesOf(link.output.image_url as string))).toBe(true);
    const sdxl: Loose = await endpoint.runSync({ input: { prompt: PROMPT, width: 256, height: 256, seed: 1, num_images: 1, return_type: 'base64' } });
    expect(sdxl.output.images[0]).toBe(`data:image/png;base64,${inline.output.image}`);
  });

  it('statusSync and stream', async () => {
    const queued = await endpoint.run({ input: { prompt: PROMPT, width: 128, height: 128 } });
    const done: Loose = await endpoint.statusSync(queued.id, 10_000);
    expect(done).toMatchObject({ id: queued.id, status: 'COMPLETED' });
    const items: Loose[] = [];
    for await (const item of endpoint.stream(queued.id)) items.push(item);
    expect(items).toEqual([{ output: done.output }]);
    // RunPod documents POST /status-sync; the SDK sends GET. Both answer.
    const posted = await fetch(`${darkroom.url}/v2/ep-a/status-sync/${queued.id}?wait=1000`, { method: 'POST' });
    expect(((await posted.json()) as Loose).status).toBe('COMPLETED');
  });

  it('runsync that does not finish in time answers the current status', async () => {
    const response = await fetch(`${darkroom.url}/v2/ep-a/runsync?wait=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { prompt: PROMPT, width: 128, height: 128 } }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Loose;
    expect(['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED']).toContain(body.status);
    expect((await finished(body.id as string)).status).toBe('COMPLETED');
  });

  it('cancel stops a job; cancelling a finished job answers its status', async () => {
    const queued = await endpoint.run({ input: { prompt: PROMPT, width: 128, height: 128 } });
    const cancelled = await endpoint.cancel(queued.id);
    expect(cancelled).toMatchObject({ id: queued.id, status: 'CANCELLED' });
    expect((await endpoint.status(queued.id)).status).toBe('CANCELLED');
    expect((await endpoint.cancel(queued.id)).status).toBe('CANCELLED');
  });

  it('health counts this endpoint’s jobs only', async () => {
    const other = runpodSdk('k', { baseUrl: `${darkroom.url}/v2` }).endpoint('ep-empty') as Endpoint;
    expect(await other.health()).toMatchObject({ jobs: { completed: 0, failed: 0, inProgress: 0, inQueue: 0, retried: 0 } });
    const health = await endpoint.health();
    expect(health.jobs.completed).toBeGreaterThanOrEqual(5);
    expect(health.workers.idle + health.workers.running).toBeGreaterThan(0);
  });

  it('an unknown job, and another endpoint’s job, are 404s', async () => {
    const queued = await endpoint.run({ input: { prompt: PROMPT, width: 128, height: 128 } });
    const other = runpodSdk('k', { baseUrl: `${darkroom.url}/v2` }).endpoint('ep-b') as Endpoint;
    for (const attempt of [other.status(queued.id), endpoint.status('0190a0a0-0000-7000-8000-000000000000'), endpoint.status('not-an-id')]) {
      const error: Loose = await attempt.catch((caught: unknown) => caught);
      expect(error.response.status).toBe(404);
      expect(error.response.data.error).toMatch(/does not exist/);
    }
    // A job of another dialect is not a RunPod job.
    const native = await darkroom.api('POST', '/api/v1/jobs', { prompt: PROMPT, width: 128, height: 128 });
    expect((await darkroom.api('GET', `/v2/ep-a/status/${native.body.id}`)).status).toBe(404);
  });
});

describe('runpod dialect bad input', () => {
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) => darkroom.api('POST', `/v2/ep-a${path}`, body, headers);

  it.each([
    ['malformed JSON', '{"input": {"prompt": ', 400, /not valid JSON/],
    ['no input', {}, 400, /input/],
    ['input not an object', { input: 'draw a fox' }, 400, /input/],
    ['an unknown top-level field', { input: { prompt: PROMPT }, inputs: {} }, 400, /inputs/],
    ['width 99999', { input: { prompt: PROMPT, width: 99999 } }, 400, /input\.width must be an integer from 64 to 2048, a multiple of 8/],
    ['width not a multiple of 8', { input: { prompt: PROMPT, width: 500 } }, 400, /input\.width/],
    ['width as a string', { input: { prompt: PROMPT, width: '512' } }, 400, /input\.width/],
    ['no prompt', { input: { width: 512 } }, 400, /input\.prompt is required/],
    ['an empty prompt', { input: { prompt: '   ' } }, 400, /input\.prompt must not be empty/],
    ['an oversized prompt', { input: { prompt: 'x'.repeat(4001) } }, 400, /at most 4000/],
    ['too many images', { input: { prompt: PROMPT, num_images: 11 } }, 400, /num_images/],
    ['a negative seed', { input: { prompt: PROMPT, seed: -5 } }, 400, /seed/],
    ['every bad field at once', { input: { prompt: 3, width: 1, steps: 0, cfg_scale: 99 } }, 400, /prompt.*width.*steps.*cfg_scale/],
    ['an init image that is not an image', { input: { prompt: PROMPT, init_images: ['AAAA'], steps: 10 } }, 400, /input\.init_images\[0\] is not a PNG, JPEG or WebP image/],
    ['a workflow without KSampler', { input: { workflow: { '1': { class_type: 'SaveImage', inputs: {} } } } }, 400, /KSampler/],
    ['a workflow that is not a graph', { input: { workflow: [1, 2] } }, 400, /workflow/],
    ['a webhook to a loopback address', { input: { prompt: PROMPT }, webhook: 'http://127.0.0.1/hook' }, 400, /^webhook points to a loopback address/],
    ['a webhook that is not http(s)', { input: { prompt: PROMPT }, webhook: 'ftp://hooks.example.test/x' }, 400, /webhook must be an http or https URL/],
    ['a webhookV2', { input: { prompt: PROMPT }, webhookV2: 'https://hooks.example.test/x' }, 400, /webhookV2 is not supported/],
    ['a ttl below RunPod’s minimum', { input: { prompt: PROMPT }, policy: { ttl: 5 } }, 400, /ttl/],
  ])('%s → %i', async (_name, body, status, message) => {
    const response = await post('/run', body);
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    expect(Object.keys(response.body)).toEqual(['error']);
    expect(response.body.error).toMatch(message);
  });

  it('a body that is not JSON is a 415, a non-numeric wait a 400', async () => {
    const text = await post('/run', 'prompt=fox', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.body.error).toBeTypeOf('string');
    const wait = await darkroom.api('POST', '/v2/ep-a/runsync?wait=soon', { input: { prompt: PROMPT } });
    expect(wait.status).toBe(400);
    expect(wait.body.error).toMatch(/wait/);
  });

  it('only FAILED or TIMED_OUT jobs can be retried', async () => {
    const done: Loose = await endpoint.runSync({ input: { prompt: PROMPT, width: 128, height: 128 } });
    const retry = await post(`/retry/${done.id}`, undefined);
    expect(retry.status).toBe(409);
    expect(retry.body.error).toMatch(/Only FAILED or TIMED_OUT/);
  });
});

describe('runpod dialect queue operations (no workers)', () => {
  let idle: TestDarkroom;
  let queueEndpoint: Endpoint;
  beforeAll(async () => {
    idle = await startDarkroom({ WORKER_CONCURRENCY: '0', AUTH: 'off' });
    queueEndpoint = runpodSdk('k', { baseUrl: `${idle.url}/v2` }).endpoint('ep-p') as Endpoint;
  });
  afterAll(() => idle?.close({ removeData: true }));

  it('purge-queue cancels this endpoint’s queued jobs and no other', async () => {
    const ids = await Promise.all([1, 2, 3].map(() => queueEndpoint.run({ input: { prompt: PROMPT } }).then((job) => job.id)));
    const other = runpodSdk('k', { baseUrl: `${idle.url}/v2` }).endpoint('ep-q') as Endpoint;
    const kept = await other.run({ input: { prompt: PROMPT } });
    expect((await queueEndpoint.health()).jobs.inQueue).toBe(3);
    expect(await queueEndpoint.purgeQueue()).toEqual({ removed: 3, status: 'completed' });
    for (const id of ids) expect((await queueEndpoint.status(id)).status).toBe('CANCELLED');
    expect((await other.status(kept.id)).status).toBe('IN_QUEUE');
    expect(await queueEndpoint.purgeQueue()).toEqual({ removed: 0, status: 'completed' });
  });

  it('retry runs a FAILED job again under the same id', async () => {
    const { id } = await queueEndpoint.run({ input: { prompt: PROMPT, width: 256, height: 256 } });
    // No worker runs here, so the test fails the job the way the pipeline would.
    await idle.darkroom.repo.transition(id, ['queued'], 'failed', {
      error: { code: 'worker_failed', message: 'CUDA out of memory', retryable: true },
      completedAt: new Date(),
    });
    expect(await queueEndpoint.status(id)).toMatchObject({ id, status: 'FAILED', error: 'CUDA out of memory' });
    expect(await queueEndpoint.health()).toMatchObject({ jobs: { failed: 1, retried: 0 } });

    const retried = await idle.api('POST', `/v2/ep-p/retry/${id}`);
    expect(retried).toMatchObject({ status: 200, body: { id, status: 'IN_QUEUE' } });
    expect(await queueEndpoint.status(id)).toMatchObject({ id, status: 'IN_QUEUE' });
    expect((await queueEndpoint.health()).jobs.retried).toBe(1);
    // A retry that has not failed cannot be retried again; cancelling the known id cancels the retry.
    expect((await idle.api('POST', `/v2/ep-p/retry/${id}`)).status).toBe(409);
    expect(await queueEndpoint.cancel(id)).toMatchObject({ id, status: 'CANCELLED' });
  });
});
