import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunpodInput, RunpodInputError } from '../src/api/dialects/runpod/input.ts';
import { ProviderError } from '../src/core/errors.ts';
import type { ProviderContext } from '../src/core/ports/provider.ts';
import type { GenerationRequest, InputSource, JobInput } from '../src/core/request.ts';
import { makeRunpodProvider, runpodCapabilities } from '../src/providers/runpod/index.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { buildInput, comfyuiInputName, type GenerationParams, type WorkerImage } from '../src/protocols/runpod/input.ts';

type Nodes = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

/** A picture with structure (a gradient and a square), so that resizing or inverting it shows. */
async function picture(width: number, height: number, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g"><stop offset="0" stop-color="#c33"/><stop offset="1" stop-color="#36c"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/><rect x="10" y="10" width="20" height="20" fill="#fff"/></svg>`;
  return sharp(Buffer.from(svg))[format]().toBuffer();
}

/** White on the right half (repaint), black on the left (keep). */
async function halfMask(width: number, height: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#000"/><rect x="${width / 2}" width="${width / 2}" height="100%" fill="#fff"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

const workerImage = (bytes: Buffer, contentType = 'image/png'): WorkerImage => ({
  base64: bytes.toString('base64'),
  contentType,
  sha256: createHash('sha256').update(bytes).digest('hex'),
});

const roundTrip = (value: unknown) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
const bytesOf = (source: InputSource | undefined) => Buffer.from(source?.data ?? '', 'base64');

async function problemsOf(input: Record<string, unknown>): Promise<string> {
  const error = await parseRunpodInput(input).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof RunpodInputError)) throw new Error(`expected a RunpodInputError, got ${String(error)}`);
  expect(error.status).toBe(400);
  return error.message;
}

let init: Buffer;
let mask: Buffer;
const params = (extra: Partial<GenerationParams> = {}): GenerationParams => ({ prompt: 'a lighthouse', width: 256, height: 128, seed: 7, numImages: 1, ...extra });

beforeAll(async () => {
  [init, mask] = await Promise.all([picture(256, 128), halfMask(256, 128)]);
});

describe('what the provider sends a worker with an init image and a mask', () => {
  it('a1111: A1111’s img2img fields, the mask repainting from the init image’s own pixels', () => {
    const input = roundTrip(buildInput(params({ images: { init: workerImage(init), mask: workerImage(mask), strength: 0.4 } }), 'a1111'));
    expect(input).toMatchObject({
      prompt: 'a lighthouse',
      width: 256,
      height: 128,
      init_images: [init.toString('base64')],
      mask: mask.toString('base64'),
      denoising_strength: 0.4,
      inpainting_fill: 1,
      inpaint_full_res: false,
      inpainting_mask_invert: 0,
    });
    const noMask = roundTrip(buildInput(params({ images: { init: workerImage(init), strength: 0.75 } }), 'a1111'));
    expect(noMask.mask).toBeUndefined();
    expect(noMask.denoising_strength).toBe(0.75);
  });

  it('comfyui: the files in input.images, loaded, scaled, encoded and masked in the graph; denoise is the strength', () => {
    const input = roundTrip(buildInput(params({ numImages: 3, images: { init: workerImage(init), mask: workerImage(mask), strength: 0.6 } }), 'comfyui'));
    const initName = comfyuiInputName(workerImage(init));
    const maskName = comfyuiInputName(workerImage(mask));
    expect(initName).toMatch(/^darkroom-[0-9a-f]{32}\.png$/);
    expect(input.images).toEqual([
      { name: initName, image: init.toString('base64') },
      { name: maskName, image: mask.toString('base64') },
    ]);
    const nodes = input.workflow as Nodes;
    const linked = (link: unknown) => nodes[(link as [string, number])[0]]!;
    const sampler = Object.values(nodes).find((node) => node.class_type === 'KSampler')!;
    expect(sampler.inputs.denoise).toBe(0.6);
    const batch = linked(sampler.inputs.latent_image);
    expect(batch).toMatchObject({ class_type: 'RepeatLatentBatch', inputs: { amount: 3 } });
    const masked = linked(batch.inputs.samples);
    expect(masked.class_type).toBe('SetLatentNoiseMask');
    expect(linked(masked.inputs.mask)).toEqual({ class_type: 'LoadImageMask', inputs: { image: maskName, channel: 'red' } });
    const encode = linked(masked.inputs.samples);
    expect(encode.class_type).toBe('VAEEncode');
    const scale = linked(encode.inputs.pixels);
    expect(scale).toMatchObject({ class_type: 'ImageScale', inputs: { width: 256, height: 128 } });
    expect(linked(scale.inputs.image)).toEqual({ class_type: 'LoadImage', inputs: { image: initName } });
    expect(Object.values(nodes).some((node) => node.class_type === 'EmptyLatentImage')).toBe(false);
  });

  it('sdxl and custom never carry images (their workers take text only)', () => {
    for (const format of ['sdxl', 'custom'] as const) {
      const input = roundTrip(buildInput(params({ images: { init: workerImage(init), strength: 0.5 } }), format));
      expect(JSON.stringify(input)).not.toContain(init.toString('base64').slice(0, 40));
    }
    expect(runpodCapabilities('sdxl')).toMatchObject({ imageToImage: false, inpainting: false });
    expect(runpodCapabilities('custom')).toMatchObject({ imageToImage: false, inpainting: false });
    expect(runpodCapabilities('a1111')).toMatchObject({ textToImage: true, imageToImage: true, inpainting: true, references: false });
    expect(runpodCapabilities('comfyui')).toMatchObject({ textToImage: true, imageToImage: true, inpainting: true, references: false });
  });
});

describe('the RunPod dialect reading what the provider sends', () => {
  it.each(['a1111', 'comfyui'] as const)('%s: the same init image, mask, strength and size come back', async (format) => {
    const parsed = await parseRunpodInput(roundTrip(buildInput(params({ images: { init: workerImage(init), mask: workerImage(mask), strength: 0.3 } }), format)));
    expect(parsed.format).toBe(format);
    expect(parsed.job).toMatchObject({ prompt: 'a lighthouse', width: 256, height: 128, seed: 7, strength: 0.3 });
    expect(parsed.job.images?.map((source) => source.role)).toEqual(['init', 'mask']);
    expect(bytesOf(parsed.job.images?.[0]).equals(init)).toBe(true);
    expect(bytesOf(parsed.job.images?.[1]).equals(mask)).toBe(true);
  });

  it('worker-sdxl: image_url is an init image the core fetches, with the worker’s own default strength', async () => {
    const parsed = await parseRunpodInput({ prompt: 'x', image_url: 'https://images.example/a.png' });
    expect(parsed.format).toBe('sdxl');
    expect(parsed.job).toMatchObject({ images: [{ role: 'init', url: 'https://images.example/a.png' }], strength: 0.3 });
    expect(parsed.imagePaths).toEqual(['input.image_url']);
    expect((await parseRunpodInput({ prompt: 'x', image_url: 'https://images.example/a.png', strength: 0.9 })).job.strength).toBe(0.9);
    expect((await parseRunpodInput({ prompt: 'x', strength: 0.9 })).job.strength).toBeUndefined();
  });

  it('a1111: data URIs and line-wrapped base64 are read as A1111 reads them; JPEG and WebP too', async () => {
    const jpeg = await picture(64, 64, 'jpeg');
    const webp = await picture(64, 64, 'webp');
    const wrapped = webp.toString('base64').replace(/.{60}/g, '$&\n');
    const fromUri = await parseRunpodInput({ prompt: 'x', init_images: [`data:image/jpeg;base64,${jpeg.toString('base64')}`] });
    expect(bytesOf(fromUri.job.images?.[0]).equals(jpeg)).toBe(true);
    // A1111's default strength is darkroom's: none is sent, the core applies it.
    expect(fromUri.job.strength).toBeUndefined();
    const fromWrapped = await parseRunpodInput({ prompt: 'x', init_images: [wrapped], denoising_strength: 0 });
    expect(bytesOf(fromWrapped.job.images?.[0]).equals(webp)).toBe(true);
    expect(fromWrapped.job.strength).toBe(0);
  });

  it('a1111: an inverted mask becomes darkroom’s (white repaints), and a mask of another size is scaled to the init image', async () => {
    const inverted = await parseRunpodInput({ prompt: 'x', init_images: [init.toString('base64')], mask: mask.toString('base64'), inpainting_mask_invert: 1 });
    const pixels = await sharp(bytesOf(inverted.job.images?.[1])).greyscale().raw().toBuffer({ resolveWithObject: true });
    expect([pixels.info.width, pixels.info.height]).toEqual([256, 128]);
    expect(pixels.data[0]).toBe(255);
    expect(pixels.data[255]).toBe(0);

    const small = await halfMask(64, 32);
    const scaled = await parseRunpodInput({ prompt: 'x', init_images: [init.toString('base64')], mask: small.toString('base64') });
    expect(await sharp(bytesOf(scaled.job.images?.[1])).metadata()).toMatchObject({ width: 256, height: 128 });
  });

  it('comfyui: a graph without ImageScale samples at the init image’s size, rounded down to whole latent blocks', async () => {
    const odd = await picture(203, 131);
    const input = roundTrip(buildInput(params({ images: { init: workerImage(odd), strength: 0.5 } }), 'comfyui'));
    const nodes = input.workflow as Nodes;
    const scaleId = Object.entries(nodes).find(([, node]) => node.class_type === 'ImageScale')![0];
    const encode = Object.values(nodes).find((node) => node.class_type === 'VAEEncode')!;
    encode.inputs.pixels = nodes[scaleId]!.inputs.image;
    delete nodes[scaleId];
    const parsed = await parseRunpodInput(input);
    expect(parsed.job).toMatchObject({ width: 200, height: 128, strength: 0.5 });
  });

  it('refuses hostile images field by field, as RunPod-style 400s', async () => {
    const b64 = init.toString('base64');
    expect(await problemsOf({ prompt: 'x', init_images: ['not base64 at all!'] })).toContain('input.init_images[0] is not base64 image data');
    expect(await problemsOf({ prompt: 'x', init_images: [Buffer.from('plain text, not a picture').toString('base64')] })).toContain(
      'input.init_images[0] is not a PNG, JPEG or WebP image',
    );
    const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
    expect(await problemsOf({ prompt: 'x', init_images: [gif.toString('base64')] })).toContain('(it is image/gif)');
    expect(await problemsOf({ prompt: 'x', init_images: [init.subarray(0, 40).toString('base64')] })).toContain('input.init_images[0] is a damaged image/png image');
    // A whole header and too few pixels: only decoding tells.
    expect(await problemsOf({ prompt: 'x', init_images: [init.subarray(0, 150).toString('base64')] })).toContain('input.init_images[0] is a damaged image/png image');
    expect(await problemsOf({ prompt: 'x', mask: b64 })).toContain('input.mask needs input.init_images');
    expect(await problemsOf({ prompt: 'x', init_images: [b64, b64] })).toContain('input.init_images must hold one image');
    expect(await problemsOf({ prompt: 'x', init_images: b64 })).toContain('input.init_images must be a list of base64 strings');
    expect(await problemsOf({ prompt: 'x', init_images: [b64], denoising_strength: 1.5 })).toContain('input.denoising_strength must be a number from 0 to 1');
    expect(await problemsOf({ prompt: 'x', init_images: [b64], mask: 'junk!' })).toContain('input.mask is not base64 image data');
    expect(await problemsOf({ prompt: 'x', init_images: [b64], image_url: 'https://example.com/a.png' })).toContain(
      'input.image_url is not supported: A1111 takes its image as init_images',
    );
    expect(await problemsOf({ prompt: 'x', image_url: 'https://example.com/a.png', strength: 3 })).toContain('input.strength must be a number from 0 to 1');
    expect(await problemsOf({ prompt: 'x', return_type: 'base64', image: b64 })).toContain('input.image is not supported: the custom worker takes text only');
  });

  it('comfyui: refuses images the graph cannot load and masks it cannot read', async () => {
    const input = () => roundTrip(buildInput(params({ images: { init: workerImage(init), mask: workerImage(mask), strength: 0.5 } }), 'comfyui'));
    const missing = input();
    missing.images = (missing.images as unknown[]).slice(1);
    expect(await problemsOf(missing)).toMatch(/input\.workflow\.10\.inputs\.image must name one of input\.images \("darkroom-[0-9a-f]+\.png" is not there\)/);

    const malformed = input();
    malformed.images = [{ name: 'a.png' }];
    expect(await problemsOf(malformed)).toContain("input.images must be a list of objects with 'name' and 'image' keys");

    const twice = input();
    twice.images = [...(twice.images as unknown[]), (twice.images as unknown[])[0]];
    expect(await problemsOf(twice)).toContain('is given twice');

    const alpha = input();
    (alpha.workflow as Nodes)['13']!.inputs.channel = 'alpha';
    expect(await problemsOf(alpha)).toContain('input.workflow.13.inputs.channel must be red, green or blue');

    const notAnImage = input();
    (notAnImage.images as { image: string }[])[0]!.image = Buffer.from('{"not": "an image"}').toString('base64');
    expect(await problemsOf(notAnImage)).toContain('input.images[0].image is not a PNG, JPEG or WebP image');

    const unknownStart = input();
    (unknownStart.workflow as Nodes)['12']!.class_type = 'SomethingElse';
    expect(await problemsOf(unknownStart)).toContain('must sample an empty latent image (EmptyLatentImage) with a width and height, or an image it loads');
  });
});

describe('the runpod provider with input images, against a scripted RunPod', () => {
  let server: Server;
  let url: string;
  const sent: Record<string, unknown>[] = [];
  let output: unknown;
  beforeAll(async () => {
    server = createServer((incoming, response) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/json' });
        if (incoming.url?.endsWith('/run')) {
          sent.push(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
          response.end(JSON.stringify({ id: 'job-1', status: 'IN_QUEUE' }));
        } else {
          response.end(JSON.stringify({ id: 'job-1', status: 'COMPLETED', output }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const stored = (role: 'init' | 'mask', bytes: Buffer): JobInput => ({
    role,
    key: `jobs/j/input-${role}.png`,
    contentType: 'image/png',
    width: 256,
    height: 128,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  });
  const request = (): GenerationRequest => ({
    prompt: 'a lighthouse',
    width: 256,
    height: 128,
    numImages: 1,
    priority: 0,
    strength: 0.35,
    inputs: [stored('init', init), stored('mask', mask)],
  });
  const context = (): ProviderContext => ({
    jobId: 'j',
    deadlineAt: null,
    signal: AbortSignal.timeout(2000),
    readInput: async (input) => (input.role === 'init' ? init : mask),
  });
  const provider = (inputFormat: 'a1111' | 'sdxl') => makeRunpodProvider({ apiUrl: url, apiKey: 'k', endpointId: 'ep', inputFormat, timeoutMs: 2000, maxImageBytes: 1_000_000 });

  it('a1111: sends the stored bytes as init_images and mask, the strength as denoising_strength', async () => {
    await provider('a1111').submit(request(), context());
    expect(sent.at(-1)?.input).toMatchObject({ init_images: [init.toString('base64')], mask: mask.toString('base64'), denoising_strength: 0.35 });
  });

  it('a1111: an answer from /txt2img (parameters without init_images) is a permanent failure, not a picture that ignored the image', async () => {
    output = { images: [init.toString('base64')], parameters: { prompt: 'a lighthouse' }, info: '{}' };
    const error = await provider('a1111')
      .poll({ providerJobId: 'job-1', request: request() }, context())
      .then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'inputs_ignored', retryable: false });
    output = { images: [init.toString('base64')], parameters: { prompt: 'a lighthouse', init_images: null }, info: '{}' };
    const done = await provider('a1111').poll({ providerJobId: 'job-1', request: request() }, context());
    expect(done.state).toBe('succeeded');
  });

  it('an init image too large for RunPod’s 10 MB /run body is refused before any call', async () => {
    const before = sent.length;
    const huge = Buffer.alloc(8_000_000, 7);
    const error = await provider('a1111')
      .submit(request(), { ...context(), readInput: async () => huge })
      .then(() => undefined, (caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'request_too_large', retryable: false });
    expect(sent.length).toBe(before);
  });

  it('sdxl: a job with inputs is refused before any call', async () => {
    const before = sent.length;
    const error = await provider('sdxl')
      .submit(request(), context())
      .then(() => undefined, (caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'unsupported_request', retryable: false });
    expect((error as Error).message).toContain('RUNPOD_INPUT_FORMAT=sdxl');
    expect(sent.length).toBe(before);
  });
});

describe('routing by what the configured worker format can do', () => {
  let darkroom: TestDarkroom;
  beforeAll(async () => {
    // A worker-sdxl endpoint that is never called: WORKER_CONCURRENCY=0, and routing is decided at creation.
    darkroom = await startDarkroom({
      WORKER_CONCURRENCY: '0',
      DEFAULT_PROVIDER: 'runpod',
      RUNPOD_API_URL: 'http://127.0.0.1:9/v2',
      RUNPOD_API_KEY: 'k',
      RUNPOD_ENDPOINT_ID: 'ep',
      RUNPOD_INPUT_FORMAT: 'sdxl',
    });
  });
  afterAll(() => darkroom?.close({ removeData: true }));

  it('a job with an init image goes past an sdxl endpoint to a provider that can; naming runpod is a 400 saying why', async () => {
    const images = [{ role: 'init', data: init.toString('base64') }];
    const text = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'a lighthouse' });
    expect(text.body.provider).toBe('runpod');
    const routed = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'a lighthouse', images });
    expect(routed.status).toBe(202);
    expect(routed.body.provider).toBe('mock');
    const named = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'a lighthouse', images, provider: 'runpod' });
    expect(named.status).toBe(400);
    expect(JSON.stringify(named.body)).toMatch(/image-to-image/);
  });
});
