import sharp from 'sharp';
import { SYSTEM_CALLER } from '../src/core/caller.ts';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDarkroom } from './helpers/darkroom.ts';
import { providerContract } from './helpers/provider-contract.ts';
import type { TcpCutter } from './helpers/tcp-cutter.ts';
import { providerJobIdOf, startFleet, type TestFleet } from './helpers/fleet.ts';
import { leftHalfWhiteMask, pixelAt, solidPng } from './helpers/pictures.ts';

const isGeneration = (request: { method: string; path: string }) => request.method === 'POST' && /^\/sdapi\/v1\/(txt2img|img2img)/.test(request.path);

/** The upstream darkroom's A1111 jobs, newest first. */
const upstreamJobs = async (upstream: TestDarkroom) => (await upstream.darkroom.jobs.for(SYSTEM_CALLER).list({ dialect: 'a1111', limit: 100 })).items;

describe('a1111 provider', () =>
  providerContract({
    provider: 'a1111',
    env: (baseUrl) => ({ A1111_URLS: baseUrl }),
    isSubmit: isGeneration,
    isPoll: (request) => request.method === 'GET' && request.path.startsWith('/sdapi/v1/progress'),
    maxImages: 4,
    request: { width: 512, height: 512 },
    cancelsUpstream: true,
    inputs: { imageToImage: true, inpainting: true },
    // The provider job id starts with the task id the upstream job was created under.
    async findUpstreamJob(providerJobId, upstream) {
      const task = providerJobId.split(' ')[0];
      for (;;) {
        const job = (await upstreamJobs(upstream)).find((item) => (item.dialectData as { taskId?: string }).taskId === task);
        if (job) return job.id;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    upstreamJobs: async (upstream) => (await upstreamJobs(upstream)).length,
  }));

describe('a1111 provider: a fleet of two servers', () => {
  let fleet: TestFleet;
  let servers: TestDarkroom[];
  let cutters: TcpCutter[];
  let darkroom: TestDarkroom;

  beforeAll(async () => {
    fleet = await startFleet((urls) => ({ DEFAULT_PROVIDER: 'a1111', A1111_URLS: urls, A1111_DOWN_MS: '60000' }));
    ({ servers, cutters, darkroom } = fleet);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  const create = async (prompt: string) => (await darkroom.api('POST', '/api/v1/jobs', { prompt, width: 256, height: 256 })).body.id as string;

  it('shares the load: jobs sent together run on both servers', async () => {
    const before = await Promise.all(servers.map(async (server) => (await upstreamJobs(server)).length));
    const ids = await Promise.all(['one', 'two', 'three', 'four'].map(create));
    for (const id of ids) expect((await darkroom.waitForJob(id)).status).toBe('succeeded');
    const made = await Promise.all(servers.map(async (server, index) => (await upstreamJobs(server)).length - (before[index] as number)));
    expect(made).toEqual([2, 2]);
  });

  it('loses no job when a server goes away mid-run: it runs again on the other, which then takes every job', async () => {
    const id = await create('a server falls over');
    const providerJobId = await providerJobIdOf(darkroom, id);
    const url = providerJobId.split(' ')[2] as string;
    const down = cutters.findIndex((cutter) => url.endsWith(`:${cutter.port}`));
    const outage = (cutters[down] as TcpCutter).outage(5000);
    const job = await darkroom.waitForJob(id);
    expect(job.status).toBe('succeeded');
    expect(job.attempts).toBe(2);
    expect((job.providerJobId as string).split(' ')[2]).not.toBe(url);
    // Left out while down: the next jobs go to the server that is up, without a failed attempt.
    const next = await Promise.all(['after one', 'after two'].map(create));
    for (const each of next) expect(await darkroom.waitForJob(each)).toMatchObject({ status: 'succeeded', attempts: 1 });
    await outage;
  });

  it('sends image-to-image and inpainting jobs to img2img with their pictures, and stores what comes back', async () => {
    const init = (await solidPng(250, 120, 0)).toString('base64');
    const mask = (await leftHalfWhiteMask()).toString('base64');
    const run = async (images: { role: string; data: string }[], strength: number) => {
      const created = await darkroom.api('POST', '/api/v1/jobs', { prompt: 'over the init', width: 128, height: 128, seed: 3, images, strength });
      expect(created.status).toBe(202);
      return darkroom.waitForJob(created.body.id);
    };

    const kept = await run([{ role: 'init', data: init }], 0);
    expect(kept.status).toBe('succeeded');
    expect(await pixelAt((kept.images as { url: string }[])[0]!.url, 64, 64)).toEqual([250, 120, 0]);

    const inpainted = await run([{ role: 'init', data: init }, { role: 'mask', data: mask }], 0.75);
    expect(inpainted.status).toBe('succeeded');
    const own = await renderMockImage('over the init', 3, 128, 128);
    const { data: ownPixels } = await sharp(own).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const url = (inpainted.images as { url: string }[])[0]!.url;
    expect(await pixelAt(url, 100, 64)).toEqual([250, 120, 0]);
    const at = (64 * 128 + 20) * 3;
    expect(await pixelAt(url, 20, 64)).toEqual([ownPixels[at], ownPixels[at + 1], ownPixels[at + 2]]);

    // The upstream got an img2img request carrying both pictures.
    const upstream = (await Promise.all(servers.map(upstreamJobs))).flat().find((job) => job.request.inputs?.length === 2);
    expect(upstream?.request.inputs?.map((input) => input.role)).toEqual(['init', 'mask']);
    expect(upstream?.request.strength).toBe(0.75);
  });

  it('reports each server in its check', async () => {
    const { body } = await darkroom.api('GET', '/api/v1/providers');
    const a1111 = (body.items ?? body).find((item: { name: string }) => item.name === 'a1111');
    expect(a1111.healthy).toBe(true);
    expect(a1111.detail).toMatch(/^2 of 2 A1111 servers answer/);
  });
});
