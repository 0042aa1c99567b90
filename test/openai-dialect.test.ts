import OpenAI, { APIError, BadRequestError, RateLimitError, toFile } from 'openai';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/** The official package, unchanged but for its base URL; its key is an OpenAI-style key darkroom takes as a guest's. */
const clientOf = (darkroom: TestDarkroom, options: { maxRetries?: number } = {}) =>
  new OpenAI({ apiKey: 'sk-proj-not-a-darkroom-key', baseURL: `${darkroom.url}/v1`, ...options });

const expectRefusal = async (promise: Promise<unknown>, param: string) => {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BadRequestError);
  expect((error as BadRequestError).param).toBe(param);
  expect((error as BadRequestError).type).toBe('invalid_request_error');
  return error as BadRequestError;
};

describe('OpenAI dialect, driven by the openai package', () => {
  let darkroom: TestDarkroom;
  let client: OpenAI;

  beforeAll(async () => {
    darkroom = await startDarkroom({ MOCK_LATENCY_MS: '50' });
    client = clientOf(darkroom);
  });
  afterAll(async () => darkroom?.close({ removeData: true }));

  it('generates with b64_json: the bytes are the stored original, as the mock rendered it', async () => {
    const { data: answer, response } = await client.images.generate({ model: 'gpt-image-1', prompt: 'a red fox in snow', size: '1024x1024' }).withResponse();
    expect(answer.data).toHaveLength(1);
    const bytes = Buffer.from(answer.data?.[0]?.b64_json ?? '', 'base64');
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 1024, height: 1024 });
    expect(answer).toMatchObject({ output_format: 'png', size: '1024x1024' });
    expect(answer.created).toBeGreaterThan(1_700_000_000);

    const jobId = response.headers.get('darkroom-job-id') as string;
    const job = (await darkroom.api('GET', `/api/v1/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ status: 'succeeded', provider: 'mock' });
    // gpt-image-1 is claimed by no provider here, so the job does not carry it to the mock.
    expect(job.request.model).toBeUndefined();
    const expected = await renderMockImage('a red fox in snow', job.images[0].seed, 1024, 1024);
    expect(bytes.equals(expected)).toBe(true);
  });

  it('generates several images as signed links that download', async () => {
    const answer = await client.images.generate({ model: 'dall-e-2', prompt: 'three small boats', n: 3, size: '256x256', response_format: 'url' });
    expect(answer.data).toHaveLength(3);
    const hashes = new Set<string>();
    for (const image of answer.data ?? []) {
      expect(image.url).toMatch(/^http:\/\/.+\/files\//);
      const response = await fetch(image.url as string);
      expect(response.status).toBe(200);
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 256, height: 256 });
      hashes.add(bytes.toString('base64'));
    }
    expect(hashes.size).toBe(3);
  });

  it('answers dall-e models with links and GPT image models with base64 when no format is asked', async () => {
    const dalle = await client.images.generate({ model: 'dall-e-2', prompt: 'a kite', size: '256x256' });
    expect(dalle.data?.[0]?.url).toBeDefined();
    expect(dalle.data?.[0]?.b64_json).toBeUndefined();
    const gpt = await client.images.generate({ model: 'gpt-image-1-mini', prompt: 'a kite' });
    expect(gpt.data?.[0]?.b64_json).toBeDefined();
  });

  it('converts to output_format with output_compression, leaving the stored original as it was', async () => {
    const { data: answer, response } = await client.images
      .generate({ model: 'gpt-image-1', prompt: 'a lemon', output_format: 'jpeg', output_compression: 40 })
      .withResponse();
    const bytes = Buffer.from(answer.data?.[0]?.b64_json ?? '', 'base64');
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'jpeg', width: 1024, height: 1024 });
    expect(answer.output_format).toBe('jpeg');
    const job = (await darkroom.api('GET', `/api/v1/jobs/${response.headers.get('darkroom-job-id')}`)).body;
    expect(job.images[0].contentType).toBe('image/png');
    const original = Buffer.from(await (await fetch(job.images[0].url)).arrayBuffer());
    expect((await sharp(original).metadata()).format).toBe('png');

    const webp = await client.images.generate({ model: 'dall-e-2', prompt: 'a lemon', size: '512x512', output_format: 'webp', response_format: 'url' });
    const link = webp.data?.[0]?.url as string;
    expect(link.startsWith('data:image/webp;base64,')).toBe(true);
    expect((await sharp(Buffer.from(await (await fetch(link)).arrayBuffer())).metadata()).format).toBe('webp');
  });

  it('lists the models it takes, and answers any model name', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(['gpt-image-1', 'dall-e-3', 'dall-e-2']));
    const model = await client.models.retrieve('gpt-image-1');
    expect(model).toMatchObject({ id: 'gpt-image-1', object: 'model', owned_by: 'mock' });
    expect(await client.models.retrieve('my-own-sdxl')).toMatchObject({ id: 'my-own-sdxl', owned_by: 'mock' });
  });

  it('streams a generation to its completed event', async () => {
    const stream = await client.images.generate({ model: 'gpt-image-1', prompt: 'a paper crane', stream: true, partial_images: 2 });
    const events: OpenAI.Images.ImageGenStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const completed = events.at(-1);
    expect(completed?.type).toBe('image_generation.completed');
    const bytes = Buffer.from(completed?.b64_json ?? '', 'base64');
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 1024, height: 1024 });
    expect(completed).toMatchObject({ output_format: 'png', size: '1024x1024' });
  });

  it('refuses bad sizes, prompts and counts with BadRequestError naming the parameter', async () => {
    const size = await expectRefusal(client.images.generate({ model: 'gpt-image-1', prompt: 'x', size: '999x999' }), 'size');
    expect(size.message).toContain("'1536x1024'");
    await expectRefusal(client.images.generate({ model: 'dall-e-3', prompt: 'x', size: '256x256' }), 'size');
    await expectRefusal(client.images.generate({ model: 'my-own-sdxl', prompt: 'x', size: 'huge' }), 'size');
    await expectRefusal(client.images.generate({ model: 'gpt-image-1', prompt: '' }), 'prompt');
    await expectRefusal(client.images.generate({ model: 'dall-e-2', prompt: 'p'.repeat(1001) }), 'prompt');
    await expectRefusal(client.images.generate({ model: 'dall-e-3', prompt: 'x', n: 2 }), 'n');
    await expectRefusal(client.images.generate({ model: 'gpt-image-1', prompt: 'x', n: 1_000_000 }), 'n');
    await expectRefusal(client.images.generate({ model: 'dall-e-2', prompt: 'x', style: 'vivid' }), 'style');
    // A model nobody has is still checked against darkroom's own limits.
    const sdxl = await client.images.generate({ model: 'my-own-sdxl', prompt: 'a field', size: '640x384', response_format: 'b64_json' });
    expect(await sharp(Buffer.from(sdxl.data?.[0]?.b64_json ?? '', 'base64')).metadata()).toMatchObject({ width: 640, height: 384 });
  });

  it('answers hostile bodies with a 4xx in OpenAI’s error shape', async () => {
    const post = (body: unknown, headers: Record<string, string> = {}) => darkroom.api('POST', '/v1/images/generations', body, headers);
    const cases: [unknown, string | null][] = [
      ['{"prompt": "x",', null],
      [{ prompt: 42 }, 'prompt'],
      [{ prompt: 'x', n: '3' }, 'n'],
      [{ prompt: 'x', n: 2.5 }, 'n'],
      [{ prompt: 'x', n: 1e12 }, 'n'],
      [{ prompt: 'x', size: 12 }, 'size'],
      [{ prompt: 'x', size: '1024x1024x1024' }, 'size'],
      [{ prompt: 'x', response_format: 'gif' }, 'response_format'],
      [{ prompt: 'x', output_compression: 101 }, 'output_compression'],
      [{ prompt: 'x', stream: 'yes' }, 'stream'],
      [{ prompt: 'x', seed: 5 }, 'seed'],
      [{ prompt: 'x', model: ['gpt-image-1'] }, 'model'],
      [[1, 2], null],
    ];
    for (const [body, param] of cases) {
      const { status, body: answer } = await post(body);
      expect(status, JSON.stringify(body)).toBe(400);
      expect(answer.error, JSON.stringify(body)).toMatchObject({ type: 'invalid_request_error', param });
      expect(typeof answer.error.message).toBe('string');
    }
    const multipart = await darkroom.api('POST', '/v1/images/edits', { prompt: 'x' });
    expect(multipart.status).toBe(415);
    expect(multipart.body.error).toMatchObject({ type: 'invalid_request_error' });
    const unknown = await darkroom.api('GET', '/v1/images/nothing');
    expect(unknown.status).toBe(404);
    const method = await darkroom.api('GET', '/v1/images/generations');
    expect(method.status).toBe(405);
    expect(method.body.error).toMatchObject({ type: 'invalid_request_error', code: 'method_not_allowed' });
  });
});

describe('OpenAI dialect: unfinished and refused jobs', () => {
  it('answers a 504 naming the job once the wait is over, and the openai package does not repeat the request', async () => {
    const darkroom = await startDarkroom({ MOCK_LATENCY_MS: '1500', OPENAI_WAIT_MS: '200' });
    try {
      const error = await clientOf(darkroom)
        .images.generate({ model: 'gpt-image-1', prompt: 'slow' })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).status).toBe(504);
      const jobId = ((error as APIError).error as { job_id: string }).job_id;
      expect((error as APIError).message).toContain(`/api/v1/jobs/${jobId}`);
      const jobs = (await darkroom.api('GET', '/api/v1/jobs?limit=10')).body.items as unknown[];
      expect(jobs).toHaveLength(1);
      expect((await darkroom.waitForJob(jobId)).status).toBe('succeeded');
    } finally {
      await darkroom.close({ removeData: true });
    }
  });

  it('answers a content refusal as OpenAI does: 400 content_policy_violation', async () => {
    // Every submission fails, in the mock's permanent way: its content-policy refusal.
    const darkroom = await startDarkroom({ MOCK_FAILURE_RATE: '1' }, { random: () => 0.5 });
    try {
      const error = await clientOf(darkroom)
        .images.generate({ model: 'gpt-image-1', prompt: 'something refused' })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).code).toBe('content_policy_violation');
    } finally {
      await darkroom.close({ removeData: true });
    }
  });

  it('ends a stream of a refused job with an error event, which the openai package throws', async () => {
    const darkroom = await startDarkroom({ MOCK_FAILURE_RATE: '1' }, { random: () => 0.5 });
    try {
      const stream = await clientOf(darkroom).images.generate({ model: 'gpt-image-1', prompt: 'something refused', stream: true });
      const error = await (async () => {
        for await (const event of stream) expect(event).toBeUndefined();
      })().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).message).toContain('rejected by the safety system');
    } finally {
      await darkroom.close({ removeData: true });
    }
  });

  it('counts generations against RATE_LIMIT_GENERATE, answering 429 in OpenAI’s shape', async () => {
    const darkroom = await startDarkroom({ RATE_LIMIT_GENERATE: '1/minute' });
    try {
      const client = clientOf(darkroom, { maxRetries: 0 });
      await client.images.generate({ model: 'dall-e-2', prompt: 'first', size: '256x256' });
      const error = await client.images.generate({ model: 'dall-e-2', prompt: 'second', size: '256x256' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RateLimitError);
      expect((error as RateLimitError).type).toBe('rate_limit_error');
      expect(Number((error as RateLimitError).headers?.get('retry-after'))).toBeGreaterThan(0);
      // Reads are another group.
      expect((await client.models.list()).data.length).toBeGreaterThan(0);
    } finally {
      await darkroom.close({ removeData: true });
    }
  });

  it('keeps callers apart and takes Idempotency-Key like the other dialects', async () => {
    const darkroom = await startDarkroom({ AUTH: 'required', ADMIN_API_KEY: 'admin-secret-key-123456' });
    try {
      const anonymous = await clientOf(darkroom, { maxRetries: 0 }).images.generate({ prompt: 'x' }).catch((caught: unknown) => caught);
      expect((anonymous as APIError).status).toBe(401);
      expect((anonymous as APIError).type).toBe('authentication_error');

      const made = async (name: string) =>
        (await darkroom.api('POST', '/api/v1/keys', { name }, { authorization: 'Bearer admin-secret-key-123456' })).body.key as string;
      const [alice, bob] = [await made('alice'), await made('bob')];
      const as = (key: string) => new OpenAI({ apiKey: key, baseURL: `${darkroom.url}/v1` });
      const first = await as(alice).images.generate({ prompt: 'once', model: 'dall-e-2', size: '256x256' }, { headers: { 'Idempotency-Key': 'same-key-1' } }).withResponse();
      const again = await as(alice).images.generate({ prompt: 'once', model: 'dall-e-2', size: '256x256' }, { headers: { 'Idempotency-Key': 'same-key-1' } }).withResponse();
      expect(again.response.headers.get('idempotent-replayed')).toBe('true');
      expect(again.data.data?.[0]?.url).toBe(first.data.data?.[0]?.url);
      const other = await as(alice)
        .images.generate({ prompt: 'another prompt', model: 'dall-e-2', size: '256x256' }, { headers: { 'Idempotency-Key': 'same-key-1' }, maxRetries: 0 })
        .catch((caught: unknown) => caught);
      expect((other as APIError).status).toBe(422);
      expect((other as APIError).error).toMatchObject({ type: 'invalid_request_error', message: expect.any(String) });
      const jobId = first.response.headers.get('darkroom-job-id');
      const seen = await darkroom.api('GET', `/api/v1/jobs/${jobId}`, undefined, { authorization: `Bearer ${bob}` });
      expect(seen.status).toBe(404);
    } finally {
      await darkroom.close({ removeData: true });
    }
  });
});

/** A solid picture, and OpenAI's mask for it: transparent (to change) on the left half, opaque on the right. */
async function editImages(size = 256) {
  const init = await sharp({ create: { width: size, height: size, channels: 3, background: '#c81e1e' } }).png().toBuffer();
  const alpha = Buffer.alloc(size * size);
  for (let y = 0; y < size; y += 1) alpha.fill(255, y * size + size / 2, (y + 1) * size);
  const mask = await sharp({ create: { width: size, height: size, channels: 3, background: '#000000' } })
    .joinChannel(alpha, { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toBuffer();
  return { init, mask };
}

describe('OpenAI dialect: edit and variation uploads', () => {
  let darkroom: TestDarkroom;
  let client: OpenAI;
  beforeAll(async () => {
    darkroom = await startDarkroom();
    client = clientOf(darkroom, { maxRetries: 0 });
  });
  afterAll(async () => darkroom?.close({ removeData: true }));

  it('refuses uploads that are not images, masks OpenAI would refuse, and models that do not edit, naming the parameter', async () => {
    const { init, mask } = await editImages();
    const text = await toFile(Buffer.from('not an image at all'), 'notes.png', { type: 'image/png' });
    await expectRefusal(client.images.edit({ model: 'gpt-image-1', prompt: 'x', image: text }), 'image');
    const opaque = await toFile(init, 'mask.png', { type: 'image/png' });
    await expectRefusal(client.images.edit({ model: 'gpt-image-1', prompt: 'x', image: await toFile(init, 'a.png'), mask: opaque }), 'mask');
    const small = await toFile((await editImages(128)).mask, 'mask.png', { type: 'image/png' });
    const mismatch = await expectRefusal(client.images.edit({ model: 'gpt-image-1', prompt: 'x', image: await toFile(init, 'a.png'), mask: small }), 'mask');
    expect(mismatch.message).toContain('128x128');
    await expectRefusal(client.images.edit({ model: 'dall-e-3', prompt: 'x', image: await toFile(init, 'a.png'), mask: await toFile(mask, 'm.png') }), 'model');
    await expectRefusal(client.images.edit({ model: 'dall-e-2', prompt: 'x', image: [await toFile(init, 'a.png'), await toFile(init, 'b.png')] }), 'image');
    await expectRefusal(client.images.edit({ model: 'gpt-image-1', prompt: '', image: await toFile(init, 'a.png') }), 'prompt');
    await expectRefusal(client.images.edit({ model: 'gpt-image-1', prompt: 'x', image: await toFile(init, 'a.png'), size: '7x7' }), 'size');
    await expectRefusal(client.images.createVariation({ image: await toFile(Buffer.from('GIF89a'), 'a.gif') }), 'image');
    await expectRefusal(client.images.createVariation({ model: 'gpt-image-1', image: await toFile(init, 'a.png') }), 'model');
    const missing = new FormData();
    missing.append('prompt', 'no image');
    const answer = await fetch(`${darkroom.url}/v1/images/edits`, { method: 'POST', body: missing });
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { error: unknown }).error).toMatchObject({ param: 'image', code: 'missing_required_parameter' });
  });

  it('edits with an image and a mask through toFile: the image is kept where the mask is opaque', async () => {
    const { init, mask } = await editImages();
    const { data: answer, response } = await client.images
      .edit({ model: 'gpt-image-1', prompt: 'a green meadow', image: await toFile(init, 'photo.png', { type: 'image/png' }), mask: await toFile(mask, 'mask.png', { type: 'image/png' }), size: '1024x1024' })
      .withResponse();
    const result = Buffer.from(answer.data?.[0]?.b64_json ?? '', 'base64');
    const { data: pixels, info } = await sharp(result).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([1024, 1024]);
    const at = (x: number, y: number) => [...pixels.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    // The right half was opaque in OpenAI's mask: the init image stays there.
    expect(at(900, 500)).toEqual([200, 30, 30]);
    expect(at(800, 100)).toEqual([200, 30, 30]);
    expect(at(100, 500)).not.toEqual([200, 30, 30]);

    const job = (await darkroom.api('GET', `/api/v1/jobs/${response.headers.get('darkroom-job-id')}`)).body;
    expect(job.inputs.map((input: { role: string }) => input.role)).toEqual(['init', 'mask']);
    expect(job.inputs[0].sha256).toBe(createHash('sha256').update(init).digest('hex'));
    // darkroom's mask is white where OpenAI's was transparent.
    const stored = await sharp(Buffer.from(await (await fetch(job.inputs[1].url)).arrayBuffer())).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    expect(stored.data[10 * 256 + 10]).toBe(255);
    expect(stored.data[10 * 256 + 250]).toBe(0);
  });

  it('takes several images as the init image and references, streams an edit, and makes variations', async () => {
    const { init } = await editImages();
    const other = await sharp({ create: { width: 128, height: 128, channels: 3, background: '#1e64c8' } }).jpeg().toBuffer();
    const { response } = await client.images
      .edit({ model: 'gpt-image-1', prompt: 'both together', image: [await toFile(init, 'a.png', { type: 'image/png' }), await toFile(other, 'b.jpg', { type: 'image/jpeg' })], size: '1024x1024' })
      .withResponse();
    const job = (await darkroom.api('GET', `/api/v1/jobs/${response.headers.get('darkroom-job-id')}`)).body;
    expect(job.inputs.map((input: { role: string }) => input.role)).toEqual(['init', 'reference']);

    const stream = await client.images.edit({ model: 'gpt-image-1', prompt: 'streamed', image: await toFile(init, 'a.png', { type: 'image/png' }), stream: true });
    const events: OpenAI.Images.ImageEditStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((event) => event.type)).toEqual(['image_edit.completed']);

    const variations = await client.images.createVariation({ image: await toFile(init, 'a.png', { type: 'image/png' }), n: 2, size: '256x256' });
    expect(variations.data).toHaveLength(2);
    for (const image of variations.data ?? []) {
      const bytes = Buffer.from(await (await fetch(image.url as string)).arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ width: 256, height: 256 });
    }
  });

  it('refuses a file over the upload limit with a 413 on image', async () => {
    const form = new FormData();
    form.append('prompt', 'too big');
    const huge = Buffer.alloc(21 * 1_048_576);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(huge);
    form.append('image', new Blob([huge], { type: 'image/png' }), 'huge.png');
    const answer = await fetch(`${darkroom.url}/v1/images/edits`, { method: 'POST', body: form });
    expect(answer.status).toBe(413);
    expect(((await answer.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', param: 'image' });
  });
});
