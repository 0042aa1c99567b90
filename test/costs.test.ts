import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { actualCost, estimateCost, imageTokens, parsePrices, textTokens, type Pricing } from '../src/core/pricing.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

async function finished(dr: TestDarkroom, body: Record<string, unknown>) {
  const created = await dr.api('POST', '/api/v1/jobs', { prompt: 'priced', ...body });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  await dr.waitForJob(created.body.id as string);
  return { created: created.body, job: (await dr.api('GET', `/api/v1/jobs/${created.body.id}`)).body };
}

describe('PROVIDER_PRICES', () => {
  it('reads per image, per megapixel and per second prices, with model, size and an estimate of seconds', () => {
    expect(parsePrices('runpod=0.00025/s~30, openai=gpt-image-1:0.04/image@1024x1024,civitai=0.0015/megapixel')).toEqual({
      rules: [
        { provider: 'runpod', terms: [{ amount: 0.00025, unit: 'second', estimate: 30 }] },
        { provider: 'openai', model: 'gpt-image-1', size: { width: 1024, height: 1024 }, terms: [{ amount: 0.04, unit: 'image' }] },
        { provider: 'civitai', terms: [{ amount: 0.0015, unit: 'megapixel' }] },
      ],
    });
    expect(() => loadConfig({ PROVIDER_PRICES: 'mock=cheap' })).toThrow(ConfigError);
    expect(() => loadConfig({ PROVIDER_PRICES: 'mock=0.1/hour' })).toThrow(/PROVIDER_PRICES: "mock=0.1\/hour" is not provider=\[model:\]amount\/unit/);
    expect(() => loadConfig({ PRICE_CURRENCY: 'dollars' })).toThrow(/PRICE_CURRENCY/);
  });

  it('reads token prices as sums of terms, each with its own estimate, and refuses what does not add up', () => {
    expect(parsePrices('openai=gpt-image-1:5/Mtok-in-text+10/Mtok-in-image~300+40/Mtok-out@1024x1024~1056, runpod=0.01/image+0.0002/s~20')).toEqual({
      rules: [
        {
          provider: 'openai',
          model: 'gpt-image-1',
          size: { width: 1024, height: 1024 },
          terms: [
            { amount: 5, unit: 'Mtok-in-text' },
            { amount: 10, unit: 'Mtok-in-image', estimate: 300 },
            { amount: 40, unit: 'Mtok-out', estimate: 1056 },
          ],
        },
        { provider: 'runpod', terms: [{ amount: 0.01, unit: 'image' }, { amount: 0.0002, unit: 'second', estimate: 20 }] },
      ],
    });
    const problem = (text: string) => ('problem' in parsePrices(text) ? (parsePrices(text) as { problem: string }).problem : undefined);
    expect(problem('openai=5/Mtok-in+40/Mtok-out')).toBeUndefined();
    expect(problem('openai=5/Mtok-in+10/Mtok-in-image')).toMatch(/both as a whole \(Mtok-in\) and by kind/);
    expect(problem('openai=5/Mtok-out+6/Mtok-out')).toMatch(/prices Mtok-out twice/);
    expect(problem('mock=0.1/image@512x512+0.2/megapixel@64x64')).toMatch(/gives a size twice/);
    expect(problem('mock=0.1/image~3')).toMatch(/is not provider=/);
    expect(problem('openai=5/Mtok-inn')).toMatch(/is not provider=/);
    expect(problem('openai=5/Mtok-out+')).toMatch(/is not provider=/);
  });

  it('estimates tokens from the prompt and the pixels unless the rule says, and counts the actual cost from reported usage', () => {
    const pricing: Pricing = { currency: 'USD', ...(parsePrices('openai=5/Mtok-in-text+10/Mtok-in-image+40/Mtok-out,fixed=5/Mtok-in~1000+40/Mtok-out~100') as { rules: never[] }) };
    const prompt = 'a harbour at dawn, in oils';
    const init = { role: 'init' as const, key: 'inputs/x.png', contentType: 'image/png', width: 512, height: 512, bytes: 1, sha256: 'x' };
    const request = { prompt, width: 1024, height: 1536, numImages: 2, inputs: [init] };
    const guessed = (5 * textTokens(prompt) + 10 * imageTokens(512, 512) + 40 * 2 * imageTokens(1024, 1536)) / 1e6;
    expect(imageTokens(1024, 1024)).toBe(4160);
    expect(imageTokens(1024, 1536)).toBe(6240);
    expect(estimateCost(pricing, 'openai', request).estimated).toBeCloseTo(guessed, 6);
    expect(estimateCost(pricing, 'fixed', request).estimated).toBe((5 * 1000 + 40 * 100 * 2) / 1e6);

    const images = [{ width: 1024, height: 1536 }, { width: 1024, height: 1536 }];
    const usage = { inputTokens: 1200, outputTokens: 12_000, inputTextTokens: 200, inputImageTokens: 1000 };
    expect(actualCost(pricing, 'openai', request, { images, upstreamMs: 1, usage }, null).actual).toBe((5 * 200 + 10 * 1000 + 40 * 12_000) / 1e6);
    expect(actualCost(pricing, 'fixed', request, { images, upstreamMs: 1, usage }, null).actual).toBe((5 * 1200 + 40 * 12_000) / 1e6);
    // Images made but no usage reported: the estimate of the tokens stands; nothing made, no tokens.
    expect(actualCost(pricing, 'fixed', request, { images, upstreamMs: 1, usage: null }, null).actual).toBe((5 * 1000 + 40 * 100 * 2) / 1e6);
    expect(actualCost(pricing, 'openai', request, { images: [], upstreamMs: 5000 }, null).actual).toBe(0);
  });

  it('prices by the most specific rule: model and size before model before any', () => {
    const pricing = { currency: 'USD', ...(parsePrices('mock=0.01/image,mock=sdxl:0.05/image,mock=sdxl:0.08/image@1024x1024') as { rules: never[] }) };
    const cost = (model: string | undefined, width: number) => estimateCost(pricing, 'mock', { model, width, height: width, numImages: 2 }).estimated;
    expect(cost('sdxl', 1024)).toBe(0.16);
    expect(cost('sdxl', 512)).toBe(0.1);
    expect(cost('flux', 1024)).toBe(0.02);
    expect(estimateCost(pricing, 'runpod', { width: 512, height: 512, numImages: 1 }).estimated).toBeNull();
  });

  it('records the estimated cost at submission and the actual one at the end, in the job and in metrics', async () => {
    const admin = 'admin-key-for-the-cost-tests-0123';
    const dr = await startDarkroom({ PROVIDER_PRICES: 'mock=0.002/megapixel', PRICE_CURRENCY: 'EUR', ADMIN_API_KEY: admin }, { apiKey: admin });
    try {
      const { created, job } = await finished(dr, { width: 512, height: 512, numImages: 2 });
      expect(created.cost).toEqual({ estimated: 0.001049, actual: null, currency: 'EUR' });
      expect(job.cost).toEqual({ estimated: 0.001049, actual: 0.001049, currency: 'EUR' });
      const metrics = await (await fetch(`${dr.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
      expect(metrics).toContain('darkroom_job_cost_total{provider="mock",currency="EUR"} 0.001049');
      expect(metrics).toContain('darkroom_job_cost_estimated_total{provider="mock",currency="EUR"} 0.001049');
      const stats = (await dr.api('GET', '/api/v1/queue/stats')).body;
      expect(stats.costs).toEqual([{ owner: expect.any(String), currency: 'EUR', jobs: 1, estimated: 0.001049, actual: 0.001049 }]);
      // Another key sees its own costs only: none yet.
      const other = await dr.api('POST', '/api/v1/keys', { name: 'other' });
      expect((await dr.api('GET', '/api/v1/queue/stats', undefined, { authorization: `Bearer ${other.body.key}` })).body.costs).toEqual([]);
    } finally {
      await dr.close();
    }
  });

  it('per second: estimated from the rule, actual from the upstream time; an unpriced provider has no cost', async () => {
    const dr = await startDarkroom({ PROVIDER_PRICES: 'mock=0.5/s~3', MOCK_LATENCY_MS: '300' });
    try {
      const { created, job } = await finished(dr, { width: 64, height: 64 });
      expect(created.cost.estimated).toBe(1.5);
      expect(job.timings.providerMs).toBeGreaterThan(0);
      expect(job.cost.actual).toBeCloseTo((0.5 * job.timings.providerMs) / 1000, 6);
    } finally {
      await dr.close();
    }
    const unpriced = await startDarkroom();
    try {
      expect((await finished(unpriced, { width: 64, height: 64 })).job.cost).toBeNull();
    } finally {
      await unpriced.close();
    }
  });
});
