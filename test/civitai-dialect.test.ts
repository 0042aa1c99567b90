import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sdk from 'civitai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeJobToken } from '../src/protocols/civitai/orchestration.ts';
import { startDarkroom, type ApiResponse, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * The Civitai dialect, driven by Civitai's own JavaScript SDK with nothing changed but its base URL,
 * and by fetch for every kind of bad input (AUTH=off: the SDK's token is not checked, as in a stand-in). Two darkrooms: `dr` runs a quick mock; `idle` has no
 * worker, so its jobs stay queued for as long as a test needs.
 */

const { Civitai, OpenAPI } = sdk;
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`./fixtures/civitai/${name}`, import.meta.url), 'utf8'));
const SDXL = 'urn:air:sdxl:checkpoint:civitai:101055@128078';
const valid = { $type: 'textToImage', model: SDXL, params: { prompt: 'a lighthouse at dusk', width: 512, height: 512 } };

let dr: TestDarkroom;
let idle: TestDarkroom;

beforeAll(async () => {
  [dr, idle] = await Promise.all([startDarkroom({ MOCK_LATENCY_MS: '150', AUTH: 'off' }), startDarkroom({ WORKER_CONCURRENCY: '0', AUTH: 'off' })]);
});
afterAll(async () => {
  await Promise.all([dr?.close({ removeData: true }), idle?.close({ removeData: true })]);
});

/** Asserts an ASP.NET-style problem with the request id as traceId; returns its `errors`. */
function expectProblem(answer: ApiResponse, status: number): Record<string, string[]> {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ type: expect.stringMatching(/^https:\/\/tools\.ietf\.org\//), title: expect.any(String), status });
  expect(answer.body.traceId).toBe(answer.headers.get('x-request-id'));
  return answer.body.errors ?? {};
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the official civitai SDK against darkroom', () => {
  type Sdk = InstanceType<typeof Civitai>;
  let civitai: Sdk;

  beforeAll(() => {
    civitai = new Civitai({ auth: 'any-token' });
    // The SDK's constructor pins the production URL into its exported OpenAPI config; that is the one knob.
    OpenAPI.BASE = dr.url;
    // The SDK logs every request it makes.
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterAll(() => vi.restoreAllMocks());

  it('creates a textToImage job, waits for it, reads and downloads the result', async () => {
    const run = randomUUID();
    const created = await civitai.image.fromText({
      model: SDXL,
      params: { prompt: 'a red bicycle against a wall', width: 512, height: 384, steps: 20, cfgScale: 7, seed: 4242 },
      properties: { run },
    });
    expect(decodeJobToken(created.token)).toEqual([created.jobs[0].jobId]);
    expect(created.jobs[0]).toMatchObject({ cost: expect.any(Number), scheduled: true, result: [{ available: false, seed: 4242 }] });

    let job: { jobId: string; result: { available: boolean; blobUrl?: string; seed?: number }[]; scheduled: boolean } | undefined;
    for (let tries = 0; tries < 200; tries += 1) {
      const byToken = await civitai.jobs.getByToken(created.token);
      job = byToken.jobs?.[0] as typeof job;
      if (!job?.scheduled) break;
      await sleep(25);
    }
    expect(job?.result[0]).toMatchObject({ available: true, seed: 4242, blobUrl: expect.stringMatching(/^http/) });

    const byId = await civitai.jobs.getById(created.jobs[0].jobId);
    const blobUrl = (byId.result as { blobUrl: string }[])[0]?.blobUrl ?? '';
    const image = await sharp(Buffer.from(await (await fetch(blobUrl)).arrayBuffer())).metadata();
    expect([image.format, image.width, image.height]).toEqual(['png', 512, 384]);

    const query = await civitai.jobs.getByQuery({ properties: { run } });
    expect(query.jobs?.map((found) => found.jobId)).toEqual([created.jobs[0].jobId]);
    expect(query.jobs?.[0]?.properties).toEqual({ run });
  });

  it('waits server-side when asked to', async () => {
    // The SDK then re-polls reading `result` as one object; real answers (and darkroom's) carry a
    // list, so it logs an error and keeps the finished answer it already has.
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const created = await civitai.image.fromText({ model: SDXL, params: { prompt: 'a kite', width: 256, height: 256 } }, true);
    expect(created.jobs[0]).toMatchObject({ scheduled: false, result: [{ available: true, blobUrl: expect.stringMatching(/^http/) }] });
    expect(logged).toHaveBeenCalled();
  });

  it('cancels a job', async () => {
    OpenAPI.BASE = idle.url;
    try {
      const created = await civitai.image.fromText({ model: SDXL, params: { prompt: 'never drawn', width: 512, height: 512 } });
      await expect(civitai.jobs.cancel(created.jobs[0].jobId)).resolves.toMatchObject({ status: 200 });
      const after = await idle.api('GET', `/v1/consumer/jobs/${created.jobs[0].jobId}`);
      expect(after.body).toMatchObject({ scheduled: false, lastEvent: { type: 'Deleted' } });
      expect((await idle.api('GET', `/api/v1/jobs/${created.jobs[0].jobId}`)).body.status).toBe('cancelled');
    } finally {
      OpenAPI.BASE = dr.url;
    }
  });

  it('reports coverage and refuses an unknown job as the service does', async () => {
    expect(await civitai.models.get([SDXL])).toEqual({ [SDXL]: { availability: 'Available', workers: 4 } });
    const missing = await civitai.jobs.getById(randomUUID()).catch((error: unknown) => error);
    expect(missing).toMatchObject({ status: 404, body: { status: 404, traceId: expect.any(String) } });
  });
});

describe('v1 consumer jobs over fetch', () => {
  it('waits on request: 200 once finished, 202 when the wait runs out', async () => {
    const done = await dr.api('POST', '/v1/consumer/jobs?wait=true&detailed=true', { ...valid, properties: { kind: 'waited' } });
    expect(done.status).toBe(200);
    const [job] = done.body.jobs;
    expect(job).toMatchObject({ scheduled: false, lastEvent: { type: 'Succeeded', jobHasCompleted: true }, properties: { kind: 'waited' } });
    expect(job.job).toMatchObject({ $type: 'textToImage', model: SDXL, params: valid.params, quantity: 1, id: job.jobId });

    const pending = await idle.api('POST', '/v1/consumer/jobs?wait=1', valid);
    expect(pending.status).toBe(202);
    expect(pending.body.jobs[0]).toMatchObject({ scheduled: true, lastEvent: { type: 'Initialized' }, serviceProviders: { darkroom: { support: 'Available' } } });
    expect(pending.body.jobs[0].job).toBeUndefined();
    const polled = await idle.api('GET', `/v1/consumer/jobs?token=${encodeURIComponent(pending.body.token)}&wait=1`);
    expect(polled.status).toBe(202);
    expect(polled.body.token).toBe(pending.body.token);
  });

  it('splits a quantity over 10 into several jobs under one token, and cancels them by token', async () => {
    const created = await idle.api('POST', '/v1/consumer/jobs', { ...valid, params: { ...valid.params, seed: 100 }, quantity: 25 });
    expect(created.status).toBe(200);
    expect(created.body.jobs.map((job: { result: unknown[] }) => job.result.length)).toEqual([10, 10, 5]);
    expect(created.body.jobs[1].result[0].seed).toBe(110);
    expect(decodeJobToken(created.body.token)).toEqual(created.body.jobs.map((job: { jobId: string }) => job.jobId));

    expect((await idle.api('DELETE', `/v1/consumer/jobs?token=${encodeURIComponent(created.body.token)}`)).status).toBe(200);
    const after = await idle.api('GET', `/v1/consumer/jobs?token=${encodeURIComponent(created.body.token)}`);
    expect(after.body.jobs.map((job: { lastEvent: { type: string } }) => job.lastEvent.type)).toEqual(['Deleted', 'Deleted', 'Deleted']);
    // Cancelling what is already cancelled is fine, as upstream.
    expect((await idle.api('DELETE', `/v1/consumer/jobs/${created.body.jobs[0].jobId}`)).status).toBe(200);
  });

  it('takes a batch of job requests, all or nothing', async () => {
    const bad = await idle.api('POST', '/v1/consumer/jobs', { jobs: [valid, { ...valid, params: { ...valid.params, height: 4096 } }] });
    expect(Object.keys(expectProblem(bad, 400))).toEqual(['jobs[1].params.height']);
    const good = await idle.api('POST', '/v1/consumer/jobs', { jobs: [{ ...valid, properties: { n: 1 } }, { ...valid, properties: { n: 2 } }] });
    expect(good.body.jobs.map((job: { properties: unknown }) => job.properties)).toEqual([{ n: 1 }, { n: 2 }]);
    const queried = await idle.api('POST', '/v1/consumer/jobs/query', { properties: { n: 2 } });
    expect(queried.body.jobs.map((job: { jobId: string }) => job.jobId)).toEqual([good.body.jobs[1].jobId]);
  });

  it('reads null as absent where the spec marks a field nullable, and ignores unknown fields', async () => {
    const created = await idle.api('POST', '/v1/consumer/jobs', {
      ...valid,
      baseModel: null,
      params: { ...valid.params, negativePrompt: null, seed: null, cfgScale: null, scheduler: 'euler_a' },
      additionalNetworks: null,
      properties: null,
      batchSize: 1,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const native = await idle.api('GET', `/api/v1/jobs/${created.body.jobs[0].jobId}`);
    expect(native.body.request).toMatchObject({ prompt: valid.params.prompt, scheduler: 'EulerA', numImages: 1 });
    expect(native.body.request.seed).toBeUndefined();
  });

  it('refuses malformed JSON, non-JSON and a missing body', async () => {
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs', '{"$type": "textToImage",'), 400).$).toHaveLength(1);
    expectProblem(await dr.api('POST', '/v1/consumer/jobs', 'prompt=cat', { 'content-type': 'text/plain' }), 415);
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs', ''), 400)).toHaveProperty(['']);
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs', '[1,2]'), 400)).toHaveProperty(['$']);
  });

  it('lists every bad field the way ASP.NET does', async () => {
    const errors = expectProblem(
      await dr.api('POST', '/v1/consumer/jobs', {
        $type: 'comfy',
        model: 'not an air',
        params: { prompt: 'x'.repeat(4001), width: '512', height: 32, steps: 0, cfgScale: 31, seed: -2, scheduler: 'Warp' },
        additionalNetworks: { 'bad key': { strength: 1 } },
        quantity: 101,
      }),
      400,
    );
    expect(Object.keys(errors).sort()).toEqual(
      ['params.cfgScale', 'params.height', 'params.prompt', 'params.seed', 'params.steps', 'params.width', 'quantity'].sort(),
    );
    // Cross-field checks run once the shape is right.
    const semantic = expectProblem(
      await dr.api('POST', '/v1/consumer/jobs', {
        ...valid,
        $type: 'comfy',
        model: 'not an air',
        params: { ...valid.params, scheduler: 'Warp' },
        additionalNetworks: { 'bad key': { strength: 1 } },
        controlNets: [{ preprocessor: 'Canny' }],
        expireAt: '2001-01-01T00:00:00Z',
      }),
      400,
    );
    expect(Object.keys(semantic).sort()).toEqual(['$type', "additionalNetworks['bad key']", 'controlNets', 'expireAt', 'model', 'params.scheduler']);
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs', { $type: 'textToImage' }), 400)).toEqual({ params: ['is required'] });
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs', { jobs: [] }), 400)).toHaveProperty(['jobs']);
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs?wait=maybe', valid), 400)).toHaveProperty(['wait']);
  });

  it('refuses input images, which Civitai’s textToImage jobs do not take, naming each field', async () => {
    const png = (await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer()).toString('base64');
    const errors = expectProblem(
      await dr.api('POST', '/v1/consumer/jobs', {
        ...valid,
        sourceImage: `data:image/png;base64,${png}`,
        params: { ...valid.params, image: png, strength: 0.5 },
        controlNets: [{ preprocessor: 'canny', imageUrl: 'https://example.com/edges.png', weight: 1 }],
      }),
      400,
    );
    expect(Object.keys(errors).sort()).toEqual(['controlNets', 'params.image', 'params.strength', 'sourceImage']);
    expect(errors.sourceImage?.[0]).toMatch(/take no input image/);
    expect(errors.controlNets?.[0]).toMatch(/does not run ControlNets/);
  });

  it('answers unknown ids and garbage tokens with problems', async () => {
    expectProblem(await dr.api('GET', `/v1/consumer/jobs/${randomUUID()}`), 404);
    expectProblem(await dr.api('GET', '/v1/consumer/jobs/not-a-job'), 404);
    expectProblem(await dr.api('DELETE', `/v1/consumer/jobs/${randomUUID()}`), 404);
    expect(expectProblem(await dr.api('GET', '/v1/consumer/jobs'), 400)).toHaveProperty(['token']);
    expect(expectProblem(await dr.api('GET', '/v1/consumer/jobs?token=garbage!!'), 400)).toHaveProperty(['token']);
    expect(expectProblem(await dr.api('DELETE', '/v1/consumer/jobs?token=W10='), 400)).toHaveProperty(['token']);
    const unknown = Buffer.from(JSON.stringify([{ Jobs: [randomUUID()] }])).toString('base64');
    expectProblem(await dr.api('GET', `/v1/consumer/jobs?token=${encodeURIComponent(unknown)}`), 404);
    expectProblem(await dr.api('GET', `/v1/consumer/jobs/${randomUUID()}?detailed=perhaps`), 400);
  });

  it('refuses bad job queries and coverage requests', async () => {
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs/query', { properties: 'x' }), 400)).toHaveProperty(['properties']);
    expect(expectProblem(await dr.api('POST', '/v1/consumer/jobs/query', { cursor: 'garbage' }), 400)).toHaveProperty(['cursor']);
    expectProblem(await dr.api('POST', '/v1/consumer/jobs/query', '{"cursor":'), 400);
    expect((await dr.api('POST', '/v1/consumer/jobs/query', {})).body).toMatchObject({ jobs: expect.any(Array) });
    expect(expectProblem(await dr.api('GET', '/v1/consumer/coverage'), 400)).toHaveProperty(['model']);
    expect(expectProblem(await dr.api('GET', `/v1/consumer/coverage?model=${SDXL}&model=nope`), 400)).toHaveProperty(['model[1]']);
    expect((await idle.api('GET', `/v1/consumer/coverage?model=${SDXL}`)).body).toEqual({ [SDXL]: { availability: 'Unavailable', workers: 0 } });
  });
});

describe('/v2/resources', () => {
  const encoded = (air: string) => `/v2/resources/${encodeURIComponent(air)}`;
  const raw = (air: string) => `/v2/resources/${air}`;

  it('creates, reads (raw, encoded, short AIR), replaces, patches and deletes', async () => {
    const resource = fixture('example-air3.json');
    const air = resource.air as string;
    const created = await dr.api('POST', '/v2/resources', resource);
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(encoded(air));
    expect(created.body).toEqual(resource);

    for (const path of [raw(air), encoded(air), raw(air.replace('urn:air:', '')), encoded(air.replace('urn:', ''))]) {
      const read = await dr.api('GET', path);
      expect(read.status, path).toBe(200);
      expect(read.body).toEqual(resource);
    }

    expectProblem(await dr.api('POST', '/v2/resources', resource), 409);
    expectProblem(await dr.api('POST', '/v2/resources', { ...resource, air: air.replace('urn:air:', 'air:') }), 409);

    // A replacement may leave out the AIR, which the path names; nothing of the old document stays.
    expect((await dr.api('PUT', encoded(air), { modelName: 'only a name', mine: { kept: true } })).body).toEqual({ air, modelName: 'only a name', mine: { kept: true } });
    expect(expectProblem(await dr.api('PUT', raw(air), { size: 1.5 }), 400)).toEqual({ size: ['must be integer'] });
    const replacement = { air, size: 1, hashes: { SHA256: 'AB' }, downloadUrls: ['https://example.com/model'], resourceName: 'Replaced' };
    expect((await dr.api('PUT', raw(air), replacement)).body).toEqual(replacement);
    const mismatch = await dr.api('PUT', raw(air), { ...replacement, air: 'urn:air:sdxl:checkpoint:civitai:1@2' });
    expect(expectProblem(mismatch, 400)).toHaveProperty(['air']);
    expectProblem(await dr.api('PUT', raw('urn:air:sdxl:checkpoint:civitai:9@9'), { ...replacement, air: 'urn:air:sdxl:checkpoint:civitai:9@9' }), 404);

    const patched = await dr.api('PATCH', encoded(air), { modelName: 'New name', size: 2 });
    expect(patched.body).toEqual({ ...replacement, modelName: 'New name', size: 2 });
    const mergePatch = await dr.api('PATCH', raw(air), JSON.stringify({ canGenerate: false }), { 'content-type': 'application/merge-patch+json' });
    expect(mergePatch.body.canGenerate).toBe(false);
    expect(expectProblem(await dr.api('PATCH', raw(air), { air: 'urn:air:sdxl:checkpoint:civitai:1@2' }), 400)).toHaveProperty(['air']);
    expect(expectProblem(await dr.api('PATCH', raw(air), { size: -1, hashes: null }), 400)).toHaveProperty(['size']);
    expect((await dr.api('PATCH', raw(air), { air })).status).toBe(200);
    expectProblem(await dr.api('PATCH', raw('urn:air:sdxl:checkpoint:civitai:9@9'), { size: 3 }), 404);

    expect((await dr.api('DELETE', encoded(air))).status).toBe(204);
    expectProblem(await dr.api('GET', raw(air)), 404);
    expectProblem(await dr.api('DELETE', raw(air)), 404);
  });

  it('takes AIRs whose id has slashes, raw or encoded', async () => {
    const air = 'urn:air:sdxl:checkpoint:huggingface:stabilityai/sdxl-turbo@main';
    const resource = { air, size: 10, hashes: {}, downloadUrls: [] };
    expect((await dr.api('POST', '/v2/resources', resource)).status).toBe(201);
    expect((await dr.api('GET', raw(air))).body).toEqual(resource);
    expect((await dr.api('GET', encoded(air))).body).toEqual(resource);
  });

  it('refuses bad input', async () => {
    const resource = fixture('example-air1.json');
    expectProblem(await dr.api('POST', '/v2/resources', JSON.stringify(resource), { 'content-type': 'text/plain' }), 415);
    expect(expectProblem(await dr.api('POST', '/v2/resources', '{"air":'), 400)).toHaveProperty(['$']);
    const notAnAir = "'no air here' is not an AIR: expected urn:air:{ecosystem}:{type}:{source}:{id}@{version}, e.g. urn:air:sdxl:checkpoint:civitai:101055@128078";
    expect(expectProblem(await dr.api('POST', '/v2/resources', { ...resource, air: 'no air here' }), 400)).toEqual({ air: [notAnAir] });
    const wrongTypes = expectProblem(await dr.api('POST', '/v2/resources', { air: resource.air, size: 'big', hashes: [], downloadUrls: 'x' }), 400);
    expect(Object.keys(wrongTypes).sort()).toEqual(['downloadUrls', 'hashes', 'size']);
    expect(expectProblem(await dr.api('POST', '/v2/resources', { air: 5 }), 400)).toEqual({ air: ['must be string'] });
    expect(expectProblem(await dr.api('POST', '/v2/resources', { modelName: 'no AIR' }), 400)).toEqual({ air: ['is required'] });
    expect(expectProblem(await dr.api('POST', '/v2/resources', [resource]), 400)).toHaveProperty(['$']);
    const badPath = await dr.api('GET', '/v2/resources/nope:');
    expect(expectProblem(badPath, 400)).toHaveProperty(['air']);
    expect(badPath.body.detail).toMatch(/^'nope:' is not an AIR: expected urn:air:\{ecosystem\}/);
    const badModel = expectProblem(await dr.api('POST', '/v1/consumer/jobs', { ...valid, model: 'sdxl' }), 400);
    expect(badModel.model?.[0]).toMatch(/^'sdxl' is not an AIR: expected urn:air:/);
    expect(JSON.stringify(badModel)).not.toContain('(?<');
    // Without a `:` a segment is no AIR: the path is not a resource's (RunPod's /v2/{endpointId}/… may own it).
    expect((await dr.api('GET', '/v2/resources/nope')).status).toBe(404);
    const unknown = expectProblem(await dr.api('GET', raw('urn:air:sd1:lora:civitai:1@1')), 404);
    expect(unknown).toEqual({});
    for (const query of ['limit=0', 'limit=101', 'page=0', 'page=abc', `q=${'x'.repeat(501)}`]) {
      expectProblem(await dr.api('GET', `/v2/resources?${query}`), 400);
    }
  });

  it('lists in pages, filtered by AIR prefix', async () => {
    const airs = ['urn:air:pagetest:lora:civitai:1@1', 'urn:air:pagetest:lora:civitai:2@1', 'urn:air:pagetest:checkpoint:civitai:3@1', 'urn:air:pagetest2:lora:civitai:4@1'];
    for (const air of airs) expect((await idle.api('POST', '/v2/resources', { air, size: 1, hashes: {}, downloadUrls: [] })).status).toBe(201);

    const first = await idle.api('GET', '/v2/resources?limit=2');
    expect(first.body).toMatchObject({ page: 1, limit: 2, total: 4 });
    expect(first.body.items.map((item: { air: string }) => item.air)).toEqual(['urn:air:pagetest2:lora:civitai:4@1', 'urn:air:pagetest:checkpoint:civitai:3@1']);
    const second = await idle.api('GET', '/v2/resources?limit=2&page=2');
    expect(second.body.items.map((item: { air: string }) => item.air)).toEqual(['urn:air:pagetest:lora:civitai:1@1', 'urn:air:pagetest:lora:civitai:2@1']);
    expect((await idle.api('GET', '/v2/resources?page=3&limit=2')).body).toEqual({ page: 3, limit: 2, total: 4, items: [] });
    expect((await idle.api('GET', '/v2/resources')).body.limit).toBe(20);

    for (const q of ['pagetest:lora', 'air:pagetest:lora', 'urn:air:pagetest:lora']) {
      const filtered = await idle.api('GET', `/v2/resources?q=${encodeURIComponent(q)}`);
      expect(filtered.body.total, q).toBe(2);
    }
    expect((await idle.api('GET', '/v2/resources?q=pagetest_')).body.total).toBe(0);
  });
});
