import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { bullmqPriority } from '../src/queue/bullmq.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('queue configuration', () => {
  it('accepts QUEUE=redis and QUEUE=postgres with their connection URLs', () => {
    expect(loadConfig({ QUEUE: 'redis', REDIS_URL: 'redis://127.0.0.1:6379' })).toMatchObject({ queue: 'redis', queueName: 'darkroom' });
    expect(loadConfig({ QUEUE: 'postgres', DATABASE_URL: 'postgres://127.0.0.1/darkroom' }).queue).toBe('postgres');
    expect(problemsOf({ QUEUE: 'redis' })).toEqual(['QUEUE=redis needs REDIS_URL']);
    expect(problemsOf({ QUEUE: 'postgres' })).toEqual(['QUEUE=postgres needs DATABASE_URL']);
  });

  it('reads per-provider concurrency and rate limits', () => {
    const config = loadConfig({ PROVIDER_CONCURRENCY: 'civitai=4, runpod=8', PROVIDER_RATE_LIMIT: 'civitai=10/s,fusionbrain=5/250ms,runpod=100/m' });
    expect(config.providerLimits).toEqual({
      civitai: { concurrency: 4, rateLimit: { max: 10, durationMs: 1000 } },
      runpod: { concurrency: 8, rateLimit: { max: 100, durationMs: 60_000 } },
      fusionbrain: { concurrency: undefined, rateLimit: { max: 5, durationMs: 250 } },
    });
    expect(loadConfig({}).providerLimits).toEqual({});
  });

  it.each([
    ['PROVIDER_CONCURRENCY', 'civitai=0'],
    ['PROVIDER_CONCURRENCY', 'civitai'],
    ['PROVIDER_CONCURRENCY', 'civitai=four'],
    ['PROVIDER_RATE_LIMIT', 'civitai=10'],
    ['PROVIDER_RATE_LIMIT', 'civitai=0/s'],
    ['PROVIDER_RATE_LIMIT', 'civitai=10/day'],
    ['QUEUE_NAME', 'with:colon'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}="${value}" must be`));
  });

  it('maps darkroom priorities (higher first) onto BullMQ priorities (lower first, never 0)', () => {
    expect([100, 50, 0, -50, -100].map(bullmqPriority)).toEqual([1, 51, 101, 151, 201]);
    expect(bullmqPriority(1000)).toBe(1);
    expect(bullmqPriority(-1000)).toBe(201);
  });
});
