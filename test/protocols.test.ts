import { readdirSync, readFileSync } from 'node:fs';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { parseRunpodInput } from '../src/api/dialects/runpod/input.ts';
import { canonicalAir, isCivitaiAir, parseAir } from '../src/protocols/civitai/orchestration.ts';
import { FUSIONBRAIN_LIMITS, isKandinskyStyle } from '../src/protocols/fusionbrain/index.ts';
import { parseRetryAfter, sniffImageType } from '../src/protocols/http/index.ts';
import { errorTypeOf, IMAGE_MODELS, parseSize, pixelsOf, readErrorBody, readImageParams } from '../src/protocols/openai/index.ts';
import { JOB_STATUSES as NATIVE_STATUSES, TERMINAL_STATUSES as NATIVE_TERMINAL } from '../src/protocols/native/jobs.ts';
import { CreateJobSchema } from '../src/protocols/native/schemas.ts';
import { buildInput, type GenerationParams } from '../src/protocols/runpod/input.ts';
import { RUNPOD_INPUT_FORMATS } from '../src/protocols/runpod/status.ts';
import { JOB_STATUSES, TERMINAL_STATUSES } from '../src/core/job.ts';

const fixtures = new URL('./fixtures/civitai/', import.meta.url);
const json = (name: string) => JSON.parse(readFileSync(new URL(name, fixtures), 'utf8')) as Record<string, unknown>;

describe('the Civitai protocol on the service’s captured resources', () => {
  const airs = readdirSync(fixtures).filter((name) => name.startsWith('example-air')).map((name) => json(name).air as string);

  it('parses every captured AIR, and canonical spellings name the same resource', () => {
    expect(airs.length).toBeGreaterThanOrEqual(5);
    for (const air of airs) {
      const parsed = parseAir(air);
      expect(parsed, air).not.toBeNull();
      expect(canonicalAir(air)).toMatch(/^urn:air:/);
      expect(canonicalAir(canonicalAir(air))).toBe(canonicalAir(air));
      expect(parseAir(canonicalAir(air))).toEqual(parsed);
    }
  });

  it('claims for Civitai exactly the AIRs whose source is civitai', () => {
    for (const air of airs) expect(isCivitaiAir(air), air).toBe(parseAir(air)?.source === 'civitai');
    expect(isCivitaiAir('urn:air:sdxl:checkpoint:huggingface:stabilityai/sdxl')).toBe(false);
    expect(isCivitaiAir('not an air')).toBe(false);
  });
});

describe('the RunPod protocol: what the provider sends, the dialect reads back', () => {
  const params: GenerationParams = { prompt: 'a lighthouse', negativePrompt: 'fog', width: 768, height: 512, steps: 25, cfgScale: 6.5, seed: 1234, numImages: 2 };

  it.each(RUNPOD_INPUT_FORMATS.filter((format) => format !== 'custom'))('%s: the input a worker gets is read back as the same job', async (format) => {
    const input = buildInput(params, format, () => 0.5);
    const parsed = await parseRunpodInput(JSON.parse(JSON.stringify(input)) as Record<string, unknown>);
    expect(parsed.format).toBe(format);
    expect(parsed.job).toMatchObject({ prompt: 'a lighthouse', negativePrompt: 'fog', width: 768, height: 512, steps: 25, cfgScale: 6.5, seed: 1234 });
  });

  it('custom: the RunPod-endpoints worker gets its prompt and size', async () => {
    const input = buildInput(params, 'custom');
    expect((await parseRunpodInput(JSON.parse(JSON.stringify(input)) as Record<string, unknown>)).job).toMatchObject({ prompt: 'a lighthouse', width: 768, height: 512 });
  });
});

describe('the other protocols', () => {
  it('Fusion Brain: its styles, whatever the case, and its documented limits', () => {
    expect(isKandinskyStyle('anime')).toBe(true);
    expect(isKandinskyStyle('watercolour')).toBe(false);
    expect(FUSIONBRAIN_LIMITS).toMatchObject({ maxSide: 1024, sideMultiple: 64, numImages: 1 });
  });

  it('HTTP: Retry-After as seconds or a date, images by their magic numbers', () => {
    expect(parseRetryAfter('5')).toBe(5000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(sniffImageType(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]))).toBe('image/png');
    expect(sniffImageType(Buffer.from('not an image'))).toBeUndefined();
  });

  it('native: the wire statuses are the core’s, and the create schema takes what the core does', () => {
    expect([...NATIVE_STATUSES]).toEqual([...JOB_STATUSES]);
    expect([...NATIVE_TERMINAL]).toEqual([...TERMINAL_STATUSES]);
    expect(Value.Check(CreateJobSchema, { prompt: 'p', width: 512, seed: -1, webhookEvents: ['completed'] })).toBe(true);
    expect(Value.Check(CreateJobSchema, { prompt: 'p', width: 513 })).toBe(false);
    expect(Value.Check(CreateJobSchema, { prompt: 'p', unknown: 1 })).toBe(false);
  });
});

describe('the OpenAI Images protocol', () => {
  it('knows every image model the openai package names', async () => {
    // The package's ImageModel union, read from its types, is the ground truth.
    const types = readFileSync(new URL('../node_modules/openai/resources/images.d.ts', import.meta.url), 'utf8');
    const union = /export type ImageModel = ([^;]+);/.exec(types)?.[1] ?? '';
    const models = [...union.matchAll(/'([^']+)'/g)].map((match) => match[1]);
    expect(models.length).toBeGreaterThan(3);
    expect(Object.keys(IMAGE_MODELS).sort()).toEqual([...models].sort());
  });

  it('reads a JSON generation and a form’s text fields alike, and names the parameter it refuses', () => {
    expect(readImageParams('generations', { prompt: 'a kite', model: 'gpt-image-1', n: 2, size: 'auto', output_format: 'webp', stream: null })).toEqual({
      params: { prompt: 'a kite', model: 'gpt-image-1', n: 2, size: 'auto', output_format: 'webp' },
    });
    expect(readImageParams('edits', { prompt: 'a kite', n: '3', stream: 'true', output_compression: '50' }, { form: true })).toEqual({
      params: { prompt: 'a kite', n: 3, stream: true, output_compression: 50 },
    });
    const refused = (result: { problem?: { param: string; code: string } } | object) => ('problem' in result ? [result.problem?.param, result.problem?.code] : undefined);
    expect(refused(readImageParams('generations', { prompt: 'x', n: '3' }))).toEqual(['n', 'invalid_type']);
    expect(refused(readImageParams('generations', { prompt: 'x', model: 'dall-e-3', n: 2 }))).toEqual(['n', 'integer_above_max_value']);
    expect(refused(readImageParams('generations', { prompt: 'x', model: 'dall-e-2', size: '1536x1024' }))).toEqual(['size', 'invalid_value']);
    expect(refused(readImageParams('generations', { prompt: 'x', model: 'sdxl-house', size: '1001x1000' }))).toEqual(['size', 'invalid_value']);
    expect(readImageParams('generations', { prompt: 'x', model: 'sdxl-house', size: '2056x1024' })).toMatchObject({ problem: { param: 'size' } });
    expect(readImageParams('generations', { prompt: 'x', model: 'sdxl-house', size: '1024x576' })).toMatchObject({ params: { size: '1024x576' } });
    expect(refused(readImageParams('generations', { model: 'gpt-image-1' }))).toEqual(['prompt', 'missing_required_parameter']);
    expect(refused(readImageParams('generations', { prompt: 'x', seed: 1 }))).toEqual(['seed', 'unknown_parameter']);
    expect(refused(readImageParams('edits', { prompt: 'x', style: 'vivid' }, { form: true }))).toEqual(['style', 'unknown_parameter']);
    expect(refused(readImageParams('edits', { prompt: 'x', model: 'dall-e-3' }, { form: true }))).toEqual(['model', 'invalid_value']);
    expect(refused(readImageParams('variations', { model: 'gpt-image-1' }, { form: true }))).toEqual(['model', 'invalid_value']);
  });

  it('turns sizes into pixels, auto into the model’s default', () => {
    expect(pixelsOf('1536x1024', 'gpt-image-1')).toEqual({ width: 1536, height: 1024 });
    expect(pixelsOf('auto', 'gpt-image-1')).toEqual({ width: 1024, height: 1024 });
    expect(pixelsOf(undefined, 'dall-e-2')).toEqual({ width: 1024, height: 1024 });
    expect(parseSize('1024x')).toBeUndefined();
  });

  it('reads OpenAI’s error body and the looser ones of compatible servers', () => {
    expect(readErrorBody({ error: { message: 'm', type: 'invalid_request_error', param: 'size', code: 'invalid_value' } })).toEqual({ message: 'm', type: 'invalid_request_error', param: 'size', code: 'invalid_value' });
    expect(readErrorBody({ error: 'plain words' })).toEqual({ message: 'plain words' });
    expect(readErrorBody({ detail: 'x' })).toBeUndefined();
    expect(errorTypeOf(429)).toBe('rate_limit_error');
  });
});
