import { noInputs } from './helpers/providers.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../src/core/errors.ts';
import type { GenerationRequest } from '../src/core/request.ts';
import { httpError, upstreamMessage } from '../src/providers/runpod/http.ts';
import { resolveImage } from '../src/providers/runpod/images.ts';
import { parseRetryAfter, sniffImageType } from '../src/protocols/http/index.ts';
import { makeRunpodProvider } from '../src/providers/runpod/index.ts';
import { buildInput, buildPolicy, DEFAULT_COMFYUI_CHECKPOINT } from '../src/protocols/runpod/input.ts';
import { parseOutput, workerFailure } from '../src/providers/runpod/output.ts';
import { providerContract } from './helpers/provider-contract.ts';
import { runpodContractSpec } from './helpers/runpod.ts';

describe('runpod provider, sdxl worker', () => providerContract(runpodContractSpec('sdxl')));

const request = (extra: Partial<GenerationRequest> = {}): GenerationRequest => ({
  prompt: 'a lighthouse',
  width: 512,
  height: 768,
  numImages: 2,
  priority: 0,
  ...extra,
});

/** A local HTTP server whose answers the test sets per request; it records what it was asked. */
async function startServer(handler: (request: IncomingMessage, body: string, response: ServerResponse) => void) {
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
  const server: Server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: incoming.method ?? '', url: incoming.url ?? '', headers: incoming.headers, body });
      handler(incoming, body, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const json = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
};

let png: Buffer;
let jpeg: Buffer;
let webp: Buffer;
beforeAll(async () => {
  const base = sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } });
  [png, jpeg, webp] = await Promise.all([base.clone().png().toBuffer(), base.clone().jpeg().toBuffer(), base.clone().webp().toBuffer()]);
});

describe('buildInput', () => {
  it('sdxl: worker-sdxl keys only, absent options left out, scheduler names mapped', () => {
    const input = buildInput(request({ steps: 30, cfgScale: 6.5, seed: 42, scheduler: 'Euler a', negativePrompt: 'blurry' }), 'sdxl');
    expect(JSON.parse(JSON.stringify(input))).toEqual({
      prompt: 'a lighthouse',
      negative_prompt: 'blurry',
      width: 512,
      height: 768,
      num_inference_steps: 30,
      guidance_scale: 6.5,
      seed: 42,
      scheduler: 'K_EULER_ANCESTRAL',
      num_images: 2,
    });
    // worker-sdxl fails a job on a scheduler it does not know, so an unknown one is not sent.
    expect(JSON.parse(JSON.stringify(buildInput(request({ scheduler: 'Mystery' }), 'sdxl')))).toEqual({
      prompt: 'a lighthouse',
      width: 512,
      height: 768,
      num_images: 2,
    });
  });

  it('a1111: A1111 keys, seed -1 for random', () => {
    expect(JSON.parse(JSON.stringify(buildInput(request({ steps: 25, cfgScale: 7, scheduler: 'DPM++ 2M Karras' }), 'a1111')))).toEqual({
      prompt: 'a lighthouse',
      width: 512,
      height: 768,
      steps: 25,
      cfg_scale: 7,
      seed: -1,
      sampler_name: 'DPM++ 2M Karras',
      batch_size: 2,
    });
  });

  it('custom: the origin worker’s keys with return_type base64', () => {
    expect(JSON.parse(JSON.stringify(buildInput(request({ seed: 9, numImages: 1 }), 'custom')))).toEqual({
      prompt: 'a lighthouse',
      width: 512,
      height: 768,
      seed: 9,
      return_type: 'base64',
    });
  });

  it('comfyui: a text-to-image graph wired KSampler → latent, prompts, checkpoint → SaveImage', () => {
    const input = buildInput(request({ seed: 5, steps: 12, cfgScale: 4, negativePrompt: 'fog', model: 'juggernaut.safetensors', scheduler: 'DPM++ 2M Karras' }), 'comfyui');
    const workflow = input.workflow as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    const byClass = (name: string) => {
      const found = Object.entries(workflow).filter(([, node]) => node.class_type === name);
      expect(found).toHaveLength(1);
      return found[0]!;
    };
    const [samplerId, sampler] = byClass('KSampler');
    expect(sampler.inputs).toMatchObject({ seed: 5, steps: 12, cfg: 4, sampler_name: 'dpmpp_2m', scheduler: 'karras', denoise: 1 });
    const linked = (link: unknown) => workflow[(link as [string, number])[0]]!;
    expect(linked(sampler.inputs.positive)).toMatchObject({ class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse' } });
    expect(linked(sampler.inputs.negative)).toMatchObject({ class_type: 'CLIPTextEncode', inputs: { text: 'fog' } });
    expect(linked(sampler.inputs.latent_image)).toMatchObject({ class_type: 'EmptyLatentImage', inputs: { width: 512, height: 768, batch_size: 2 } });
    expect(linked(sampler.inputs.model)).toMatchObject({ class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'juggernaut.safetensors' } });
    const [, save] = byClass('SaveImage');
    const decode = linked(save.inputs.images);
    expect(decode.class_type).toBe('VAEDecode');
    expect((decode.inputs.samples as [string, number])[0]).toBe(samplerId);
  });

  it('comfyui: a random seed when none is asked, the default checkpoint for an AIR', () => {
    const input = buildInput(request({ model: 'urn:air:sdxl:checkpoint:civitai:1@2' }), 'comfyui', () => 0.5);
    const nodes = Object.values(input.workflow as Record<string, { class_type: string; inputs: Record<string, unknown> }>);
    expect(nodes.find((node) => node.class_type === 'KSampler')?.inputs.seed).toBe(2147483648);
    expect(nodes.find((node) => node.class_type === 'CheckpointLoaderSimple')?.inputs.ckpt_name).toBe(DEFAULT_COMFYUI_CHECKPOINT);
  });
});

describe('buildPolicy', () => {
  it('is absent without a deadline and follows the time left otherwise, within RunPod’s minimums', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(buildPolicy(null, now)).toBeUndefined();
    expect(buildPolicy(new Date(now + 120_000), now)).toEqual({ ttl: 120_000, executionTimeout: 120_000 });
    expect(buildPolicy(new Date(now + 1_000), now)).toEqual({ ttl: 10_000, executionTimeout: 5_000 });
  });
});

describe('parseOutput', () => {
  it('worker-comfyui ≥5: base64 and s3_url images, no seeds', () => {
    const parsed = parseOutput({
      images: [
        { filename: 'ComfyUI_00001_.png', type: 'base64', data: 'iVBORw0KGgo=' },
        { filename: 'ComfyUI_00002_.png', type: 's3_url', data: 'https://bucket.example/2.png' },
      ],
      errors: ['a warning'],
    });
    expect(parsed.images).toEqual([
      { kind: 'base64', data: 'iVBORw0KGgo=' },
      { kind: 'url', data: 'https://bucket.example/2.png' },
    ]);
    expect(parsed.seeds).toEqual([]);
  });

  it('older worker-comfyui: {message}', () => {
    expect(parseOutput({ message: 'https://bucket.example/x.png', status: 'success' }).images).toEqual([{ kind: 'url', data: 'https://bucket.example/x.png' }]);
  });

  it('worker-sdxl: data URIs or links, image i has seed + i', () => {
    const parsed = parseOutput({ images: ['data:image/png;base64,AAAA', 'https://bucket.example/1.png'], image_url: 'data:image/png;base64,AAAA', seed: 100 });
    expect(parsed.images.map((image) => image.kind)).toEqual(['base64', 'url']);
    expect(parsed.seeds).toEqual([100, 101]);
  });

  it('a1111: seeds from info.all_seeds, as JSON text or an object', () => {
    expect(parseOutput({ images: ['AAAA', 'BBBB'], parameters: {}, info: JSON.stringify({ seed: 7, all_seeds: [7, 99] }) }).seeds).toEqual([7, 99]);
    expect(parseOutput({ images: ['AAAA', 'BBBB'], parameters: {}, info: { seed: 7 } }).seeds).toEqual([7, 8]);
    expect(parseOutput({ images: ['AAAA'], parameters: {}, info: 'not json' }).seeds).toEqual([]);
  });

  it('custom worker: {image_url} or {image}; a bare string', () => {
    expect(parseOutput({ image_url: 'https://cdn.example/a.png' }).images).toEqual([{ kind: 'url', data: 'https://cdn.example/a.png' }]);
    expect(parseOutput({ image: 'AAAA' }).images).toEqual([{ kind: 'base64', data: 'AAAA' }]);
    expect(parseOutput('AAAA').images).toEqual([{ kind: 'base64', data: 'AAAA' }]);
  });

  it('no images: an empty list (the caller decides), and worker errors become ProviderErrors', () => {
    expect(parseOutput({ images: [], status: 'success_no_images' }).images).toEqual([]);
    const crashed = catchError(() => parseOutput({ error: 'RuntimeError: CUDA out of memory', refresh_worker: true }));
    expect(crashed).toMatchObject({ code: 'worker_failed', retryable: true, resubmit: true });
    expect(crashed.message).toContain('CUDA out of memory');
    const invalid = catchError(() => parseOutput({ error: 'Job processing failed', details: ['Workflow validation failed: ckpt_name not in list'] }));
    expect(invalid).toMatchObject({ code: 'invalid_input', retryable: false });
    expect(catchError(() => parseOutput({ something: 'else' }))).toMatchObject({ code: 'invalid_output', retryable: false });
    expect(catchError(() => parseOutput(null))).toMatchObject({ code: 'no_output', retryable: true });
  });

  it('worker errors given as JSON text are read for their message', () => {
    const error = workerFailure(JSON.stringify({ error_type: 'ValueError', error_message: 'prompt is a required input' }));
    expect(error.message).toBe('The RunPod worker failed: prompt is a required input');
    expect(error.retryable).toBe(false);
  });
});

function catchError(action: () => unknown): ProviderError {
  try {
    action();
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
  throw new Error('expected a ProviderError');
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (error instanceof ProviderError) return error;
  throw new Error(`expected a ProviderError, got ${String(error)}`);
}

describe('resolveImage', () => {
  const options = () => ({ maxBytes: 10_000, signal: AbortSignal.timeout(5000) });

  it('decodes base64 and data URIs to the exact bytes, typed by what the bytes are', async () => {
    expect(sniffImageType(png)).toBe('image/png');
    expect(sniffImageType(jpeg)).toBe('image/jpeg');
    expect(sniffImageType(webp)).toBe('image/webp');
    const fromBase64 = await resolveImage({ kind: 'base64', data: webp.toString('base64') }, options());
    expect(fromBase64.bytes.equals(webp)).toBe(true);
    expect(fromBase64.contentType).toBe('image/webp');
    // worker-sdxl labels everything image/png; the bytes win.
    const fromDataUri = await resolveImage({ kind: 'base64', data: `data:image/png;base64,${jpeg.toString('base64')}` }, options());
    expect(fromDataUri.bytes.equals(jpeg)).toBe(true);
    expect(fromDataUri.contentType).toBe('image/jpeg');
  });

  it('refuses base64 that is not base64, and images over the limit before decoding them', async () => {
    expect(await rejection(resolveImage({ kind: 'base64', data: 'not base64 at all!' }, options()))).toMatchObject({ code: 'invalid_output' });
    const big = Buffer.alloc(20_000, 1).toString('base64');
    expect(await rejection(resolveImage({ kind: 'base64', data: big }, options()))).toMatchObject({ code: 'image_too_large', retryable: false });
    expect(await rejection(resolveImage({ kind: 'base64', data: `data:image/png;base64,${big}` }, options()))).toMatchObject({ code: 'image_too_large' });
  });

  describe('links', () => {
    let server: Awaited<ReturnType<typeof startServer>>;
    beforeAll(async () => {
      server = await startServer((incoming, _body, response) => {
        if (incoming.url === '/image.png') {
          response.writeHead(200, { 'content-type': 'binary/octet-stream', 'content-length': String(png.length) });
          response.end(png);
        } else if (incoming.url === '/declared-huge') {
          response.writeHead(200, { 'content-type': 'image/png', 'content-length': '50000' });
          response.end(Buffer.alloc(50_000));
        } else if (incoming.url === '/streamed-huge') {
          // Chunked, no length: the limit must hold while reading.
          response.writeHead(200, { 'content-type': 'image/png' });
          for (let i = 0; i < 10; i += 1) response.write(Buffer.alloc(4_000));
          response.end();
        } else {
          json(response, 404, { error: 'expired' });
        }
      });
    });
    afterAll(() => server.close());

    it('downloads the exact bytes, without the API key', async () => {
      const image = await resolveImage({ kind: 'url', data: `${server.url}/image.png` }, options());
      expect(image.bytes.equals(png)).toBe(true);
      expect(image.contentType).toBe('image/png');
      expect(server.seen.at(-1)?.headers.authorization).toBeUndefined();
    });

    it('refuses an image over the limit, declared or streamed', async () => {
      expect(await rejection(resolveImage({ kind: 'url', data: `${server.url}/declared-huge` }, options()))).toMatchObject({ code: 'image_too_large', retryable: false });
      expect(await rejection(resolveImage({ kind: 'url', data: `${server.url}/streamed-huge` }, options()))).toMatchObject({ code: 'image_too_large' });
    });

    it('a dead link needs a new run', async () => {
      expect(await rejection(resolveImage({ kind: 'url', data: `${server.url}/gone.png` }, options()))).toMatchObject({
        code: 'image_link_gone',
        retryable: true,
        resubmit: true,
      });
    });
  });
});

describe('HTTP error classification', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('takes the upstream’s message from error, message or detail', () => {
    expect(upstreamMessage('{"error":"bad input"}')).toBe('bad input');
    expect(upstreamMessage('{"detail":"no such endpoint"}')).toBe('no such endpoint');
    expect(upstreamMessage('plain text\nbody')).toBe('plain text body');
  });

  it('429 and 5xx are retryable, other 4xx permanent', () => {
    expect(httpError(429, new Headers({ 'retry-after': '2' }), '', 'POST /run')).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterMs: 2000 });
    expect(httpError(502, new Headers(), '', 'POST /run')).toMatchObject({ retryable: true });
    expect(httpError(401, new Headers(), '{"error":"Unauthorized"}', 'POST /run')).toMatchObject({ code: 'upstream_unauthorized', retryable: false });
    const rejected = httpError(400, new Headers(), '{"message":"width too big"}', 'POST /run');
    expect(rejected).toMatchObject({ code: 'upstream_rejected', retryable: false });
    expect(rejected.message).toBe('RunPod answered 400 to POST /run: width too big');
  });
});

describe('runpod provider against a scripted RunPod', () => {
  const KEY = 'rp_SECRET_KEY_123';
  let status: { code: number; body: unknown; headers?: Record<string, string> };
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer((incoming, _body, response) => {
      if (incoming.url?.endsWith('/run')) return json(response, 200, { id: 'job-1', status: 'IN_QUEUE' });
      if (incoming.url?.endsWith('/health')) return json(response, 200, { jobs: { inQueue: 3 }, workers: { idle: 1, running: 2 } });
      if (incoming.url?.includes('/cancel/')) return json(response, 404, { error: 'not found' });
      return json(response, status.code, status.body, status.headers);
    });
  });
  afterAll(() => server.close());

  const provider = () =>
    makeRunpodProvider({ apiUrl: `${server.url}/v2`, apiKey: KEY, endpointId: 'ep-1', inputFormat: 'sdxl', timeoutMs: 2000, maxImageBytes: 100_000 });
  const context = (deadlineAt: Date | null = null) => ({ jobId: 'j', deadlineAt, readInput: noInputs, signal: AbortSignal.timeout(2000) });
  const job = { providerJobId: 'job-1', request: request({ numImages: 1, seed: 3 }) };

  it('sends a workflow job to worker-comfyui as given, its input images as the files its LoadImage nodes name', async () => {
    const workflow = {
      '3': { class_type: 'KSampler', inputs: { seed: 5, model: ['4', 0], latent_image: ['12', 0] } },
      '10': { class_type: 'LoadImage', inputs: { image: 'street.png' } },
      '11': { class_type: 'MyCustomNode', inputs: { anything: [1, 2, { nested: true }] } },
      '12': { class_type: 'VAEEncode', inputs: { pixels: ['10', 0], vae: ['4', 2] } },
    };
    const init = { role: 'init' as const, key: 'inputs/abc.png', contentType: 'image/png', width: 64, height: 64, bytes: 4, sha256: 'abc' };
    const comfy = makeRunpodProvider({ apiUrl: `${server.url}/v2`, apiKey: KEY, endpointId: 'ep-1', inputFormat: 'comfyui', timeoutMs: 2000, maxImageBytes: 100_000 });
    expect(comfy.capabilities.workflows).toBe(true);
    expect(provider().capabilities.workflows).toBeFalsy();
    const readInput = async (input: { key: string }) => Buffer.from(`bytes of ${input.key}`);
    await comfy.submit(request({ workflow, inputs: [init] }), { jobId: 'j', deadlineAt: null, readInput, signal: AbortSignal.timeout(2000) });
    const body = JSON.parse(server.seen.at(-1)!.body) as { input: Record<string, unknown> };
    expect(body.input).toEqual({ workflow, images: [{ name: 'street.png', image: Buffer.from('bytes of inputs/abc.png').toString('base64') }] });
  });

  it('submits with the bearer key, the worker input and a policy from the deadline', async () => {
    const { providerJobId } = await provider().submit(request(), context(new Date(Date.now() + 60_000)));
    expect(providerJobId).toBe('job-1');
    const sent = server.seen.at(-1)!;
    expect(sent.method).toBe('POST');
    expect(sent.url).toBe('/v2/ep-1/run');
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    const body = JSON.parse(sent.body) as { input: Record<string, unknown>; policy: { ttl: number; executionTimeout: number } };
    expect(body.input).toMatchObject({ prompt: 'a lighthouse', num_images: 2 });
    expect(body.policy.ttl).toBeGreaterThan(55_000);
    expect(body.policy.ttl).toBeLessThanOrEqual(60_000);
  });

  it('maps RunPod statuses', async () => {
    status = { code: 200, body: { id: 'job-1', status: 'IN_QUEUE' } };
    expect(await provider().poll(job, context())).toEqual({ state: 'queued' });
    status = { code: 200, body: { id: 'job-1', status: 'IN_PROGRESS' } };
    expect(await provider().poll(job, context())).toEqual({ state: 'running' });
    status = { code: 200, body: { id: 'job-1', status: 'CANCELLED' } };
    expect(await provider().poll(job, context())).toEqual({ state: 'cancelled' });
    status = { code: 200, body: { id: 'job-1', status: 'COMPLETED', output: { images: [`data:image/png;base64,${png.toString('base64')}`], seed: 11 } } };
    const done = await provider().poll(job, context());
    expect(done.state === 'succeeded' && done.outputs.map((output) => [output.bytes.equals(png), output.contentType, output.seed])).toEqual([[true, 'image/png', 11]]);
  });

  it('an output without seeds keeps the seed darkroom sent for the first image', async () => {
    status = { code: 200, body: { id: 'job-1', status: 'COMPLETED', output: { images: [{ filename: 'a.png', type: 'base64', data: png.toString('base64') }] } } };
    const done = await provider().poll(job, context());
    expect(done.state === 'succeeded' && done.outputs[0]?.seed).toBe(3);
  });

  it('FAILED is retried on a new run unless the input is at fault; TIMED_OUT and a forgotten job too', async () => {
    status = { code: 200, body: { id: 'job-1', status: 'FAILED', error: 'CUDA error: out of memory' } };
    const crashed = await rejection(provider().poll(job, context()));
    expect(crashed).toMatchObject({ code: 'worker_failed', retryable: true, resubmit: true });
    expect(crashed.message).toContain('CUDA error: out of memory');
    status = { code: 200, body: { id: 'job-1', status: 'FAILED', error: 'Unexpected input. foo is not a valid input option.' } };
    expect(await rejection(provider().poll(job, context()))).toMatchObject({ retryable: false });
    status = { code: 200, body: { id: 'job-1', status: 'TIMED_OUT' } };
    expect(await rejection(provider().poll(job, context()))).toMatchObject({ retryable: true, resubmit: true });
    status = { code: 404, body: { error: 'request does not exist' } };
    expect(await rejection(provider().poll(job, context()))).toMatchObject({ code: 'upstream_job_not_found', retryable: true, resubmit: true });
  });

  it('never repeats the API key, even when the upstream echoes it', async () => {
    status = { code: 401, body: { error: `invalid api key ${KEY}` } };
    const error = await rejection(provider().poll(job, context()));
    expect(error).toMatchObject({ code: 'upstream_unauthorized', retryable: false });
    expect(error.message).not.toContain(KEY);
    expect(error.message).toContain('[redacted]');
  });

  it('a 429 carries its Retry-After', async () => {
    status = { code: 429, body: { error: 'slow down' }, headers: { 'retry-after': '7' } };
    expect(await rejection(provider().poll(job, context()))).toMatchObject({ code: 'rate_limited', retryAfterMs: 7000 });
  });

  it('an unreachable RunPod is retryable', async () => {
    const offline = makeRunpodProvider({ apiUrl: 'http://127.0.0.1:9/v2', apiKey: KEY, endpointId: 'ep-1', inputFormat: 'sdxl', timeoutMs: 2000, maxImageBytes: 1000 });
    expect(await rejection(offline.poll(job, context()))).toMatchObject({ code: 'network_error', retryable: true });
    expect(await offline.check()).toMatchObject({ ok: false });
  });

  it('cancels with POST /cancel/{id} (a forgotten job is fine) and checks /health', async () => {
    await provider().cancel(job);
    expect(server.seen.at(-1)).toMatchObject({ method: 'POST', url: '/v2/ep-1/cancel/job-1' });
    expect(await provider().check()).toEqual({ ok: true, detail: 'RunPod endpoint ep-1: 1 idle and 2 running workers, 3 jobs queued' });
  });

  it('the custom worker refuses several images per job up front', async () => {
    const custom = makeRunpodProvider({ apiUrl: `${server.url}/v2`, apiKey: KEY, endpointId: 'ep-1', inputFormat: 'custom', timeoutMs: 2000, maxImageBytes: 1000 });
    expect(await rejection(custom.submit(request({ numImages: 2 }), context()))).toMatchObject({ code: 'unsupported_request', retryable: false });
  });
});
