import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Through the package's own exports, as a consumer imports it (the built dist/, see build:client).
import { Darkroom, DarkroomApiError, type CreateJobInput, type JobProgress, type JobStreamEvent } from 'darkroom/client';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const UNKNOWN_ID = '0190a7a2-7b7e-7000-8000-000000000000';

let dr: TestDarkroom;
let slow: TestDarkroom;
let client: Darkroom;
let slowClient: Darkroom;

beforeAll(async () => {
  [dr, slow] = await Promise.all([startDarkroom({ MOCK_LATENCY_MS: '400' }), startDarkroom({ MOCK_LATENCY_MS: '60000', SSE_HEARTBEAT_MS: '50' })]);
  client = new Darkroom({ baseUrl: dr.url });
  slowClient = new Darkroom({ baseUrl: `${slow.url}/` });
});
afterAll(async () => {
  await Promise.all([dr?.close({ removeData: true }), slow?.close({ removeData: true })]);
});

/** Resolves with what `promise` rejected with (and fails the test if it resolved). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

describe('Darkroom client: uploads and input images', () => {
  const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

  it('uploads.create takes bytes (type read from them) or a Blob; uploads.get links to the same bytes', async () => {
    const jpeg = new Uint8Array(await sharp({ create: { width: 96, height: 64, channels: 3, background: '#c03020' } }).jpeg().toBuffer());
    const upload = await client.uploads.create(jpeg);
    expect(upload).toMatchObject({ contentType: 'image/jpeg', width: 96, height: 64, bytes: jpeg.byteLength, sha256: sha256(jpeg) });
    expect(Date.parse(upload.expiresAt)).toBeGreaterThan(Date.now());

    const read = await client.uploads.get(upload.id);
    expect(read).toMatchObject({ ...upload, url: expect.stringMatching(/^http/) });
    expect(new Uint8Array(await (await fetch(read.url)).arrayBuffer())).toEqual(jpeg);

    // A Blob whose own type is wrong (an extension's guess) is sent as what its bytes are.
    const webp = new Uint8Array(await sharp({ create: { width: 80, height: 64, channels: 3, background: '#203080' } }).webp().toBuffer());
    expect(await client.uploads.create(new Blob([webp], { type: 'image/png' }))).toMatchObject({ contentType: 'image/webp', width: 80, height: 64 });
  });

  it('refusals are DarkroomApiErrors: not an image, a type that lies, an unknown upload', async () => {
    const text = await rejection(client.uploads.create(new TextEncoder().encode('not an image at all')));
    expect(text).toBeInstanceOf(DarkroomApiError);
    expect((text as DarkroomApiError).status).toBe(400);
    const png = new Uint8Array(await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } }).png().toBuffer());
    const lying = await rejection(client.uploads.create(png, 'image/jpeg'));
    expect((lying as DarkroomApiError).status).toBe(400);
    const unknown = await rejection(client.uploads.get(UNKNOWN_ID));
    expect((unknown as DarkroomApiError).status).toBe(404);
  });

  it('create takes the uploads as images with a strength; the job lists its inputs', async () => {
    const png = new Uint8Array(await sharp({ create: { width: 128, height: 128, channels: 3, background: '#808000' } }).png().toBuffer());
    const upload = await client.uploads.create(png);
    const job = await client.create({ prompt: 'from an upload', width: 128, height: 128, images: [{ role: 'init', uploadId: upload.id }], strength: 0.3 });
    const done = await client.wait(job.id);
    expect(done.status).toBe('succeeded');
    expect(done.request.strength).toBe(0.3);
    expect(done.inputs).toEqual([{ role: 'init', contentType: 'image/png', width: 128, height: 128, bytes: png.byteLength, sha256: sha256(png), url: expect.stringMatching(/^http/) }]);
  });
});

describe('Darkroom client against a live server', () => {
  it('create → wait (with progress) → download gives the stored PNG and its thumbnail', async () => {
    const job = await client.create({ prompt: 'a client-made picture', width: 256, height: 192, numImages: 2 });
    expect(job.status).toBe('queued');
    const progress: JobProgress[] = [];
    const done = await client.wait(job.id, { onProgress: (update) => progress.push(update) });
    expect(done.status).toBe('succeeded');
    expect(done.images).toHaveLength(2);
    expect(progress.at(-1)).toMatchObject({ id: job.id, status: 'succeeded' });
    expect(progress.some((update) => update.status === 'running' && typeof update.progress === 'number')).toBe(true);

    const original = await client.download(job.id, 1);
    expect(original.contentType).toBe('image/png');
    expect([...original.bytes.subarray(0, 8)]).toEqual(PNG);
    expect(original.bytes.byteLength).toBe(done.images[1]?.bytes);
    const thumbnail = await client.download(job.id, 0, { type: 'thumbnail' });
    expect(thumbnail.contentType).toBe('image/webp');
    expect(new TextDecoder().decode(thumbnail.bytes.subarray(8, 12))).toBe('WEBP');
  });

  it('events() yields the job in order and ends with its terminal status; lastEventId resumes', async () => {
    const job = await client.create({ prompt: 'events' });
    const events: JobStreamEvent[] = [];
    for await (const event of client.events(job.id)) events.push(event);
    expect(events[0]).toMatchObject({ type: 'status', status: 'queued' });
    expect(events.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
    const image = events.find((event) => event.type === 'image');
    expect(image?.type === 'image' && image.image.url).toMatch(/^http/);
    const resumed: JobStreamEvent[] = [];
    for await (const event of client.events(job.id, { lastEventId: events[1]?.id })) resumed.push(event);
    expect(resumed.map((event) => event.id)).toEqual(events.slice(2).map((event) => event.id));
  });

  it('wait() honours its abort signal and its timeout', async () => {
    const job = await slowClient.create({ prompt: 'never finishes in time' });
    const controller = new AbortController();
    const aborted = await rejection(slowClient.wait(job.id, { signal: controller.signal, onProgress: () => controller.abort() }));
    expect(aborted).toBeInstanceOf(DOMException);
    expect((aborted as DOMException).name).toBe('AbortError');
    const timedOut = await rejection(slowClient.wait(job.id, { timeoutMs: 200 }));
    expect((timedOut as DOMException).name).toBe('TimeoutError');
    const already = new AbortController();
    already.abort(new Error('stop'));
    expect(await rejection(slowClient.wait(job.id, { signal: already.signal }))).toEqual(new Error('stop'));
  });

  it('list pages newest first; cancel cancels, and cancelling again is a 409 problem', async () => {
    const first = await slowClient.create({ prompt: 'list one' });
    const second = await slowClient.create({ prompt: 'list two' });
    const page = await slowClient.list({ limit: 1 });
    expect(page.items.map((job) => job.id)).toEqual([second.id]);
    expect(page.nextCursor).not.toBeNull();
    const next = await slowClient.list({ limit: 1, cursor: page.nextCursor ?? undefined });
    expect(next.items.map((job) => job.id)).toEqual([first.id]);

    const cancelled = await slowClient.cancel(first.id);
    expect(cancelled.status).toBe('cancelled');
    expect((await slowClient.list({ status: 'cancelled' })).items.map((job) => job.id)).toContain(first.id);
    expect(await slowClient.wait(first.id)).toMatchObject({ status: 'cancelled' });
    const again = await rejection(slowClient.cancel(first.id));
    expect(again).toBeInstanceOf(DarkroomApiError);
    expect(again).toMatchObject({ status: 409, problem: { status: 409, code: 'conflict' } });
  });

  it('maps error answers to DarkroomApiError with the problem details', async () => {
    const invalid = await rejection(client.create({ prompt: '', width: 100 } as CreateJobInput));
    expect(invalid).toBeInstanceOf(DarkroomApiError);
    const problem = (invalid as DarkroomApiError).problem;
    expect(problem).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(problem.errors?.map((error) => error.field).sort()).toEqual(['prompt', 'width']);
    expect(await rejection(client.get(UNKNOWN_ID))).toMatchObject({ status: 404, problem: { code: 'not_found' } });
    expect(await rejection(client.wait(UNKNOWN_ID))).toMatchObject({ status: 404 });
    expect(await rejection(client.download(UNKNOWN_ID, 0))).toMatchObject({ status: 404 });
    const unfinished = await slowClient.create({ prompt: 'no images yet' });
    expect(await rejection(slowClient.download(unfinished.id, 0))).toMatchObject({ status: 409, problem: { code: 'job_unfinished' } });
    // Not darkroom at all: still a DarkroomApiError, described from what came back.
    const elsewhere = new Darkroom({ baseUrl: `${dr.url}/nowhere` });
    expect(await rejection(elsewhere.get(UNKNOWN_ID))).toMatchObject({ status: 404, problem: { code: 'route_not_found' } });
  });

  it('batch creates every job; an idempotency key makes create and batch safe to repeat', async () => {
    const batch = await client.batch({ prompts: ['b1', 'b2', 'b3'], width: 256, height: 256 }, { idempotencyKey: 'client-batch' });
    expect(batch.jobs).toHaveLength(3);
    expect(await client.batch({ prompts: ['b1', 'b2', 'b3'], width: 256, height: 256 }, { idempotencyKey: 'client-batch' })).toEqual(batch);
    const created = await client.create({ prompt: 'once' }, { idempotencyKey: 'client-create' });
    expect((await client.create({ prompt: 'once' }, { idempotencyKey: 'client-create' })).id).toBe(created.id);
    expect(await rejection(client.create({ prompt: 'twice' }, { idempotencyKey: 'client-create' }))).toMatchObject({
      status: 422,
      problem: { code: 'idempotency_key_reused' },
    });
  });

  it('resumes a dropped event stream where it stopped, without losing or repeating an event', async () => {
    let dropped = 0;
    // Cuts the first event stream right after its first event, as a flaky proxy would.
    const flaky: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!response.headers.get('content-type')?.startsWith('text/event-stream') || dropped > 0 || !response.body) return response;
      dropped += 1;
      const reader = response.body.getReader();
      let seen = '';
      const cut = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read();
          if (done) return controller.close();
          controller.enqueue(value);
          seen += new TextDecoder().decode(value);
          if (/data: .*\n\n/.test(seen)) {
            await reader.cancel();
            controller.close();
          }
        },
      });
      return new Response(cut, { status: response.status, headers: response.headers });
    };
    const viaProxy = new Darkroom({ baseUrl: dr.url, fetch: flaky });
    const job = await viaProxy.create({ prompt: 'through a flaky proxy' });
    const events: JobStreamEvent[] = [];
    for await (const event of viaProxy.events(job.id)) events.push(event);
    expect(dropped).toBe(1);
    const stored = (await dr.api('GET', `/api/v1/jobs/${job.id}/events`)).body.items as { id: number }[];
    expect(events.map((event) => event.id)).toEqual(stored.map((event) => event.id));
  });

  it('wait() falls back to long polling when no event stream gets through', async () => {
    const streamRequests: string[] = [];
    // A proxy that answers event-stream requests with a JSON error page.
    const noStreams: typeof fetch = async (input, init) => {
      if (new Headers(init?.headers).get('accept') === 'text/event-stream') {
        streamRequests.push(String(input));
        return new Response('{"message":"streaming is not allowed here"}', { status: 200, headers: { 'content-type': 'application/json' } });
      }
      return fetch(input, init);
    };
    const polling = new Darkroom({ baseUrl: dr.url, fetch: noStreams });
    const job = await polling.create({ prompt: 'polled' });
    const progress: JobProgress[] = [];
    const done = await polling.wait(job.id, { onProgress: (update) => progress.push(update) });
    expect(streamRequests).toHaveLength(1);
    expect(done.status).toBe('succeeded');
    expect(progress.at(-1)?.status).toBe('succeeded');
  });
});
