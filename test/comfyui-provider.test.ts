import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CALLER } from '../src/core/caller.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { providerContract } from './helpers/provider-contract.ts';
import type { TcpCutter } from './helpers/tcp-cutter.ts';
import { providerJobIdOf, startFleet, type TestFleet } from './helpers/fleet.ts';
import { leftHalfWhiteMask, pixelAt, solidPng } from './helpers/pictures.ts';

/** The upstream darkroom's ComfyUI jobs, newest first. */
const upstreamJobs = async (upstream: TestDarkroom) => (await upstream.darkroom.jobs.for(SYSTEM_CALLER).list({ dialect: 'comfyui', limit: 100 })).items;

describe('comfyui provider', () =>
  providerContract({
    provider: 'comfyui',
    env: (baseUrl) => ({ COMFYUI_URLS: baseUrl }),
    isSubmit: (request) => request.method === 'POST' && request.path === '/prompt',
    isPoll: (request) => request.method === 'GET' && request.path.startsWith('/history/'),
    maxImages: 4,
    request: { width: 512, height: 512 },
    cancelsUpstream: true,
    inputs: { imageToImage: true, inpainting: true },
    // The prompt id is the first part of the provider job id; the upstream darkroom keeps it with its job.
    async findUpstreamJob(providerJobId, upstream) {
      const promptId = providerJobId.split(' ')[0] as string;
      for (;;) {
        const [job] = (await upstream.darkroom.jobs.for(SYSTEM_CALLER).list({ dialect: 'comfyui', dialectData: { promptId }, limit: 1 })).items;
        if (job) return job.id;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  }));

describe('comfyui provider: a fleet of two instances', () => {
  let fleet: TestFleet;
  let servers: TestDarkroom[];
  let cutters: TcpCutter[];
  let darkroom: TestDarkroom;

  beforeAll(async () => {
    fleet = await startFleet((urls) => ({ DEFAULT_PROVIDER: 'comfyui', COMFYUI_URLS: urls, COMFYUI_DOWN_MS: '60000' }));
    ({ servers, cutters, darkroom } = fleet);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  const create = async (body: Record<string, unknown>) => {
    const created = await darkroom.api('POST', '/api/v1/jobs', { width: 256, height: 256, ...body });
    expect(created.status).toBe(202);
    return created.body.id as string;
  };

  it('shares the load: jobs sent together go to the instance with the shorter queue', async () => {
    const before = await Promise.all(servers.map(async (server) => (await upstreamJobs(server)).length));
    const ids = [];
    for (const prompt of ['one', 'two', 'three', 'four']) {
      ids.push(await create({ prompt }));
      // Each submission sees the queues the previous ones made.
      await darkroom.waitForJob(ids.at(-1) as string, ['running', 'succeeded']);
      while (!(await darkroom.api('GET', `/api/v1/jobs/${ids.at(-1)}`)).body.providerJobId) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const id of ids) expect((await darkroom.waitForJob(id)).status).toBe('succeeded');
    const made = await Promise.all(servers.map(async (server, index) => (await upstreamJobs(server)).length - (before[index] as number)));
    expect(made).toEqual([2, 2]);
  });

  it('loses no job when an instance goes away mid-run', async () => {
    const id = await create({ prompt: 'an instance falls over' });
    const providerJobId = await providerJobIdOf(darkroom, id);
    const url = providerJobId.split(' ')[1] as string;
    const down = cutters.findIndex((cutter) => url.endsWith(`:${cutter.port}`));
    const outage = (cutters[down] as TcpCutter).outage(4000);
    const job = await darkroom.waitForJob(id, undefined, 30_000);
    expect(job.status).toBe('succeeded');
    expect((job.providerJobId as string).split(' ')[1]).not.toBe(url);
    await outage;
  });

  it('sends a workflow job’s graph on unchanged, and the mock runs one through the native API too', async () => {
    const graph = {
      '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'dreamshaper_8.safetensors' } },
      '5': { class_type: 'EmptyLatentImage', inputs: { width: 192, height: 128, batch_size: 1 } },
      '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lantern in fog', clip: ['4', 1] } },
      '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
      '3': { class_type: 'KSamplerAdvanced', inputs: { add_noise: 'enable', noise_seed: 99, steps: 12, cfg: 5.5, sampler_name: 'euler_ancestral', scheduler: 'simple', start_at_step: 0, end_at_step: 10000, return_with_leftover_noise: 'disable', model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
      '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
      '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'lantern', images: ['8', 0] } },
    };
    const job = await darkroom.waitForJob(await create({ prompt: 'a lantern in fog', workflow: graph, width: undefined, height: undefined }));
    expect(job.status).toBe('succeeded');
    expect(job.request).toMatchObject({ provider: 'comfyui', width: 192, height: 128, seed: 99, steps: 12, cfgScale: 5.5, scheduler: 'euler_ancestral simple', model: 'dreamshaper_8.safetensors' });
    const [upstream] = (await Promise.all(servers.map(async (server) => (await upstreamJobs(server)).filter((each) => each.request.prompt === 'a lantern in fog')))).flat();
    expect((await Promise.all(servers.map((server) => server.darkroom.repo.get(upstream!.id)))).find(Boolean)?.request.workflow).toEqual(graph);

    const mock = await startDarkroom({ AUTH: 'off' });
    try {
      const created = await mock.api('POST', '/api/v1/jobs', { prompt: 'a lantern in fog', workflow: graph });
      expect(created.status).toBe(202);
      const done = await mock.waitForJob(created.body.id);
      expect(done).toMatchObject({ status: 'succeeded', provider: 'mock', images: [{ width: 192, height: 128, seed: 99 }] });
      const broken = await mock.api('POST', '/api/v1/jobs', { prompt: 'x', workflow: { ...graph, '3': { class_type: 'KSampler', inputs: {} } } });
      expect(broken.status).toBe(400);
      expect(broken.body.errors[0]).toMatchObject({ field: 'workflow' });
      expect(broken.body.detail).toContain('node 3 (KSampler): Required input is missing');
    } finally {
      await mock.close({ removeData: true });
    }
  });

  it('runs image-to-image and inpainting jobs on its graphs, with the pictures uploaded', async () => {
    const init = (await solidPng(250, 120, 0)).toString('base64');
    const mask = (await leftHalfWhiteMask()).toString('base64');
    const kept = await darkroom.waitForJob(await create({ prompt: 'keep', width: 128, height: 128, images: [{ role: 'init', data: init }], strength: 0 }));
    expect(kept.status).toBe('succeeded');
    expect(await pixelAt((kept.images as { url: string }[])[0]!.url, 64, 64)).toEqual([250, 120, 0]);

    const inpainted = await darkroom.waitForJob(
      await create({ prompt: 'paint the left', width: 128, height: 128, seed: 3, images: [{ role: 'init', data: init }, { role: 'mask', data: mask }], strength: 0.75 }),
    );
    expect(inpainted.status).toBe('succeeded');
    expect(await pixelAt((inpainted.images as { url: string }[])[0]!.url, 100, 64)).toEqual([250, 120, 0]);
    const upstream = (await Promise.all(servers.map(upstreamJobs))).flat().find((job) => job.request.inputs?.length === 2);
    expect(upstream?.request.inputs?.map((input) => input.role)).toEqual(['init', 'mask']);
    const graph = (await Promise.all(servers.map((server) => server.darkroom.repo.get(upstream!.id)))).find(Boolean)?.request.workflow as Record<string, { class_type: string }>;
    expect(Object.values(graph).map((node) => node.class_type)).toEqual(expect.arrayContaining(['LoadImage', 'LoadImageMask', 'SetLatentNoiseMask', 'VAEEncode']));
  });
});

describe('comfyui provider: the operator’s own templates', () => {
  const template = {
    workflow: {
      ckpt: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'placeholder' } },
      latent: { class_type: 'EmptyLatentImage', inputs: { width: 0, height: 0, batch_size: 1 } },
      pos: { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['ckpt', 1] } },
      neg: { class_type: 'CLIPTextEncode', inputs: { text: 'watermark, text', clip: ['ckpt', 1] } },
      sample: {
        class_type: 'KSamplerAdvanced',
        inputs: { add_noise: 'enable', noise_seed: 0, steps: 30, cfg: 4, sampler_name: 'dpmpp_2m', scheduler: 'karras', start_at_step: 0, end_at_step: 10000, return_with_leftover_noise: 'disable', model: ['ckpt', 0], positive: ['pos', 0], negative: ['neg', 0], latent_image: ['latent', 0] },
      },
      decode: { class_type: 'VAEDecode', inputs: { samples: ['sample', 0], vae: ['ckpt', 2] } },
      save: { class_type: 'SaveImage', inputs: { filename_prefix: 'house-style', images: ['decode', 0] } },
    },
    map: { prompt: 'pos.inputs.text', seed: 'sample.inputs.noise_seed', width: 'latent.inputs.width', height: 'latent.inputs.height', batch: 'latent.inputs.batch_size', checkpoint: 'ckpt.inputs.ckpt_name' },
  };
  let dir: string;
  let upstream: TestDarkroom;
  let darkroom: TestDarkroom;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'comfyui-templates-'));
    writeFileSync(join(dir, 'txt2img.json'), JSON.stringify(template));
    upstream = await startDarkroom({ AUTH: 'off' });
    darkroom = await startDarkroom({ DEFAULT_PROVIDER: 'comfyui', COMFYUI_URLS: upstream.url, COMFYUI_TEMPLATES_DIR: dir, COMFYUI_CHECKPOINT: 'house.safetensors' });
  });
  afterAll(async () => {
    await darkroom?.close({ removeData: true });
    await upstream?.close({ removeData: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('fills the template where its map says, and keeps the rest of it', async () => {
    const created = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'a red barn', width: 320, height: 192, seed: 5, numImages: 2 });
    const job = await darkroom.waitForJob(created.body.id);
    expect(job.status).toBe('succeeded');
    expect((job.images as unknown[]).length).toBe(2);
    const [sent] = (await upstreamJobs(upstream)).filter((each) => each.request.prompt === 'a red barn');
    const graph = (await upstream.darkroom.repo.get(sent!.id))?.request.workflow as typeof template.workflow;
    expect(graph.pos.inputs.text).toBe('a red barn');
    expect(graph.sample.inputs).toMatchObject({ noise_seed: 5, steps: 30, cfg: 4, sampler_name: 'dpmpp_2m' });
    expect(graph.latent.inputs).toEqual({ width: 320, height: 192, batch_size: 2 });
    expect(graph.ckpt.inputs.ckpt_name).toBe('house.safetensors');
    expect(graph.neg.inputs.text).toBe('watermark, text');
  });

  it('refuses to start on a template that maps to a node it does not have', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'comfyui-templates-'));
    writeFileSync(join(bad, 'txt2img.json'), JSON.stringify({ ...template, map: { ...template.map, prompt: 'nowhere.inputs.text' } }));
    try {
      await expect(startDarkroom({ COMFYUI_URLS: upstream.url, COMFYUI_TEMPLATES_DIR: bad })).rejects.toThrow(/txt2img\.json maps prompt to "nowhere\.inputs\.text"/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
