import { describe, expect, it } from 'vitest';
import { a1111ErrorMessage, a1111Sampler, darkroomScheduler, infotext, seedsOfInfo } from '../src/protocols/a1111/index.ts';
import { comfySampler, fillTemplate, loadImageNames, parseOperatorTemplate, promptErrorMessage, readWorkflow, templateWorkflow, type Workflow } from '../src/protocols/comfyui/index.ts';

const base = { checkpoint: 'model.safetensors', prompt: 'a fox', negativePrompt: 'blur', width: 512, height: 384, batchSize: 2, seed: 7, steps: 20, cfg: 6, sampler: 'euler', scheduler: 'normal', filenamePrefix: 'darkroom' };

describe('the A1111 protocol', () => {
  it('maps A1111, Civitai and diffusers sampler spellings to the webui’s sampler and scheduler', () => {
    expect(a1111Sampler('DPM++ 2M Karras')).toEqual({ sampler_name: 'DPM++ 2M', scheduler: 'karras' });
    expect(a1111Sampler('DPM2MKarras')).toEqual({ sampler_name: 'DPM++ 2M', scheduler: 'karras' });
    expect(a1111Sampler('dpmpp_2m_sde_karras')).toEqual({ sampler_name: 'DPM++ 2M SDE', scheduler: 'karras' });
    expect(a1111Sampler('EulerA')).toEqual({ sampler_name: 'Euler a' });
    expect(a1111Sampler('k_euler_ancestral')).toEqual({ sampler_name: 'Euler a' });
    expect(a1111Sampler(undefined)).toEqual({ sampler_name: 'Euler' });
    expect(a1111Sampler('Some Custom Sampler')).toEqual({ sampler_name: 'Some Custom Sampler' });
    expect(darkroomScheduler('DPM++ 2M', 'karras')).toBe('DPM++ 2M Karras');
    expect(darkroomScheduler('Euler a', 'automatic')).toBe('Euler a');
  });

  it('reads each image’s seed from info, as JSON text or parsed, and falls back to seed + index', () => {
    expect(seedsOfInfo('{"seed": 10, "all_seeds": [10, 11]}', 2)).toEqual([10, 11]);
    expect(seedsOfInfo({ seed: 10 }, 3)).toEqual([10, 11, 12]);
    expect(seedsOfInfo('not json', 1)).toEqual([undefined]);
    expect(seedsOfInfo('{"seed": -1}', 1)).toEqual([undefined]);
  });

  it('writes the webui’s infotext and reads its error bodies', () => {
    expect(infotext({ prompt: 'p', negativePrompt: 'n', steps: 20, sampler: 'Euler', cfgScale: 7, seed: 1, width: 64, height: 64, model: null, denoisingStrength: null })).toBe(
      'p\nNegative prompt: n\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64',
    );
    expect(a1111ErrorMessage('{"error":"HTTPException","detail":"Sampler not found","body":"","errors":""}')).toBe('Sampler not found');
    expect(a1111ErrorMessage('{"detail":[{"loc":["body","steps"],"msg":"value is not a valid integer","type":"type_error.integer"}]}')).toBe('steps: value is not a valid integer');
    expect(a1111ErrorMessage('Internal Server Error')).toBe('Internal Server Error');
  });
});

describe('the ComfyUI protocol', () => {
  it('reads darkroom’s own graphs back into the parameters they were made from', () => {
    const text = readWorkflow(templateWorkflow(base));
    expect(text).toMatchObject({ ok: true, parameters: { prompt: 'a fox', negativePrompt: 'blur', width: 512, height: 384, batchSize: 2, seed: 7, steps: 20, cfg: 6, denoise: 1, checkpoint: 'model.safetensors', samplerNode: '3', outputs: [{ id: '9', classType: 'SaveImage' }] } });
    const image = readWorkflow(templateWorkflow({ ...base, init: { image: 'in.png', denoise: 0.4 } }));
    expect(image).toMatchObject({ ok: true, parameters: { initImage: 'in.png', denoise: 0.4 } });
    const inpaint = readWorkflow(templateWorkflow({ ...base, init: { image: 'in.png', denoise: 0.8 }, mask: 'mask.png' }));
    expect(inpaint).toMatchObject({ ok: true, parameters: { initImage: 'in.png', maskImage: 'mask.png', denoise: 0.8 } });
  });

  it('takes KSamplerAdvanced’s strength from the step it starts at', () => {
    const graph = templateWorkflow({ ...base, init: { image: 'in.png', denoise: 1 } });
    graph['3'] = { class_type: 'KSamplerAdvanced', inputs: { ...graph['3']!.inputs, noise_seed: 3, start_at_step: 5, steps: 20 } };
    expect(readWorkflow(graph)).toMatchObject({ ok: true, parameters: { seed: 3, denoise: 0.75 } });
  });

  it('names the graph’s input images once each, in node id order', () => {
    const graph: Workflow = {
      '12': { class_type: 'LoadImageMask', inputs: { image: 'mask.png', channel: 'red' } },
      '10': { class_type: 'LoadImage', inputs: { image: 'init.png' } },
      '2': { class_type: 'LoadImage', inputs: { image: 'first.png' } },
      '11': { class_type: 'LoadImage', inputs: { image: 'init.png' } },
    };
    expect(loadImageNames(graph)).toEqual(['first.png', 'init.png', 'mask.png']);
  });

  it('refuses what ComfyUI would: dangling links, a mask in an alpha channel, links to the wrong node', () => {
    const dangling = templateWorkflow(base);
    dangling['3']!.inputs.positive = ['99', 0];
    const read = readWorkflow(dangling);
    expect(read.ok).toBe(false);
    expect(!read.ok && read.error.node_errors).toMatchObject({ '3': { errors: [{ type: 'bad_linked_input' }] } });

    const alpha = templateWorkflow({ ...base, init: { image: 'in.png', denoise: 0.8 }, mask: 'mask.png' });
    alpha['12']!.inputs.channel = 'alpha';
    expect(readWorkflow(alpha).ok).toBe(false);

    const wrong = templateWorkflow(base);
    wrong['3']!.inputs.positive = ['5', 0];
    const mismatch = readWorkflow(wrong);
    expect(!mismatch.ok && mismatch.error.node_errors).toMatchObject({ '3': { errors: [{ type: 'return_type_mismatch' }] } });
    expect(promptErrorMessage(JSON.stringify(mismatch.ok ? {} : mismatch.error))).toContain('node 3 (KSampler): Return type mismatch');
  });

  it('maps scheduler spellings to KSampler’s names', () => {
    expect(comfySampler('DPM++ 2M Karras')).toEqual({ sampler: 'dpmpp_2m', scheduler: 'karras' });
    expect(comfySampler('Euler a')).toEqual({ sampler: 'euler_ancestral', scheduler: 'normal' });
    expect(comfySampler('uni_pc')).toEqual({ sampler: 'uni_pc', scheduler: 'normal' });
    expect(comfySampler(undefined)).toEqual({ sampler: 'euler', scheduler: 'normal' });
  });

  it('checks an operator’s template and fills it where its map says', () => {
    const workflow = templateWorkflow(base);
    expect(parseOperatorTemplate('txt2img', '{')).toMatchObject({ ok: false });
    expect(parseOperatorTemplate('img2img', JSON.stringify({ workflow, map: { prompt: '6.inputs.text', seed: '3.inputs.seed' } }))).toEqual({ ok: false, problem: 'does not map init' });
    expect(parseOperatorTemplate('txt2img', JSON.stringify({ workflow, map: { prompt: '6.inputs.text', seed: '3.inputs.seed', colour: '3.inputs.cfg' } }))).toMatchObject({ ok: false, problem: expect.stringContaining('maps "colour"') });
    const parsed = parseOperatorTemplate('txt2img', JSON.stringify({ workflow, map: { prompt: ['6.inputs.text'], seed: '3.inputs.seed', width: '5.inputs.width' } }));
    expect(parsed.ok).toBe(true);
    const filled = parsed.ok ? fillTemplate(parsed.template, { ...base, prompt: 'a heron', seed: 42, width: 1024 }) : {};
    expect(filled['6']?.inputs.text).toBe('a heron');
    expect(filled['3']?.inputs.seed).toBe(42);
    expect(filled['5']?.inputs).toMatchObject({ width: 1024, height: 384 });
  });
});
