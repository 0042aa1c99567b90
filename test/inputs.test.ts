import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { makeScriptedProvider } from './helpers/providers.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

const ADMIN = 'admin-key-for-the-input-tests-0123';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const PROMPT = 'a lighthouse at dusk';

/** A PNG whose pixels are a function of their position, so any change shows. */
async function pattern(width: number, height: number, shift = 0): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const at = (y * width + x) * 3;
      pixels[at] = (x * 2 + shift) % 256;
      pixels[at + 1] = (y * 2 + shift * 3) % 256;
      pixels[at + 2] = (x + y + shift * 7) % 256;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Black on the left half, white on the right. */
async function halfMask(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height);
  for (let y = 0; y < height; y += 1) for (let x = width / 2; x < width; x += 1) pixels[y * width + x] = 255;
  return sharp(pixels, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

const rgb = (bytes: Buffer) => sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const dataUri = (bytes: Buffer, type = 'image/png') => `data:${type};base64,${bytes.toString('base64')}`;

async function download(url: string): Promise<Buffer> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

/** The pixels of a column range, every row. */
function columns(pixels: Buffer, width: number, height: number, from: number, to: number): Buffer {
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y += 1) rows.push(pixels.subarray((y * width + from) * 3, (y * width + to) * 3));
  return Buffer.concat(rows);
}

async function upload(dr: TestDarkroom, body: Buffer | FormData, headers: Record<string, string>) {
  const response = await fetch(`${dr.url}/api/v1/uploads`, { method: 'POST', body, headers });
  // Tests inspect arbitrary JSON shapes; each assertion narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
}

function form(bytes: Buffer, type: string, name = 'file'): FormData {
  const data = new FormData();
  data.append(name, new Blob([bytes], { type }), 'picture.bin');
  return data;
}

async function finished(dr: TestDarkroom, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const created = await dr.api('POST', '/api/v1/jobs', body, headers);
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  const job = await dr.waitForJob(created.body.id as string);
  expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
  return (await dr.api('GET', `/api/v1/jobs/${created.body.id}`, undefined, headers)).body;
}

describe('uploads', () => {
  let dr: TestDarkroom;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    dr = await startDarkroom({ ADMIN_API_KEY: ADMIN, UPLOAD_MAX_BYTES: '200000' });
    const key = async (name: string) => (await dr.api('POST', '/api/v1/keys', { name }, bearer(ADMIN))).body.key as string;
    alice = await key('alice');
    bob = await key('bob');
  });
  afterAll(() => dr.close());

  it('takes a multipart file or a raw body, sniffs the type, and gives it back with a link to the same bytes', async () => {
    const png = await pattern(96, 64);
    const jpeg = await sharp(png).jpeg().toBuffer();
    const multipart = await upload(dr, form(png, 'application/octet-stream'), bearer(alice));
    expect(multipart.status).toBe(201);
    expect(multipart.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      contentType: 'image/png',
      width: 96,
      height: 64,
      bytes: png.length,
      sha256: sha256(png),
      expiresAt: expect.any(String),
    });
    expect(Date.parse(multipart.body.expiresAt) - Date.now()).toBeGreaterThan(23 * 3600_000);

    const raw = await upload(dr, jpeg, { ...bearer(alice), 'content-type': 'image/jpeg' });
    expect(raw.status).toBe(201);
    expect(raw.body).toMatchObject({ contentType: 'image/jpeg', width: 96, height: 64, bytes: jpeg.length, sha256: sha256(jpeg) });

    const read = await dr.api('GET', `/api/v1/uploads/${raw.body.id}`, undefined, bearer(alice));
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ ...raw.body, url: expect.stringMatching(/^http:\/\//) });
    expect((await download(read.body.url)).equals(jpeg)).toBe(true);
  });

  it('belongs to its caller: another key gets 404 and cannot use it in a job', async () => {
    const mine = await upload(dr, form(await pattern(64, 64), 'image/png'), bearer(alice));
    const theirs = await dr.api('GET', `/api/v1/uploads/${mine.body.id}`, undefined, bearer(bob));
    expect(theirs.status).toBe(404);
    expect(theirs.body.code).toBe('not_found');
    const job = await dr.api('POST', '/api/v1/jobs', { prompt: PROMPT, images: [{ role: 'init', uploadId: mine.body.id }] }, bearer(bob));
    expect(job.status).toBe(400);
    expect(job.body.errors).toEqual([expect.objectContaining({ field: 'images.0.uploadId' })]);
    expect((await dr.api('GET', `/api/v1/uploads/${mine.body.id}`, undefined, bearer(alice))).status).toBe(200);
  });

  it('refuses what is not an image, a type that lies, other image types and a file over UPLOAD_MAX_BYTES, each saying why', async () => {
    const text = await upload(dr, form(Buffer.from('just some words, not a picture'), 'image/png'), bearer(alice));
    expect(text.status).toBe(400);
    expect(text.body.detail).toMatch(/not a PNG, JPEG or WebP image/);

    const lying = await upload(dr, await pattern(64, 64), { ...bearer(alice), 'content-type': 'image/webp' });
    expect(lying.status).toBe(400);
    expect(lying.body.detail).toBe('file is declared image/webp but its bytes are image/png');

    const gif = await upload(dr, Buffer.from('GIF89a'), { ...bearer(alice), 'content-type': 'image/gif' });
    expect(gif.status).toBe(415);
    expect(gif.body.detail).toMatch(/image\/png, image\/jpeg, image\/webp; got image\/gif/);

    const noise = await sharp(Buffer.from(Array.from({ length: 300 * 300 * 3 }, (_, index) => (index * 7919) % 251)), { raw: { width: 300, height: 300, channels: 3 } })
      .png({ compressionLevel: 0 })
      .toBuffer();
    expect(noise.length).toBeGreaterThan(200_000);
    const big = await upload(dr, form(noise, 'image/png'), bearer(alice));
    expect(big.status).toBe(413);
    const bigRaw = await upload(dr, noise, { ...bearer(alice), 'content-type': 'image/png' });
    expect(bigRaw.status).toBe(413);

    const tiny = await upload(dr, form(await pattern(32, 32), 'image/png'), bearer(alice));
    expect(tiny.status).toBe(400);
    expect(tiny.body.detail).toMatch(/32×32; each side must be 64 to 2048 pixels/);

    const missing = await upload(dr, form(await pattern(64, 64), 'image/png', 'picture'), bearer(alice));
    expect(missing.status).toBe(400);
    expect(missing.body.detail).toMatch(/no part named file/);
  });
});

describe('uploads expire', () => {
  it('after UPLOAD_TTL: the upload is gone, its bytes too unless a job uses them', async () => {
    const dr = await startDarkroom({ UPLOAD_TTL: '3', RECONCILE_INTERVAL_MS: '100' });
    try {
      const kept = await pattern(64, 64, 1);
      const dropped = await pattern(64, 64, 2);
      const used = await upload(dr, form(kept, 'image/png'), {});
      const unused = await upload(dr, form(dropped, 'image/png'), {});
      const links = await Promise.all([used, unused].map(async ({ body }) => (await dr.api('GET', `/api/v1/uploads/${body.id}`)).body.url as string));
      const job = await finished(dr, { prompt: PROMPT, width: 64, height: 64, images: [{ role: 'init', uploadId: used.body.id }], strength: 0 });

      // The later of the two uploads: once it has expired, both have.
      await expect.poll(async () => (await dr.api('GET', `/api/v1/uploads/${unused.body.id}`)).status, { timeout: 10_000 }).toBe(404);
      expect((await dr.api('GET', `/api/v1/uploads/${used.body.id}`)).status).toBe(404);
      const late = await dr.api('POST', '/api/v1/jobs', { prompt: PROMPT, images: [{ role: 'init', uploadId: unused.body.id }] });
      expect(late.status).toBe(400);
      expect(late.body.errors[0].message).toMatch(/expire/);

      // The sweep deletes the unused bytes, not the job's input.
      await expect.poll(async () => (await fetch(links[1] as string)).status).toBe(404);
      expect((await download(links[0] as string)).equals(kept)).toBe(true);
      const again = (await dr.api('GET', `/api/v1/jobs/${job.id}`)).body;
      expect((await download(again.inputs[0].url)).equals(kept)).toBe(true);
    } finally {
      await dr.close();
    }
  });
});

describe('jobs with input images (mock provider)', () => {
  let dr: TestDarkroom;
  const size = { width: 128, height: 96 };

  beforeAll(async () => {
    dr = await startDarkroom({}, { providers: [makeScriptedProvider({}).provider, { ...makeScriptedProvider({ name: 'words' }).provider, capabilities: { textToImage: true, imageToImage: false, inpainting: false, references: false } }] });
  });
  afterAll(() => dr.close());

  it('keeps the init image where the mask is black and paints its own picture where it is white', async () => {
    const init = await pattern(size.width, size.height);
    const mask = await halfMask(size.width, size.height);
    const job = await finished(dr, { prompt: PROMPT, ...size, seed: 42, images: [{ role: 'init', data: init.toString('base64') }, { role: 'mask', data: dataUri(mask) }] });

    expect(job.inputs).toEqual([
      { role: 'init', contentType: 'image/png', ...size, bytes: init.length, sha256: sha256(init), url: expect.any(String) },
      { role: 'mask', contentType: 'image/png', ...size, bytes: mask.length, sha256: sha256(mask), url: expect.any(String) },
    ]);
    expect((await download(job.inputs[0].url)).equals(init)).toBe(true);
    expect(job.request).not.toHaveProperty('inputs');
    expect(job.request.strength).toBe(0.75);

    const output = await rgb(await download(job.images[0].url));
    const own = await rgb(await renderMockImage(PROMPT, 42, size.width, size.height));
    const original = await rgb(init);
    const half = size.width / 2;
    expect(columns(output.data, size.width, size.height, 0, half).equals(columns(original.data, size.width, size.height, 0, half))).toBe(true);
    expect(columns(output.data, size.width, size.height, half, size.width).equals(columns(own.data, size.width, size.height, half, size.width))).toBe(true);
    expect(columns(output.data, size.width, size.height, half, size.width).equals(columns(original.data, size.width, size.height, half, size.width))).toBe(false);
  });

  it('strength 0 gives the init image back (resized to the requested size); 1 ignores it', async () => {
    const init = await pattern(256, 192);
    const source = [{ role: 'init', data: init.toString('base64') }];
    const kept = await finished(dr, { prompt: PROMPT, ...size, seed: 7, images: source, strength: 0 });
    const ignored = await finished(dr, { prompt: PROMPT, ...size, seed: 7, images: source, strength: 1 });
    const resized = await rgb(await sharp(init).resize(size.width, size.height, { fit: 'fill' }).png().toBuffer());
    const keptPixels = await rgb(await download(kept.images[0].url));
    expect([keptPixels.info.width, keptPixels.info.height]).toEqual([size.width, size.height]);
    expect(keptPixels.data.equals(resized.data)).toBe(true);
    const own = await rgb(await renderMockImage(PROMPT, 7, size.width, size.height));
    expect((await rgb(await download(ignored.images[0].url))).data.equals(own.data)).toBe(true);
  });

  it('two different init images give two different outputs for the same prompt and seed', async () => {
    const outputs = await Promise.all(
      [1, 2].map(async (shift) => {
        const job = await finished(dr, { prompt: PROMPT, ...size, seed: 9, images: [{ role: 'init', data: (await pattern(size.width, size.height, shift)).toString('base64') }] });
        return download(job.images[0].url);
      }),
    );
    expect((outputs[0] as Buffer).equals(outputs[1] as Buffer)).toBe(false);
  });

  it('refuses a mask without init, mismatched sizes, two inits, bad base64 and a non-image, naming the field', async () => {
    const init = (await pattern(128, 96)).toString('base64');
    const refused = async (body: Record<string, unknown>) => {
      const response = await dr.api('POST', '/api/v1/jobs', { prompt: PROMPT, ...body });
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      return response.body;
    };
    expect((await refused({ images: [{ role: 'mask', data: init }] })).errors).toEqual([expect.objectContaining({ field: 'images', message: expect.stringMatching(/mask but no init image/) })]);
    const mismatched = await refused({ images: [{ role: 'init', data: init }, { role: 'mask', data: (await halfMask(64, 64)).toString('base64') }] });
    expect(mismatched.detail).toMatch(/images\[1\] is 64×64 but the init image is 128×96/);
    expect((await refused({ images: [{ role: 'init', data: init }, { role: 'init', data: init }] })).errors[0].message).toMatch(/more than one init/);
    expect((await refused({ images: [{ role: 'init', data: 'not base64 at all!' }] })).errors[0].field).toBe('images.0.data');
    expect((await refused({ images: [{ role: 'init', data: Buffer.from('plain text').toString('base64') }] })).detail).toMatch(/images\[0\]\.data is not a PNG, JPEG or WebP image/);
    const truncated = Buffer.from(init, 'base64').subarray(0, 150).toString('base64');
    expect((await refused({ images: [{ role: 'init', data: truncated }] })).detail).toMatch(/images\[0\]\.data is not a PNG, JPEG or WebP image/);
    expect((await refused({ images: [{ role: 'init', data: init, url: 'https://example.com/a.png' }] })).errors[0].message).toMatch(/exactly one of uploadId, url or data/);
    expect((await refused({ strength: 0.5 })).errors[0].field).toBe('strength');
    expect((await refused({ images: [{ role: 'init', data: dataUri(await pattern(64, 64), 'image/jpeg') }] })).detail).toMatch(/declared image\/jpeg but its bytes are image\/png/);
  });

  it('routes only to a provider that can do the job; a named one that cannot is a 400 saying why', async () => {
    const init = (await pattern(128, 96)).toString('base64');
    const named = await dr.api('POST', '/api/v1/jobs', { prompt: PROMPT, provider: 'words', images: [{ role: 'init', data: init }] });
    expect(named.status).toBe(400);
    expect(named.body.detail).toBe('Provider "words" cannot do image-to-image; configured providers that can: mock');
    expect(named.body.errors[0].field).toBe('provider');
    const text = await dr.api('POST', '/api/v1/jobs', { prompt: PROMPT, provider: 'words' });
    expect(text.status).toBe(202);
  });
});

describe('input URLs', () => {
  let server: Server;
  let base: string;
  let requests = 0;
  let image: Buffer;

  beforeAll(async () => {
    image = await pattern(128, 96, 5);
    server = createServer((request, response) => {
      requests += 1;
      if (request.url === '/redirect') return void response.writeHead(302, { location: '/image.png' }).end();
      if (request.url === '/missing') return void response.writeHead(404).end('no');
      response.writeHead(200, { 'content-type': 'image/png' }).end(image);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('refuses a loopback or private address at submission, naming the field', async () => {
    const dr = await startDarkroom();
    try {
      for (const url of [`${base}/image.png`, 'http://10.0.0.8/a.png', 'http://169.254.169.254/latest/meta-data', 'http://localhost/a.png', 'ftp://example.com/a.png']) {
        const response = await dr.api('POST', '/api/v1/jobs', { prompt: PROMPT, images: [{ role: 'init', url }] });
        expect(response.status, url).toBe(400);
        expect(response.body.errors[0].field).toBe('images.0.url');
      }
      expect(requests).toBe(0);
    } finally {
      await dr.close();
    }
  });

  it('fetches a URL once, even across a retry and a restart, and follows a redirect', async () => {
    const scripted = makeScriptedProvider({ submits: ['retryable'] });
    const first = await startDarkroom({ ALLOW_PRIVATE_URLS: 'true' }, { persist: true, providers: [scripted.provider] });
    requests = 0;
    const held = scripted.holdCompletion();
    const created = await first.api('POST', '/api/v1/jobs', { prompt: PROMPT, width: 128, height: 96, seed: 3, images: [{ role: 'init', url: `${base}/redirect` }], strength: 0 });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    await held.reached;
    expect(scripted.calls.submit).toBe(2);
    const closing = first.close({ removeData: false });
    held.release();
    await closing;

    const second = await startDarkroom({ ALLOW_PRIVATE_URLS: 'true' }, { dataDir: first.dataDir });
    try {
      const job = await second.waitForJob(created.body.id);
      expect(job.status).toBe('succeeded');
      expect(requests).toBe(2); // the redirect and the image, once
      const view = (await second.api('GET', `/api/v1/jobs/${created.body.id}`)).body;
      expect(view.inputs[0]).toMatchObject({ role: 'init', sha256: sha256(image) });
      expect((await rgb(await download(view.images[0].url))).data.equals((await rgb(image)).data)).toBe(true);

      const missing = await second.api('POST', '/api/v1/jobs', { prompt: PROMPT, images: [{ role: 'init', url: `${base}/missing` }] });
      expect(missing.status).toBe(400);
      expect(missing.body.detail).toBe('images[0].url could not be fetched: the server answered 404');
    } finally {
      await second.close();
    }
  });
});

describe('large inputs', () => {
  it('a job with a 2 MB base64 image and an Idempotency-Key is taken once, and its repeat is replayed', async () => {
    const dr = await startDarkroom();
    try {
      const noise = await sharp(Buffer.from(Array.from({ length: 1000 * 1000 * 3 }, (_, index) => (index * 7919) % 251)), { raw: { width: 1000, height: 1000, channels: 3 } })
        .png({ compressionLevel: 0 })
        .toBuffer();
      expect(noise.length).toBeGreaterThan(2_000_000);
      const body = { prompt: PROMPT, images: [{ role: 'init', data: noise.toString('base64') }] };
      const first = await dr.api('POST', '/api/v1/jobs', body, { 'idempotency-key': 'big-1' });
      expect(first.status, JSON.stringify(first.body).slice(0, 300)).toBe(202);
      const again = await dr.api('POST', '/api/v1/jobs', body, { 'idempotency-key': 'big-1' });
      expect(again.status).toBe(202);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.id).toBe(first.body.id);
      expect(first.body.inputs[0]).toMatchObject({ role: 'init', width: 1000, height: 1000, bytes: noise.length, sha256: sha256(noise) });
    } finally {
      await dr.close();
    }
  });
});
