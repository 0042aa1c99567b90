import { describe, expect, it } from 'vitest';
import type { Job } from 'darkroom/client';
import { batchPrompts, DEFAULT_VALUES, hasAdvancedValues, outputSizeFor, presetOf, randomSeed, toBatchInput, toJobInput, valuesFromJob } from '../web/src/form.ts';

// The web UI's form ↔ request translation, without a browser (test/ui.test.ts covers it in one).
describe('web UI form values', () => {
  it('sends what was filled in, trimmed, and leaves empty options to the server', () => {
    expect(toJobInput({ ...DEFAULT_VALUES, prompt: '  a teapot  ' })).toEqual({ prompt: 'a teapot', width: 512, height: 512, numImages: 1 });
    expect(
      toJobInput({
        ...DEFAULT_VALUES,
        prompt: 'a teapot',
        negativePrompt: ' blurry ',
        width: '768',
        height: '512',
        steps: '30',
        cfgScale: '7.5',
        seed: '0',
        numImages: '2',
        provider: 'mock',
        style: 'anime',
      }),
    ).toEqual({ prompt: 'a teapot', negativePrompt: 'blurry', width: 768, height: 512, steps: 30, cfgScale: 7.5, seed: 0, numImages: 2, provider: 'mock', style: 'anime' });
    // Not judged here: the API answers with the field's problem, which the form shows.
    expect(toJobInput({ ...DEFAULT_VALUES, prompt: 'x', width: '100' }).width).toBe(100);
  });

  it('batch mode makes one prompt per non-blank line, with the shared options', () => {
    expect(batchPrompts('a fox\r\n\n  a city  \n\t\nramen')).toEqual(['a fox', 'a city', 'ramen']);
    expect(toBatchInput({ ...DEFAULT_VALUES, batch: true, prompt: 'a\nb', steps: '12' })).toEqual({ prompts: ['a', 'b'], width: 512, height: 512, steps: 12, numImages: 1 });
  });

  it('refills the form from a job, with the seed of the image being reused', () => {
    const request: Job['request'] = { prompt: 'koi', negativePrompt: 'text', width: 768, height: 512, steps: 30, cfgScale: 7.5, numImages: 2, provider: 'mock', priority: 0 };
    const values = valuesFromJob(request, 1234);
    expect(values).toEqual({
      ...DEFAULT_VALUES,
      prompt: 'koi',
      negativePrompt: 'text',
      width: '768',
      height: '512',
      steps: '30',
      cfgScale: '7.5',
      seed: '1234',
      numImages: '2',
      provider: 'mock',
    });
    // Everything the form holds goes back as it was (priority has no field: the default applies).
    const { priority, ...sent } = request;
    expect(priority).toBe(0);
    expect(toJobInput(values)).toEqual({ ...sent, seed: 1234 });
    expect(valuesFromJob({ ...request, seed: 99 }, null).seed).toBe('99');
    expect(presetOf(values)?.label).toBe('Landscape 3:2');
    expect(presetOf({ width: '776', height: '512' })).toBeUndefined();
    expect(hasAdvancedValues(values)).toBe(true);
    expect(hasAdvancedValues({ ...DEFAULT_VALUES, prompt: 'only a prompt', batch: true })).toBe(false);
  });

  it('sends the input images with the strength, which goes only with an init image', () => {
    const init = { role: 'init' as const, uploadId: 'up-1' };
    const mask = { role: 'mask' as const, uploadId: 'up-2' };
    expect(toJobInput({ ...DEFAULT_VALUES, prompt: 'a teapot', strength: '0.4' }, [init, mask])).toEqual({ prompt: 'a teapot', width: 512, height: 512, numImages: 1, images: [init, mask], strength: 0.4 });
    expect(toJobInput({ ...DEFAULT_VALUES, prompt: 'a teapot', strength: '0.4' })).toEqual({ prompt: 'a teapot', width: 512, height: 512, numImages: 1 });
    expect(toJobInput({ ...DEFAULT_VALUES, prompt: 'x' }, [{ role: 'reference', uploadId: 'up-3' }])).not.toHaveProperty('strength');
    // A batch's shared options take no images: each line becomes a job with them.
    expect(toBatchInput({ ...DEFAULT_VALUES, batch: true, prompt: 'a\nb', strength: '0' }, [init])).toEqual({
      jobs: [
        { prompt: 'a', images: [init], strength: 0 },
        { prompt: 'b', images: [init], strength: 0 },
      ],
      width: 512,
      height: 512,
      numImages: 1,
    });
    expect(valuesFromJob({ prompt: 'koi', width: 512, height: 512, numImages: 1, priority: 0, strength: 0.3 }, 1).strength).toBe('0.3');
    expect(hasAdvancedValues({ ...DEFAULT_VALUES, strength: '0.2' })).toBe(false);
  });

  it("makes an input image's size one the API accepts", () => {
    expect(outputSizeFor(640, 480)).toEqual({ width: '640', height: '480' });
    expect(outputSizeFor(1001, 3000)).toEqual({ width: '1000', height: '2048' });
    expect(outputSizeFor(20, 67)).toEqual({ width: '64', height: '64' });
  });

  it('rolls seeds in the API’s range', () => {
    for (let roll = 0; roll < 100; roll += 1) {
      const seed = randomSeed();
      expect(Number.isInteger(seed) && seed >= 0 && seed <= 4294967295).toBe(true);
    }
  });
});
