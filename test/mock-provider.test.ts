import { noInputs } from './helpers/providers.ts';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../src/core/errors.ts';
import type { GenerationRequest } from '../src/core/request.ts';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { makeMockProvider } from '../src/providers/mock/index.ts';

const context = { jobId: 'test', deadlineAt: null, readInput: noInputs, signal: new AbortController().signal };
const request = (overrides: Partial<GenerationRequest> = {}): GenerationRequest => ({
  prompt: 'a harbour at dawn',
  width: 256,
  height: 192,
  numImages: 1,
  priority: 0,
  ...overrides,
});

describe('mock images', () => {
  it('gives the same bytes for the same prompt, seed and size', async () => {
    const a = await renderMockImage('a harbour at dawn', 42, 256, 192);
    const b = await renderMockImage('a harbour at dawn', 42, 256, 192);
    expect(a.equals(b)).toBe(true);
    const meta = await sharp(a).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 256, 192]);
  });

  it('gives visibly different pictures for different prompts, and never a flat colour', async () => {
    const a = await sharp(await renderMockImage('a harbour at dawn', 42, 128, 128)).removeAlpha().raw().toBuffer();
    const b = await sharp(await renderMockImage('a desert at noon', 42, 128, 128)).removeAlpha().raw().toBuffer();
    let difference = 0;
    for (let i = 0; i < a.length; i += 1) difference += Math.abs(a[i]! - b[i]!);
    expect(difference / a.length).toBeGreaterThan(20);
    const stats = await sharp(await renderMockImage('a desert at noon', 42, 128, 128)).stats();
    expect(Math.max(...stats.channels.slice(0, 3).map((channel) => channel.stdev))).toBeGreaterThan(15);
  });

  it('changes with the seed', async () => {
    const a = await renderMockImage('same prompt', 1, 64, 64);
    const b = await renderMockImage('same prompt', 2, 64, 64);
    expect(a.equals(b)).toBe(false);
  });
});

describe('mock provider', () => {
  it('honours numImages with consecutive seeds from the requested one', async () => {
    const provider = makeMockProvider({ latencyMs: { min: 0, max: 0 }, failureRate: 0 });
    const { providerJobId } = await provider.submit(request({ seed: 100, numImages: 3 }), context);
    const result = await provider.poll({ providerJobId, request: request({ seed: 100, numImages: 3 }) }, context);
    expect(result.state).toBe('succeeded');
    if (result.state !== 'succeeded') return;
    expect(result.outputs.map((output) => output.seed)).toEqual([100, 101, 102]);
    expect(result.outputs[0]!.bytes.equals(await renderMockImage('a harbour at dawn', 100, 256, 192))).toBe(true);
  });

  it('picks and reports a random seed when none is given', async () => {
    const provider = makeMockProvider({ latencyMs: { min: 0, max: 0 }, failureRate: 0 });
    const seeds = new Set<number>();
    for (let i = 0; i < 3; i += 1) {
      const { providerJobId } = await provider.submit(request(), context);
      const result = await provider.poll({ providerJobId, request: request() }, context);
      if (result.state === 'succeeded') seeds.add(result.outputs[0]!.seed as number);
    }
    expect(seeds.size).toBe(3);
  });

  it('reports progress until its latency has passed, and can be polled by another instance', async () => {
    let now = 1_000_000;
    const options = { latencyMs: { min: 1000, max: 1000 }, failureRate: 0, now: () => now };
    const { providerJobId } = await makeMockProvider(options).submit(request(), context);
    const fresh = makeMockProvider(options);
    now += 250;
    expect(await fresh.poll({ providerJobId, request: request() }, context)).toMatchObject({ state: 'running', progress: 0.25 });
    now += 750;
    expect((await fresh.poll({ providerJobId, request: request() }, context)).state).toBe('succeeded');
  });

  it('answers cancelled after cancel', async () => {
    const provider = makeMockProvider({ latencyMs: { min: 5000, max: 5000 }, failureRate: 0 });
    const { providerJobId } = await provider.submit(request(), context);
    await provider.cancel({ providerJobId, request: request() });
    expect(await provider.poll({ providerJobId, request: request() }, context)).toEqual({ state: 'cancelled' });
  });

  it('injects the three kinds of failure at MOCK_FAILURE_RATE', async () => {
    const outcomes = async (values: number[]) => {
      const provider = makeMockProvider({ latencyMs: { min: 0, max: 0 }, failureRate: 0.5, random: () => values.shift() ?? 0.5 });
      try {
        const { providerJobId } = await provider.submit(request(), context);
        await provider.poll({ providerJobId, request: request() }, context);
        return 'succeeded';
      } catch (error) {
        const failure = error as ProviderError;
        return `${failure.code}:${failure.retryable}:${failure.resubmit}`;
      }
    };
    expect(await outcomes([0.1, 0.1])).toBe('upstream_unavailable:true:false');
    expect(await outcomes([0.1, 0.5])).toBe('rejected:false:false');
    expect(await outcomes([0.1, 0.9])).toBe('worker_failed:true:true');
    expect(await outcomes([0.7])).toBe('succeeded');
  });

  it('treats an id it did not issue as a lost upstream job', async () => {
    const provider = makeMockProvider({ latencyMs: { min: 0, max: 0 }, failureRate: 0 });
    await expect(provider.poll({ providerJobId: 'mock-garbage', request: request() }, context)).rejects.toMatchObject({
      code: 'upstream_job_not_found',
      resubmit: true,
    });
  });
});
