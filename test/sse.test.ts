import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { createTestDatabase, testDatabaseUrl } from './helpers/postgres.ts';
import { spawnDarkroom, type DarkroomProcess } from './helpers/processes.ts';
import { readSse, type SseFrame } from './helpers/sse.ts';

interface StreamEvent {
  id: number;
  jobId: string;
  type: string;
  status: string;
  stage: string | null;
  progress?: number | null;
  image?: { index: number; url: string | null; thumbnailUrl: string | null };
}

const UNKNOWN_ID = '0190a7a2-7b7e-7000-8000-000000000000';
const data = (frames: SseFrame[]) => frames.map((frame) => frame.data as StreamEvent);
const terminal = (event: StreamEvent | undefined) => event?.type === 'status' && ['succeeded', 'failed', 'cancelled', 'expired'].includes(event.status);

describe('GET /api/v1/jobs/{id}/events as server-sent events', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ MOCK_LATENCY_MS: '300', SSE_HEARTBEAT_MS: '600000' });
  });
  afterAll(() => dr.close({ removeData: true }));

  const history = async (id: string) => (await dr.api('GET', `/api/v1/jobs/${id}/events`)).body.items as { id: number; type: string; status: string }[];

  it('streams status, stage, progress and image events in order and ends after the terminal status', async () => {
    const { body: job } = await dr.api('POST', '/api/v1/jobs', { prompt: 'streamed', numImages: 2 });
    const read = await readSse(`${dr.url}/api/v1/jobs/${job.id}/events`);

    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(read.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(read.endedByServer).toBe(true);
    const events = data(read.frames);
    expect(events[0]).toMatchObject({ type: 'status', status: 'queued', jobId: job.id });
    expect(events.at(-1)).toMatchObject({ type: 'status', status: 'succeeded', error: null });
    expect(events.filter(terminal)).toHaveLength(1);
    expect(new Set(events.map((event) => event.type))).toEqual(new Set(['status', 'stage', 'progress', 'image']));
    // The SSE id and event fields agree with the data, and ids only grow.
    expect(read.frames.map((frame) => [Number(frame.id), frame.event])).toEqual(events.map((event) => [event.id, event.type]));
    expect(events.map((event) => event.id)).toEqual([...events.map((event) => event.id)].sort((a, b) => a - b));
    // Exactly the stored history, nothing more, nothing less.
    expect(events.map((event) => event.id)).toEqual((await history(job.id)).map((event) => event.id));

    const progress = events.filter((event) => event.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const event of progress) expect(event).toHaveProperty('queuePosition');
    const images = events.filter((event) => event.type === 'image');
    expect(images.map((event) => event.image?.index)).toEqual([0, 1]);
    const original = await fetch(images[0]?.image?.url as string);
    expect(original.status).toBe(200);
    expect(original.headers.get('content-type')).toBe('image/png');
    expect((await fetch(images[1]?.image?.thumbnailUrl as string)).status).toBe(200);
  });

  it('resumes after Last-Event-ID without losing or repeating an event', async () => {
    const { body: job } = await dr.api('POST', '/api/v1/jobs', { prompt: 'resumed' });
    const first = await readSse(`${dr.url}/api/v1/jobs/${job.id}/events`, { stop: (frames) => frames.length >= 2 });
    expect(first.endedByServer).toBe(false);
    const lastId = first.frames.at(-1)?.id as string;
    const rest = await readSse(`${dr.url}/api/v1/jobs/${job.id}/events`, { headers: { 'last-event-id': lastId } });
    expect(rest.endedByServer).toBe(true);
    const ids = [...data(first.frames), ...data(rest.frames)].map((event) => event.id);
    expect(ids).toEqual((await history(job.id)).map((event) => event.id));
    expect(data(rest.frames).at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
  });

  it('replays a finished job and ends; resuming after its last event ends at once', async () => {
    const { body: job } = await dr.api('POST', '/api/v1/jobs', { prompt: 'already done' });
    await dr.waitForJob(job.id);
    const stored = await history(job.id);
    const replay = await readSse(`${dr.url}/api/v1/jobs/${job.id}/events`);
    expect(replay.endedByServer).toBe(true);
    expect(data(replay.frames).map((event) => event.id)).toEqual(stored.map((event) => event.id));
    const after = await readSse(`${dr.url}/api/v1/jobs/${job.id}/events`, { headers: { 'last-event-id': String(stored.at(-1)?.id) } });
    expect(after.endedByServer).toBe(true);
    expect(after.frames).toEqual([]);
  });

  it('streams a cancellation as the terminal status', async () => {
    const slow = await startDarkroom({ MOCK_LATENCY_MS: '60000', SSE_HEARTBEAT_MS: '50' });
    try {
      const { body: job } = await slow.api('POST', '/api/v1/jobs', { prompt: 'cancel me' });
      const reading = readSse(`${slow.url}/api/v1/jobs/${job.id}/events`, {
        onOpen: () => void slow.api('POST', `/api/v1/jobs/${job.id}/cancel`),
      });
      const read = await reading;
      expect(read.endedByServer).toBe(true);
      expect(data(read.frames).at(-1)).toMatchObject({ type: 'status', status: 'cancelled' });
    } finally {
      await slow.close({ removeData: true });
    }
  });

  it('sends heartbeat comments while nothing happens, and closing the server ends open streams', async () => {
    const slow = await startDarkroom({ MOCK_LATENCY_MS: '60000', SSE_HEARTBEAT_MS: '20' });
    let closed: Promise<void> | undefined;
    try {
      const { body: job } = await slow.api('POST', '/api/v1/jobs', { prompt: 'quiet' });
      const read = await readSse(`${slow.url}/api/v1/jobs/${job.id}/events`, {
        // After two heartbeats, close the server under the open stream: the read must end by itself.
        stop: (_frames, comments) => {
          if (comments >= 2) closed ??= slow.close({ removeData: true });
          return false;
        },
      });
      expect(read.comments).toBeGreaterThanOrEqual(2);
      expect(read.endedByServer).toBe(true);
      expect(data(read.frames).at(-1)?.status).not.toBe('succeeded');
    } finally {
      await (closed ?? slow.close({ removeData: true }));
    }
  });

  it('keeps answering JSON history to clients that do not ask for a stream', async () => {
    const { body: job } = await dr.api('POST', '/api/v1/jobs', { prompt: 'json' });
    await dr.waitForJob(job.id);
    for (const accept of [undefined, 'application/json', '*/*']) {
      const response = await dr.api('GET', `/api/v1/jobs/${job.id}/events`, undefined, accept ? { accept } : {});
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(response.body.items[0].type).toBe('created');
    }
  });

  it('answers problems, not streams, for unknown jobs and bad Last-Event-ID', async () => {
    const unknown = await dr.api('GET', `/api/v1/jobs/${UNKNOWN_ID}/events`, undefined, { accept: 'text/event-stream' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(unknown.body.code).toBe('not_found');
    for (const bad of ['abc', '-1', '1.5', '1234567890123456']) {
      const response = await dr.api('GET', `/api/v1/jobs/${UNKNOWN_ID}/events`, undefined, { accept: 'text/event-stream', 'last-event-id': bad });
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([expect.objectContaining({ in: 'headers', field: 'last-event-id' })]);
    }
    const global = await dr.api('GET', '/api/v1/events', undefined, { accept: 'text/event-stream', 'last-event-id': 'x' });
    expect(global.status).toBe(400);
  });
});

describe('GET /api/v1/events (every job)', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ MOCK_LATENCY_MS: '200', SSE_HEARTBEAT_MS: '600000' });
  });
  afterAll(() => dr.close({ removeData: true }));

  const history = async (id: string) => ((await dr.api('GET', `/api/v1/jobs/${id}/events`)).body.items as { id: number }[]).map((event) => event.id);

  it("streams every job's events from the moment it connects, each job in order", async () => {
    const before = await dr.api('POST', '/api/v1/jobs', { prompt: 'before the stream' });
    await dr.waitForJob(before.body.id);
    const created: string[] = [];
    const read = await readSse(`${dr.url}/api/v1/events`, {
      onOpen: () => {
        for (const prompt of ['one', 'two']) {
          void dr.api('POST', '/api/v1/jobs', { prompt }).then((response) => created.push(response.body.id as string));
        }
      },
      stop: (frames) => data(frames).filter(terminal).length >= 2,
    });
    const events = data(read.frames);
    expect(created).toHaveLength(2);
    expect(events.some((event) => event.jobId === before.body.id)).toBe(false);
    for (const id of created) {
      expect(events.filter((event) => event.jobId === id).map((event) => event.id)).toEqual(await history(id));
    }
  });

  it('replays what happened after Last-Event-ID', async () => {
    const first = await dr.api('POST', '/api/v1/jobs', { prompt: 'missed one' });
    await dr.waitForJob(first.body.id);
    const second = await dr.api('POST', '/api/v1/jobs', { prompt: 'missed two' });
    await dr.waitForJob(second.body.id);
    const firstEvents = await history(first.body.id);
    const resumeAt = firstEvents[1] as number;
    const read = await readSse(`${dr.url}/api/v1/events`, {
      headers: { 'last-event-id': String(resumeAt) },
      stop: (frames) => data(frames).some((event) => event.jobId === second.body.id && terminal(event)),
    });
    const events = data(read.frames);
    expect(events.filter((event) => event.jobId === first.body.id).map((event) => event.id)).toEqual(firstEvents.slice(2));
    expect(events.filter((event) => event.jobId === second.body.id).map((event) => event.id)).toEqual(await history(second.body.id));
    expect(events.every((event) => event.id > resumeAt)).toBe(true);
  });
});

const redisUrl = process.env.TEST_REDIS_URL;

describe.skipIf(!testDatabaseUrl || !redisUrl)('event streams across processes: two api processes, a worker in a third', () => {
  const processes: DarkroomProcess[] = [];
  let dropDatabase: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const database = await createTestDatabase();
    dropDatabase = database.drop;
    const env = {
      DATABASE_URL: database.url,
      QUEUE: 'redis',
      REDIS_URL: redisUrl as string,
      QUEUE_NAME: `sse-${randomBytes(4).toString('hex')}`,
      DATA_DIR: makeDataDir(),
      // Both api processes sign links with the worker's key.
      SIGNING_SECRET: randomBytes(32).toString('hex'),
      MOCK_LATENCY_MS: '400',
      SSE_HEARTBEAT_MS: '600000',
    };
    processes.push(...(await Promise.all([spawnDarkroom('api', env), spawnDarkroom('api', env), spawnDarkroom('worker', env)])));
  }, 90_000);

  afterAll(async () => {
    for (const process of processes) await process.stop();
    await dropDatabase();
  });

  it('a job created on one api and run by the worker reaches a subscriber on each api, in order, ending with succeeded', async () => {
    const [one, two] = processes.map((process) => process.url as string);
    let opened = 0;
    let jobId: string | undefined;
    const createOnceBothListen = () => {
      opened += 1;
      if (opened < 2) return;
      void fetch(`${one}/api/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'across processes', numImages: 2 }) })
        .then((response) => response.json() as Promise<{ id: string }>)
        .then((job) => (jobId = job.id));
    };
    const done = (frames: SseFrame[]) => data(frames).some(terminal);
    const reads = await Promise.all(
      [one, two].map((url) => readSse(`${url}/api/v1/events`, { onOpen: createOnceBothListen, stop: done, timeoutMs: 30_000 })),
    );

    const stored = (await (await fetch(`${two}/api/v1/jobs/${jobId}/events`)).json()) as { items: { id: number }[] };
    expect(reads).toHaveLength(2);
    for (const read of reads) {
      const events = data(read.frames);
      expect(events.every((event) => event.jobId === jobId)).toBe(true);
      expect(events.map((event) => event.id)).toEqual(stored.items.map((event) => event.id));
      expect(events[0]).toMatchObject({ type: 'status', status: 'queued' });
      expect(events.filter((event) => event.type === 'image')).toHaveLength(2);
      expect(events.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
    }

    // A late subscriber on the other api gets the same history, then the end.
    const late = await readSse(`${two}/api/v1/jobs/${jobId}/events`);
    expect(late.endedByServer).toBe(true);
    expect(data(late.frames).map((event) => event.id)).toEqual(stored.items.map((event) => event.id));
  });
});
