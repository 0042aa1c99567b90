import sharp from 'sharp';
import { CallWrapper, ComfyApi, PromptBuilder } from '@saintno/comfyui-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * The ComfyUI dialect driven by a ComfyUI client library from npm (@saintno/comfyui-sdk), unchanged:
 * its CallWrapper (WebSocket events), its plain calls (queue a prompt, poll /history), its upload.
 */

let dr: TestDarkroom;
let api: ComfyApi;

beforeAll(async () => {
  dr = await startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '2500' });
  api = new ComfyApi(dr.url, 'sdk-client');
  api.init();
  await api.waitForReady();
});
afterAll(async () => {
  api?.destroy();
  await dr?.close({ removeData: true });
});

/** A graph as ComfyUI exports it in API format: each node with a title. */
const titled = (graph: Record<string, { class_type: string; inputs: Record<string, unknown> }>) =>
  Object.fromEntries(Object.entries(graph).map(([id, node]) => [id, { ...node, _meta: { title: node.class_type } }]));

const textToImage = (prompt: string, seed: number, width = 256, height = 192, batch = 1) => titled({
  '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
  '5': { class_type: 'EmptyLatentImage', inputs: { width, height, batch_size: batch } },
  '6': { class_type: 'CLIPTextEncode', inputs: { text: prompt, clip: ['4', 1] } },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
  '3': { class_type: 'KSampler', inputs: { seed, steps: 20, cfg: 7, sampler_name: 'dpmpp_2m', scheduler: 'karras', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
});

const imageToImage = (prompt: string, image: string, denoise: number) => titled({
  '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
  '6': { class_type: 'CLIPTextEncode', inputs: { text: prompt, clip: ['4', 1] } },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
  '10': { class_type: 'LoadImage', inputs: { image } },
  '11': { class_type: 'VAEEncode', inputs: { pixels: ['10', 0], vae: ['4', 2] } },
  '3': { class_type: 'KSampler', inputs: { seed: 11, steps: 20, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['11', 0] } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'i2i', images: ['8', 0] } },
});

const bytesOf = async (blob: Blob) => Buffer.from(await blob.arrayBuffer());

describe('comfyui dialect with @saintno/comfyui-sdk', () => {
  it('runs a text-to-image workflow through CallWrapper, with progress, and downloads the images', async () => {
    const builder = new PromptBuilder(textToImage('a harbour at dawn', 0), ['positive', 'seed', 'batch'], ['images'])
      .setInputNode('positive', '6.inputs.text')
      .setInputNode('seed', '3.inputs.seed')
      .setInputNode('batch', '5.inputs.batch_size')
      .setOutputNode('images', '9')
      .input('positive', 'a harbour at dawn')
      .input('seed', 4242)
      .input('batch', 2);
    const progress: number[] = [];
    let started = false;
    const output = await new Promise<{ images?: { images: { filename: string; subfolder: string; type: string }[] } } | false>((resolve) => {
      new CallWrapper(api, builder)
        .onStart(() => (started = true))
        .onProgress((info) => progress.push(info.value / info.max))
        .onFinished((data) => resolve(data as never))
        .onFailed((error) => {
          console.error(error);
          resolve(false);
        })
        .run();
    });
    expect(output).not.toBe(false);
    expect(started).toBe(true);
    expect(progress.length).toBeGreaterThan(0);
    const images = (output as { images: { images: { filename: string; subfolder: string; type: 'output' }[] } }).images.images;
    expect(images).toHaveLength(2);
    const first = await bytesOf(await api.getImage(images[0]!));
    expect(first.equals(await renderMockImage('a harbour at dawn', 4242, 256, 192))).toBe(true);
    const second = await sharp(await bytesOf(await api.getImage(images[1]!))).metadata();
    expect([second.width, second.height]).toEqual([256, 192]);
  });

  it('runs an image-to-image workflow on an uploaded picture, queued with appendPrompt and read back from /history', async () => {
    const init = await sharp({ create: { width: 200, height: 160, channels: 3, background: { r: 20, g: 160, b: 220 } } }).png().toBuffer();
    const uploaded = await api.uploadImage(init, 'init.png');
    expect(uploaded).not.toBe(false);
    const name = (uploaded as { info: { filename: string } }).info.filename;
    const queued = await api.appendPrompt(imageToImage('keep the sky', name, 0));
    expect(queued.prompt_id).toMatch(/^[0-9a-f-]{36}$/);
    let entry = await api.getHistory(queued.prompt_id);
    while (!entry?.status?.completed) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      entry = await api.getHistory(queued.prompt_id);
    }
    const image = entry.outputs['9']!.images![0]!;
    const bytes = await bytesOf(await api.getImage(image));
    const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    // The size of the picture (rounded down to a multiple of 8), the picture itself at denoise 0.
    expect([info.width, info.height]).toEqual([200, 160]);
    expect([data[0], data[1], data[2]]).toEqual([20, 160, 220]);
  });

  it('keeps the graph with the job, unchanged, and describes it in darkroom’s terms', async () => {
    const graph = textToImage('kept as given', 77, 320, 256);
    const { body } = await dr.api('POST', '/prompt', { prompt: graph, client_id: 'other' });
    let job;
    do {
      await new Promise((resolve) => setTimeout(resolve, 20));
      job = (await dr.api('GET', '/api/v1/jobs?limit=1')).body.items[0];
    } while (job.status !== 'succeeded');
    expect(body.node_errors).toEqual({});
    expect(job.request).toMatchObject({ prompt: 'kept as given', negativePrompt: 'blurry', seed: 77, width: 320, height: 256, steps: 20, cfgScale: 7, scheduler: 'dpmpp_2m karras', model: 'sd_xl_base_1.0.safetensors' });
    expect((await dr.darkroom.repo.get(job.id))?.request.workflow).toEqual(graph);
  });
});

describe('comfyui dialect: refusals as ComfyUI words them', () => {
  it('answers a graph with an unknown node, a missing input, no outputs or no prompt with 400 and node_errors', async () => {
    const unknown = await dr.api('POST', '/prompt', { prompt: { ...textToImage('x', 1), '12': { class_type: 'UltimateSDUpscale', inputs: {} } } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ type: 'missing_node_type', details: "Node ID '#12'" });

    const broken = textToImage('x', 1);
    delete broken['3']!.inputs.steps;
    broken['3']!.inputs.sampler_name = 'warp_drive';
    const missing = await dr.api('POST', '/prompt', { prompt: broken });
    expect(missing.status).toBe(400);
    expect(missing.body.error.type).toBe('prompt_outputs_failed_validation');
    expect(missing.body.node_errors['3'].class_type).toBe('KSampler');
    expect(missing.body.node_errors['3'].errors.map((error: { type: string }) => error.type)).toEqual(expect.arrayContaining(['required_input_missing', 'value_not_valid']));
    expect(missing.body.node_errors['3'].dependent_outputs).toEqual(['9']);

    const noOutputs: Record<string, unknown> = textToImage('x', 1);
    delete noOutputs['9'];
    expect((await dr.api('POST', '/prompt', { prompt: noOutputs })).body.error.type).toBe('prompt_no_outputs');
    expect((await dr.api('POST', '/prompt', {})).body.error.type).toBe('no_prompt');
    expect((await dr.api('POST', '/prompt', { prompt: 'not a graph' })).status).toBe(400);
    expect((await dr.api('POST', '/prompt', '{"prompt":')).status).toBe(400);
  });

  it('refuses a LoadImage of a file it was never given', async () => {
    const { status, body } = await dr.api('POST', '/prompt', { prompt: imageToImage('x', 'example.png', 0.5) });
    expect(status).toBe(400);
    expect(body.node_errors['10'].errors[0].message).toBe('Invalid image file: example.png');
  });

  it('answers a repeated prompt_id with the first submission', async () => {
    const first = await dr.api('POST', '/api/prompt', { prompt: textToImage('once', 3), prompt_id: 'my-own-id-1' });
    const again = await dr.api('POST', '/api/prompt', { prompt: textToImage('once', 3), prompt_id: 'my-own-id-1' });
    expect(first.body.prompt_id).toBe('my-own-id-1');
    expect(again.body).toEqual(first.body);
  });
});

describe('comfyui dialect: queue, interrupt, history, object_info', () => {
  it('shows pending prompts in /queue and takes them out with POST /queue', async () => {
    const idle = await startDarkroom({ AUTH: 'off', WORKER_CONCURRENCY: '0' });
    try {
      const first = (await idle.api('POST', '/prompt', { prompt: textToImage('first', 1) })).body.prompt_id;
      const second = (await idle.api('POST', '/prompt', { prompt: textToImage('second', 2) })).body.prompt_id;
      const queue = (await idle.api('GET', '/queue')).body;
      expect(queue.queue_running).toEqual([]);
      expect(queue.queue_pending.map((item: unknown[]) => item[1])).toEqual([first, second]);
      expect(queue.queue_pending[0][2]).toEqual(textToImage('first', 1));
      expect((await idle.api('GET', '/prompt')).body).toEqual({ exec_info: { queue_remaining: 2 } });

      await idle.api('POST', '/queue', { delete: [first] });
      expect((await idle.api('GET', '/queue')).body.queue_pending.map((item: unknown[]) => item[1])).toEqual([second]);
      await idle.api('POST', '/api/queue', { clear: true });
      expect((await idle.api('GET', '/queue')).body.queue_pending).toEqual([]);
      const history = (await idle.api('GET', '/history')).body;
      expect(Object.keys(history).sort()).toEqual([first, second].sort());
      expect(history[first].status.messages.at(-1)[0]).toBe('execution_interrupted');
    } finally {
      await idle.close({ removeData: true });
    }
  });

  it('interrupts the running prompt named by prompt_id', async () => {
    const slow = await startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '3000' });
    try {
      const running = (await slow.api('POST', '/prompt', { prompt: textToImage('first', 1) })).body.prompt_id;
      while ((await slow.api('GET', '/queue')).body.queue_running.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await slow.api('POST', '/interrupt', { prompt_id: 'someone-else' })).status).toBe(200);
      expect((await slow.api('GET', '/queue')).body.queue_running).toHaveLength(1);
      expect((await slow.api('POST', '/interrupt', { prompt_id: running })).status).toBe(200);
      const history = (await slow.api('GET', `/history/${running}`)).body[running];
      expect(history.status).toMatchObject({ status_str: 'error', completed: false });
      expect((await slow.api('GET', '/history/unknown-id')).body).toEqual({});
    } finally {
      await slow.close({ removeData: true });
    }
  });

  it('describes the nodes it reads in /object_info, and answers /system_stats and /features', async () => {
    const info = (await dr.api('GET', '/object_info')).body;
    expect(info.KSampler.input.required.sampler_name[0]).toContain('dpmpp_2m');
    expect(info.SaveImage.output_node).toBe(true);
    expect((await dr.api('GET', '/api/object_info/KSampler')).body).toHaveProperty('KSampler');
    expect((await dr.api('GET', '/object_info/NotANode')).body).toEqual({});
    expect((await dr.api('GET', '/system_stats')).body.system.comfyui_version).toBe('darkroom');
    expect((await dr.api('GET', '/features')).body).toHaveProperty('max_upload_size');
    expect((await dr.api('GET', '/view?filename=nothing.png&type=output')).status).toBe(404);
  });
});
