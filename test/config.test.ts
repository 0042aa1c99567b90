import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/index.ts';

describe('loadConfig', () => {
  it('runs on embedded defaults with an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      dataDir: './data',
      databaseUrl: undefined,
      queue: 'embedded',
      storage: 'fs',
      signedUrlTtlSeconds: 3600,
      defaultProvider: 'mock',
      providers: { mock: { failureRate: 0 } },
      bodyLimitBytes: 1_048_576,
    });
  });

  it('reads MOCK_LATENCY_MS as a number or a min-max range', () => {
    expect(loadConfig({ MOCK_LATENCY_MS: '250' }).providers.mock).toMatchObject({ latencyMs: { min: 250, max: 250 } });
    expect(loadConfig({ MOCK_LATENCY_MS: '100-900' }).providers.mock).toMatchObject({ latencyMs: { min: 100, max: 900 } });
  });

  it('reads accounts and limits: AUTH, rate limits per window, caps and TRUST_PROXY', () => {
    expect(loadConfig({})).toMatchObject({ auth: 'optional', rateLimits: { generate: undefined, read: undefined }, maxActiveJobsPerKey: undefined, maxBatchSize: 100, trustProxy: false });
    const config = loadConfig({
      AUTH: 'required',
      RATE_LIMIT_GENERATE: '10/hour',
      RATE_LIMIT_READ: '20 / Second',
      MAX_ACTIVE_JOBS_PER_KEY: '50',
      MAX_BATCH_SIZE: '10',
      TRUST_PROXY: '10.0.0.0/8, 192.168.1.1',
    });
    expect(config).toMatchObject({
      auth: 'required',
      rateLimits: { generate: { max: 10, windowMs: 3_600_000, text: '10/hour' }, read: { max: 20, windowMs: 1000, text: '20/second' } },
      maxActiveJobsPerKey: 50,
      maxBatchSize: 10,
      trustProxy: ['10.0.0.0/8', '192.168.1.1'],
    });
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
  });

  it('reads RETAIN_UPLOADS and UPLOAD_TTL as one setting, refusing them when they disagree', () => {
    expect(loadConfig({}).inputs.uploadTtlSeconds).toBe(86_400);
    expect(loadConfig({ UPLOAD_TTL: '600' }).inputs.uploadTtlSeconds).toBe(600);
    expect(loadConfig({ RETAIN_UPLOADS: '2h' }).inputs.uploadTtlSeconds).toBe(7200);
    expect(loadConfig({ RETAIN_UPLOADS: '2h', UPLOAD_TTL: '7200' }).inputs.uploadTtlSeconds).toBe(7200);
    expect(() => loadConfig({ RETAIN_UPLOADS: '2h', UPLOAD_TTL: '600' })).toThrow(/RETAIN_UPLOADS="2h" and UPLOAD_TTL="600" both say how long an upload lives, and disagree/);
    expect(() => loadConfig({ RETAIN_UPLOADS: '31d' })).toThrow(/RETAIN_UPLOADS="31d" must be at most 30d/);
    expect(() => loadConfig({ RETAIN_UPLOADS: 'forever' })).toThrow(/RETAIN_UPLOADS="forever" must be a duration/);
  });

  it('strips a trailing slash from URLs', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://img.example.com/' }).publicUrl).toBe('https://img.example.com');
  });

  it.each([
    ['PORT', 'eighty', 'PORT="eighty" must be a whole number from 0 to 65535'],
    ['PORT', '70000', 'PORT="70000" must be a whole number from 0 to 65535'],
    ['QUEUE', 'kafka', 'QUEUE="kafka" must be one of: embedded, redis, postgres'],
    ['STORAGE', 'ftp', 'STORAGE="ftp" must be one of: fs, s3'],
    ['MOCK_FAILURE_RATE', '1.5', 'MOCK_FAILURE_RATE="1.5" must be a number from 0 to 1'],
    ['MOCK_LATENCY_MS', '900-100', 'MOCK_LATENCY_MS="900-100" must be milliseconds ("2000") or a range ("500-3000") up to 3600000'],
    ['SIGNED_URL_TTL', '0', 'SIGNED_URL_TTL="0" must be a whole number from 1 to 604800'],
    ['DATABASE_URL', 'mysql://x', 'DATABASE_URL must be a URL starting with postgres:// or postgresql://'],
    ['S3_FORCE_PATH_STYLE', 'maybe', 'S3_FORCE_PATH_STYLE="maybe" must be true or false'],
    ['AUTH', 'sometimes', 'AUTH="sometimes" must be one of: off, optional, required'],
    ['RATE_LIMIT_GENERATE', '10', 'RATE_LIMIT_GENERATE="10" must be requests per window: "N/second", "N/minute" or "N/hour" with N from 1 to 1000000'],
    ['RATE_LIMIT_READ', '0/minute', 'RATE_LIMIT_READ="0/minute" must be requests per window: "N/second", "N/minute" or "N/hour" with N from 1 to 1000000'],
    ['RATE_LIMIT_READ', '5/day', 'RATE_LIMIT_READ="5/day" must be requests per window: "N/second", "N/minute" or "N/hour" with N from 1 to 1000000'],
    ['MAX_ACTIVE_JOBS_PER_KEY', '0', 'MAX_ACTIVE_JOBS_PER_KEY="0" must be a whole number from 1 to 1000000'],
    ['MAX_BATCH_SIZE', '101', 'MAX_BATCH_SIZE="101" must be a whole number from 1 to 100'],
    ['TRUST_PROXY', 'the load balancer', 'TRUST_PROXY="the load balancer" must be true, false, a number of proxy hops, or a comma-separated list of proxy addresses or CIDRs'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL="loud" must be one of: fatal, error, warn, info, debug, trace, silent'],
    ['SIGNING_SECRET', 'short', 'SIGNING_SECRET must be at least 32 characters'],
  ])('refuses %s=%s, naming the variable and what it accepts', (name, value, message) => {
    try {
      loadConfig({ [name]: value });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toContain(message);
    }
  });

  it('lists every problem at once', () => {
    expect(() => loadConfig({ PORT: 'x', WORKER_CONCURRENCY: '-1' })).toThrow(/PORT="x"[\s\S]*WORKER_CONCURRENCY="-1"/);
  });

  it('stops `darkroom serve` with the message and a non-zero exit', () => {
    const result = spawnSync(process.execPath, ['bin/darkroom.js', 'serve'], {
      env: { ...process.env, PORT: 'abc', MOCK_FAILURE_RATE: '2' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('PORT="abc" must be a whole number from 0 to 65535');
    expect(result.stderr).toContain('MOCK_FAILURE_RATE="2" must be a number from 0 to 1');
  });
});

describe('start-up checks', () => {
  it('refuses a DEFAULT_PROVIDER that is not configured, before touching any data', () => {
    const result = spawnSync(process.execPath, ['bin/darkroom.js', 'serve'], {
      env: { ...process.env, DEFAULT_PROVIDER: 'runpod', RUNPOD_API_KEY: '', RUNPOD_ENDPOINT_ID: '', DATA_DIR: '/nonexistent/darkroom-never-created' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('DEFAULT_PROVIDER="runpod" is not a configured provider (configured: mock)');
  });
});
