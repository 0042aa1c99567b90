import { readdirSync, readFileSync } from 'node:fs';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { parseRunpodInput } from '../src/api/dialects/runpod/input.ts';
import { canonicalAir, isCivitaiAir, parseAir } from '../src/protocols/civitai/orchestration.ts';
import { FUSIONBRAIN_LIMITS, isKandinskyStyle } from '../src/protocols/fusionbrain/index.ts';
import { parseRetryAfter, sniffImageType } from '../src/protocols/http/index.ts';
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
