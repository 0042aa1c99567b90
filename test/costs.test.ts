import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { estimateCost, parsePrices } from '../src/core/pricing.ts';
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
