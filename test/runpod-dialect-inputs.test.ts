import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import runpodSdk from 'runpod-sdk';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * Input images through the RunPod dialect, sent by the official runpod-sdk the way each worker takes
 * them (A1111's init_images and mask, worker-comfyui's images), and hostile ones by raw HTTP.
 */

type Endpoint = NonNullable<ReturnType<ReturnType<typeof runpodSdk>['endpoint']>>;
// The SDK's types say `any` for outputs; each test narrows what it reads.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

const PROMPT = 'a harbour at dawn';
const WIDTH = 128;
const HEIGHT = 96;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const pixels = (bytes: Buffer) => sharp(bytes).removeAlpha().raw().toBuffer();

let darkroom: TestDarkroom;
/** A darkroom that takes input images of at most 50 kB, fetches them from private addresses, and runs no jobs. */
let limited: TestDarkroom;
/** Serves the init image to worker-sdxl inputs' image_url, counting requests. */
let pictures: Server;
let picturesUrl: string;
let pictureRequests = 0;
let endpoint: Endpoint;
let init: Buffer;
let mask: Buffer;

beforeAll(async () => {
  [darkroom, limited] = await Promise.all([
    startDarkroom({ MOCK_LATENCY_MS: '100', AUTH: 'off' }),
    startDarkroom({ WORKER_CONCURRENCY: '0', AUTH: 'off', UPLOAD_MAX_BYTES: '50000', ALLOW_PRIVATE_URLS: 'true' }),
  ]);
  endpoint = runpodSdk('rp_any_key', { baseUrl: `${darkroom.url}/v2` }).endpoint('ep-inputs') as Endpoint;
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const picture = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}"><rect width="100%" height="100%" fill="#258"/><circle cx="32" cy="48" r="20" fill="#fc3"/></svg>`;
  const half = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}"><rect width="100%" height="100%" fill="#000"/><rect x="${WIDTH / 2}" width="${WIDTH / 2}" height="100%" fill="#fff"/></svg>`;
  [init, mask] = await Promise.all([sharp(Buffer.from(picture)).png().toBuffer(), sharp(Buffer.from(half)).png().toBuffer()]);
  pictures = createServer((_request, response) => {
    pictureRequests += 1;
    response.writeHead(200, { 'content-type': 'image/png' });
    response.end(init);
  });
  await new Promise<void>((resolve) => pictures.listen(0, '127.0.0.1', resolve));
  picturesUrl = `http://127.0.0.1:${(pictures.address() as AddressInfo).port}`;
});
afterAll(async () => {
  vi.restoreAllMocks();
  await Promise.all([darkroom?.close({ removeData: true }), limited?.close({ removeData: true })]);
  await new Promise<void>((resolve) => pictures.close(() => resolve()));
});

/** The darkroom job behind a RunPod job id, as the native API shows it. */
const nativeJob = async (id: string) => (await darkroom.api('GET', `/api/v1/jobs/${id}`)).body;

/** Largest per-channel difference between two raw RGB pictures of WIDTH over the columns [from, to). */
function difference(a: Buffer, b: Buffer, from: number, to: number): number {
  let largest = 0;
  for (let offset = 0; offset < a.length; offset += 3) {
    const column = (offset / 3) % WIDTH;
    if (column < from || column >= to) continue;
    for (let channel = 0; channel < 3; channel += 1) largest = Math.max(largest, Math.abs(a[offset + channel]! - b[offset + channel]!));
  }
  return largest;
}

async function jobCount(): Promise<number> {
  const health = (await darkroom.api('GET', '/v2/ep-inputs/health')).body;
  return Object.values(health.jobs as Record<string, number>).reduce((sum, count) => sum + count, 0);
}

describe('runpod dialect inputs through runpod-sdk', () => {
  it('A1111 inpainting: init_images and mask are stored as sent, the output keeps the black half', async () => {
    const done: Loose = await endpoint.runSync({
      input: { prompt: PROMPT, width: WIDTH, height: HEIGHT, seed: 11, init_images: [init.toString('base64')], mask: `data:image/png;base64,${mask.toString('base64')}`, denoising_strength: 0.7, inpainting_fill: 1, mask_blur: 4 },
    });
    expect(done.status).toBe('COMPLETED');
    // A1111's img2img answer: the image fields named, the images not sent back.
    expect(done.output.parameters).toMatchObject({ init_images: null, mask: null, denoising_strength: 0.7 });
    const job = await nativeJob(done.id);
    expect(job.request).toMatchObject({ strength: 0.7, width: WIDTH, height: HEIGHT });
    expect(job.inputs.map((input: Loose) => [input.role, input.sha256, input.width, input.height])).toEqual([
      ['init', sha256(init), WIDTH, HEIGHT],
      ['mask', sha256(mask), WIDTH, HEIGHT],
    ]);
    const output = await pixels(Buffer.from(done.output.images[0] as string, 'base64'));
    const original = await pixels(init);
    expect(difference(output, original, 0, WIDTH / 2 - 4)).toBeLessThanOrEqual(2);
    expect(difference(output, original, WIDTH / 2 + 4, WIDTH)).toBeGreaterThan(10);
  });

  it('A1111 image-to-image: denoising_strength 0 gives the init image back', async () => {
    const done: Loose = await endpoint.runSync({ input: { prompt: PROMPT, width: WIDTH, height: HEIGHT, init_images: [init.toString('base64')], denoising_strength: 0 } });
    expect(done.status).toBe('COMPLETED');
    expect((await nativeJob(done.id)).request.strength).toBe(0);
    expect(difference(await pixels(Buffer.from(done.output.images[0] as string, 'base64')), await pixels(init), 0, WIDTH)).toBeLessThanOrEqual(2);
  });

  it('an init image larger than the ordinary body limit is taken, as RunPod takes up to 10 MB', async () => {
    const photo = await sharp({ create: { width: 700, height: 700, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).png().toBuffer();
    expect(photo.length * (4 / 3)).toBeGreaterThan(1_048_576);
    const done: Loose = await endpoint.runSync({ input: { prompt: PROMPT, width: WIDTH, height: HEIGHT, init_images: [photo.toString('base64')] } });
    expect(done.status).toBe('COMPLETED');
    expect((await nativeJob(done.id)).inputs[0].sha256).toBe(sha256(photo));
  });

  it('worker-sdxl: image_url is fetched once and stored as the init image, with the worker’s default strength', async () => {
    const sdxl = runpodSdk('rp_any_key', { baseUrl: `${limited.url}/v2` }).endpoint('ep-inputs') as Endpoint;
    const before = pictureRequests;
    const queued: Loose = await sdxl.run({ input: { prompt: PROMPT, width: WIDTH, height: HEIGHT, num_inference_steps: 20, image_url: `${picturesUrl}/harbour.png` } });
    expect(queued.status).toBe('IN_QUEUE');
    expect(pictureRequests - before).toBe(1);
    const job = (await limited.api('GET', `/api/v1/jobs/${queued.id}`)).body;
    expect(job.request.strength).toBe(0.3);
    expect(job.inputs.map((input: Loose) => [input.role, input.sha256])).toEqual([['init', sha256(init)]]);
  });

  it('/retry runs a FAILED job again with the same stored images and strength', async () => {
    const queued = await (
      await fetch(`${limited.url}/v2/ep-inputs/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: { prompt: PROMPT, width: WIDTH, height: HEIGHT, init_images: [init.toString('base64')], mask: mask.toString('base64'), denoising_strength: 0.45 } }),
      })
    ).json() as { id: string };
    // No worker runs on `limited`, so the test fails the job the way the pipeline would.
    await limited.darkroom.repo.transition(queued.id, ['queued'], 'failed', { error: { code: 'worker_failed', message: 'CUDA out of memory', retryable: true }, completedAt: new Date() });
    const retried = await limited.api('POST', `/v2/ep-inputs/retry/${queued.id}`);
    expect(retried).toMatchObject({ status: 200, body: { id: queued.id, status: 'IN_QUEUE' } });
    const listed = await limited.api('GET', '/api/v1/jobs');
    // The newest job is the retry's own.
    const retry = (listed.body.items as Loose[]).find((job) => job.id !== queued.id && job.request.prompt === PROMPT && job.request.strength === 0.45);
    expect(retry, JSON.stringify(listed.body).slice(0, 300)).toBeDefined();
    expect(retry.inputs.map((input: Loose) => [input.role, input.sha256])).toEqual([
      ['init', sha256(init)],
      ['mask', sha256(mask)],
    ]);
  });

  it('worker-comfyui: input.images loaded by the workflow, denoise as the strength', async () => {
    const workflow = {
      '3': { class_type: 'KSampler', inputs: { seed: 3, steps: 8, cfg: 5, sampler_name: 'euler', scheduler: 'normal', denoise: 0.55, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['12', 0] } },
      '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
      '6': { class_type: 'CLIPTextEncode', inputs: { text: PROMPT, clip: ['4', 1] } },
      '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
      '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
      '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
      '10': { class_type: 'LoadImage', inputs: { image: 'harbour.png' } },
      '11': { class_type: 'LoadImageMask', inputs: { image: 'harbour-mask.png', channel: 'red' } },
      '12': { class_type: 'VAEEncodeForInpaint', inputs: { pixels: ['10', 0], vae: ['4', 2], mask: ['11', 0], grow_mask_by: 6 } },
    };
    const done: Loose = await endpoint.runSync({
      input: { workflow, images: [{ name: 'harbour.png', image: `data:image/png;base64,${init.toString('base64')}` }, { name: 'harbour-mask.png', image: mask.toString('base64') }] },
    });
    expect(done.status).toBe('COMPLETED');
    const job = await nativeJob(done.id);
    // No ImageScale: ComfyUI samples at the loaded image's size.
    expect(job.request).toMatchObject({ prompt: PROMPT, strength: 0.55, width: WIDTH, height: HEIGHT, seed: 3 });
    expect(job.inputs.map((input: Loose) => [input.role, input.sha256])).toEqual([
      ['init', sha256(init)],
      ['mask', sha256(mask)],
    ]);
    const [image] = done.output.images as { data: string }[];
    expect(difference(await pixels(Buffer.from(image!.data, 'base64')), await pixels(init), 0, WIDTH / 2 - 4)).toBeLessThanOrEqual(2);
  });
});

describe('runpod dialect refusing hostile input images', () => {
  const run = async (input: Record<string, unknown>) => {
    const response = await fetch(`${darkroom.url}/v2/ep-inputs/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it.each([
    ['init_images that are not base64', { init_images: ['%%% not base64 %%%'] }, 'input.init_images[0] is not base64 image data'],
    ['init_images that are not an image', { init_images: [Buffer.from('hello, I am text').toString('base64')] }, 'input.init_images[0] is not a PNG, JPEG or WebP image'],
    ['a mask without an init image', { mask: 'MASK' }, 'input.mask needs input.init_images'],
    ['two init images', { init_images: ['AAAA', 'AAAA'] }, 'input.init_images must hold one image'],
    ['a strength out of range', { init_images: ['AAAA'], denoising_strength: 2 }, 'input.denoising_strength must be a number from 0 to 1'],
    ['ComfyUI images of the wrong shape', { workflow: { '1': { class_type: 'KSampler', inputs: {} } }, images: [{ file: 'x' }] }, "input.images must be a list of objects with 'name' and 'image' keys"],
    ['base64 images in worker-sdxl’s format', { num_inference_steps: 10, images: [{ name: 'a.png', image: 'AAAA' }] }, 'input.images is not supported: worker-sdxl takes its image as image_url'],
    ['an image_url beside A1111’s init_images', { init_images: ['AAAA'], image_url: 'https://example.com/a.png' }, 'input.image_url is not supported'],
  ])('%s: 400 in RunPod’s {error} shape, and no job', async (_name, input, message) => {
    const before = await jobCount();
    const answer = await run({ prompt: PROMPT, ...input });
    expect(answer.status).toBe(400);
    expect(Object.keys(answer.body)).toEqual(['error']);
    expect(answer.body.error).toContain(message);
    expect(await jobCount()).toBe(before);
  });

  it('an image_url to a private address is refused at submission, named as the client wrote it', async () => {
    const before = pictureRequests;
    const answer = await run({ prompt: PROMPT, image_url: `${picturesUrl}/harbour.png` });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(/^input\.image_url .*loopback/);
    expect(pictureRequests).toBe(before);
  });

  it('what the core refuses of an image is named by the worker’s field: too small a picture, too many bytes', async () => {
    const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
    const small = await run({ prompt: PROMPT, init_images: [tiny.toString('base64')] });
    expect(small).toEqual({ status: 400, body: { error: 'input.init_images[0] is 1×1 pixels; each side must be 64 to 2048' } });

    const noise = await sharp({ create: { width: 256, height: 256, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).png().toBuffer();
    const large = await fetch(`${limited.url}/v2/ep-inputs/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { prompt: PROMPT, init_images: [noise.toString('base64')] } }),
    });
    expect(large.status).toBe(413);
    expect(await large.json()).toEqual({ error: 'input.init_images[0] must be at most 50000 bytes' });
  });
});
