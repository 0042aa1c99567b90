import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { leftHalfWhiteMask, pixelOf, solidPng } from './helpers/pictures.ts';

/**
 * The A1111 dialect driven as the webui's API docs drive it: a JSON POST that holds until the
 * pictures are made and answers them in base64, with `info` as JSON text. `dr` runs a quick mock;
 * `slow` a mock slow enough to watch /progress and /interrupt.
 */

let dr: TestDarkroom;
let slow: TestDarkroom;

beforeAll(async () => {
  [dr, slow] = await Promise.all([startDarkroom({ AUTH: 'off' }), startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '1500' })]);
});
afterAll(async () => {
  await Promise.all([dr?.close({ removeData: true }), slow?.close({ removeData: true })]);
});

const decode = (base64: string) => Buffer.from(base64, 'base64');

describe('a1111 dialect: txt2img', () => {
  it('answers base64 images of the requested size, the request as parameters and info as JSON text', async () => {
    const body = { prompt: 'a red fox in the snow', negative_prompt: 'blurry', seed: 42, steps: 12, cfg_scale: 6, width: 640, height: 384, sampler_name: 'DPM++ 2M', scheduler: 'karras', batch_size: 2 };
    const { status, body: answer } = await dr.api('POST', '/sdapi/v1/txt2img', body);
    expect(status).toBe(200);
    expect(answer.images).toHaveLength(2);
    for (const image of answer.images as string[]) {
      const meta = await sharp(decode(image)).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 640, 384]);
    }
    expect(decode(answer.images[0]).equals(await renderMockImage('a red fox in the snow', 42, 640, 384))).toBe(true);
    expect(answer.parameters).toMatchObject(body);
    expect(typeof answer.info).toBe('string');
    const info = JSON.parse(answer.info);
    expect(info).toMatchObject({ prompt: 'a red fox in the snow', negative_prompt: 'blurry', seed: 42, all_seeds: [42, 43], width: 640, height: 384, steps: 12, cfg_scale: 6, sampler_name: 'DPM++ 2M', batch_size: 2 });
    expect(info.infotexts[0]).toContain('Steps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 42, Size: 640x384');
  });

  it('makes the job a darkroom job, visible in the native API with the scheduler translated', async () => {
    const { body } = await dr.api('POST', '/sdapi/v1/txt2img', { prompt: 'a lighthouse', seed: 7, sampler_name: 'Euler a', override_settings: { sd_model_checkpoint: 'dreamshaper_8.safetensors' } });
    const seed = JSON.parse(body.info).seed;
    expect(seed).toBe(7);
    const { body: list } = await dr.api('GET', '/api/v1/jobs?limit=1');
    expect(list.items[0]).toMatchObject({ status: 'succeeded', request: { prompt: 'a lighthouse', scheduler: 'Euler a', model: 'dreamshaper_8.safetensors', seed: 7 } });
  });

  it('chooses a seed when given -1 and reports it', async () => {
    const { body } = await dr.api('POST', '/sdapi/v1/txt2img', { prompt: 'waves', seed: -1, width: 256, height: 256 });
    const info = JSON.parse(body.info);
    expect(Number.isInteger(info.seed)).toBe(true);
    expect(info.seed).toBeGreaterThanOrEqual(0);
    expect(decode(body.images[0]).equals(await renderMockImage('waves', info.seed, 256, 256))).toBe(true);
  });

  it('rounds sides down to a multiple of 8, as the webui does', async () => {
    const { body } = await dr.api('POST', '/sdapi/v1/txt2img', { prompt: 'x', width: 300, height: 203 });
    const meta = await sharp(decode(body.images[0])).metadata();
    expect([meta.width, meta.height]).toEqual([296, 200]);
  });

  it('answers no images when send_images is false', async () => {
    const { status, body } = await dr.api('POST', '/sdapi/v1/txt2img', { prompt: 'x', width: 64, height: 64, send_images: false });
    expect(status).toBe(200);
    expect(body.images).toEqual([]);
  });
});

describe('a1111 dialect: refusals in the webui’s shapes', () => {
  it('answers a schema failure with FastAPI’s 422 detail list', async () => {
    const { status, body } = await dr.api('POST', '/sdapi/v1/txt2img', { prompt: 'x', steps: 'many', width: 99999 });
    expect(status).toBe(422);
    const locs = (body.detail as { loc: string[] }[]).map((item) => item.loc.join('.'));
    expect(locs).toEqual(expect.arrayContaining(['body.steps', 'body.width']));
    expect(body.detail[0]).toHaveProperty('msg');
    expect(body.detail[0]).toHaveProperty('type');
  });

  it('answers malformed JSON with 422', async () => {
    const { status, body } = await dr.api('POST', '/sdapi/v1/txt2img', '{"prompt":');
    expect(status).toBe(422);
    expect(body.detail[0].type).toBe('value_error.jsondecode');
  });

  it('refuses more images than a job makes', async () => {
    const { status, body } = await dr.api('POST', '/sdapi/v1/txt2img', { prompt: 'x', batch_size: 4, n_iter: 4 });
    expect(status).toBe(422);
    expect(body.detail[0].loc).toEqual(['body', 'n_iter']);
  });

  it('refuses an unknown scheduler', async () => {
    const { status } = await dr.api('POST', '/sdapi/v1/txt2img', { prompt: 'x', scheduler: 'sideways' });
    expect(status).toBe(422);
  });

  it('answers an img2img without init_images as the webui does (404 Init image not found)', async () => {
    const { status, body } = await dr.api('POST', '/sdapi/v1/img2img', { prompt: 'x' });
    expect(status).toBe(404);
    expect(body).toMatchObject({ error: 'HTTPException', detail: 'Init image not found' });
  });

  it('answers a wrong method with 405 and an unknown model with the webui’s error', async () => {
    const wrong = await dr.api('GET', '/sdapi/v1/txt2img');
    expect(wrong.status).toBe(405);
    expect(wrong.body).toEqual({ detail: 'Method Not Allowed' });
    const model = await dr.api('POST', '/sdapi/v1/options', { sd_model_checkpoint: 'nope.safetensors' });
    expect(model.status).toBe(500);
    expect(model.body.detail).toContain('nope.safetensors');
  });

  it('takes the darkroom key as the password of HTTP Basic auth (--api-auth)', async () => {
    const guarded = await startDarkroom({ AUTH: 'required', ADMIN_API_KEY: 'a1111-admin-key-0123456789abcdef' });
    try {
      const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
      expect((await guarded.api('GET', '/sdapi/v1/samplers', undefined, { authorization: '' })).status).toBe(401);
      const ok = await guarded.api('GET', '/sdapi/v1/samplers', undefined, basic('anyone', 'a1111-admin-key-0123456789abcdef'));
      expect(ok.status).toBe(200);
      const bad = await guarded.api('GET', '/sdapi/v1/samplers', undefined, basic('anyone', 'wrong'));
      expect(bad.status).toBe(401);
      expect(bad.body).toHaveProperty('detail');
    } finally {
      await guarded.close({ removeData: true });
    }
  });
});

describe('a1111 dialect: the other routes clients call', () => {
  it('lists samplers, schedulers, models and options', async () => {
    const samplers = (await dr.api('GET', '/sdapi/v1/samplers')).body as { name: string; aliases: string[] }[];
    expect(samplers.map((sampler) => sampler.name)).toEqual(expect.arrayContaining(['Euler a', 'DPM++ 2M']));
    const schedulers = (await dr.api('GET', '/sdapi/v1/schedulers')).body as { name: string; label: string }[];
    expect(schedulers).toContainEqual(expect.objectContaining({ name: 'karras', label: 'Karras' }));
    const models = (await dr.api('GET', '/sdapi/v1/sd-models')).body as { title: string; model_name: string }[];
    expect(models[0]).toMatchObject({ title: 'default', model_name: 'default' });
    const options = (await dr.api('GET', '/sdapi/v1/options')).body;
    expect(options).toMatchObject({ sd_model_checkpoint: 'default', samples_format: 'png' });
    expect((await dr.api('POST', '/sdapi/v1/options', { sd_model_checkpoint: 'default' })).status).toBe(200);
    expect((await dr.api('GET', '/sdapi/v1/loras')).body).toEqual([]);
  });

  it('reports the running generation on /progress and /internal/progress, and /interrupt stops it', async () => {
    const idle = (await slow.api('GET', '/sdapi/v1/progress')).body;
    expect(idle).toMatchObject({ progress: 0, eta_relative: 0, state: { job_count: 0 } });
    const generation = slow.api('POST', '/sdapi/v1/txt2img', { prompt: 'slow', steps: 20, width: 64, height: 64, force_task_id: 'task(abc)' });
    let progress = (await slow.api('GET', '/sdapi/v1/progress?skip_current_image=true')).body;
    while (progress.state.job_count === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      progress = (await slow.api('GET', '/sdapi/v1/progress?skip_current_image=true')).body;
    }
    expect(progress.progress).toBeGreaterThan(0);
    expect(progress.state.sampling_steps).toBe(20);
    const task = (await slow.api('POST', '/internal/progress', { id_task: 'task(abc)' })).body;
    expect(task).toMatchObject({ active: true, queued: false, completed: false });
    expect((await slow.api('POST', '/internal/progress', { id_task: 'task(other)' })).body).toMatchObject({ active: false, queued: false, completed: false });

    expect((await slow.api('POST', '/sdapi/v1/interrupt')).body).toEqual({});
    const answer = await generation;
    expect(answer.status).toBe(200);
    expect(answer.body.images).toEqual([]);
    expect((await slow.api('POST', '/internal/progress', { id_task: 'task(abc)' })).body).toMatchObject({ active: false, completed: true });
  });
});

describe('a1111 dialect: img2img and inpainting', () => {

  it('starts from init_images: denoising_strength 0 gives the picture back, at the requested size', async () => {
    const init = (await solidPng(200, 30, 30)).toString('base64');
    const { status, body } = await dr.api('POST', '/sdapi/v1/img2img', { prompt: 'keep it', init_images: [init], denoising_strength: 0, width: 192, height: 128, seed: 5 });
    expect(status).toBe(200);
    const image = decode(body.images[0]);
    const meta = await sharp(image).metadata();
    expect([meta.width, meta.height]).toEqual([192, 128]);
    expect(await pixelOf(image, 100, 60)).toEqual([200, 30, 30]);
    expect(body.parameters.init_images).toBeNull();
    expect(JSON.parse(body.info)).toMatchObject({ denoising_strength: 0, seed: 5 });
  });

  it('takes a data URI too, and include_init_images answers it back', async () => {
    const init = `data:image/png;base64,${(await solidPng(10, 200, 10)).toString('base64')}`;
    const { body } = await dr.api('POST', '/sdapi/v1/img2img', { prompt: 'x', init_images: [init], denoising_strength: 0, width: 64, height: 64, include_init_images: true });
    expect(await pixelOf(decode(body.images[0]), 10, 10)).toEqual([10, 200, 10]);
    expect(body.parameters.init_images).toEqual([init]);
  });

  it('inpaints: the mask’s black keeps the init picture, its white is repainted; inpainting_mask_invert swaps them', async () => {
    const init = (await solidPng(0, 0, 255)).toString('base64');
    // Left half white (repaint), right half black (keep).
    const mask = (await leftHalfWhiteMask()).toString('base64');
    const request = { prompt: 'a painted left half', init_images: [init], mask, width: 128, height: 128, seed: 9, denoising_strength: 0.75 };
    const own = await renderMockImage('a painted left half', 9, 128, 128);

    const plain = decode((await dr.api('POST', '/sdapi/v1/img2img', request)).body.images[0]);
    expect(await pixelOf(plain, 100, 64)).toEqual([0, 0, 255]);
    expect(await pixelOf(plain, 20, 64)).toEqual(await pixelOf(own, 20, 64));

    const inverted = decode((await dr.api('POST', '/sdapi/v1/img2img', { ...request, inpainting_mask_invert: 1 })).body.images[0]);
    expect(await pixelOf(inverted, 20, 64)).toEqual([0, 0, 255]);
    expect(await pixelOf(inverted, 100, 64)).toEqual(await pixelOf(own, 100, 64));
  });

  it('refuses an init image that is not a picture with a 422 naming init_images', async () => {
    const { status, body } = await dr.api('POST', '/sdapi/v1/img2img', { prompt: 'x', init_images: [Buffer.from('not a picture at all').toString('base64')] });
    expect(status).toBe(422);
    expect(body.detail[0].loc).toEqual(['body', 'init_images', 0]);
    const mask = await dr.api('POST', '/sdapi/v1/img2img', { prompt: 'x', init_images: [(await solidPng(1, 2, 3)).toString('base64')], mask: '!!!' });
    expect(mask.status).toBe(422);
    expect(mask.body.detail[0].loc).toEqual(['body', 'mask']);
  });
});

describe('a1111 dialect: large pictures', () => {
  it('takes an img2img body larger than BODY_LIMIT_BYTES when the pictures are within the input limit', async () => {
    // Noise does not compress: a 700×700 PNG of it is about 1.5 MB, 2 MB as base64.
    const noise = randomBytes(700 * 700 * 3);
    const init = (await sharp(noise, { raw: { width: 700, height: 700, channels: 3 } }).png().toBuffer()).toString('base64');
    expect(init.length).toBeGreaterThan(1_048_576);
    const { status, body } = await dr.api('POST', '/sdapi/v1/img2img', { prompt: 'x', init_images: [init], width: 64, height: 64 });
    expect(status).toBe(200);
    expect(body.images).toHaveLength(1);
  });
});
