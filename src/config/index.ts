import { existsSync, readFileSync } from 'node:fs';
import { parsePrices, type Pricing } from '../core/pricing.ts';
import { parse as parseDotenv } from 'dotenv';
import type { SettingsReader } from '../core/ports/provider.ts';
import { PROVIDER_MODULES } from '../providers/registry.ts';

/**
 * darkroom's configuration, read once from the environment (and `.env` when present), validated and
 * typed. Nothing else in the code base reads `process.env`.
 */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** Unset means an embedded PGlite database under `dataDir`. */
  databaseUrl: string | undefined;
  queue: 'embedded' | 'redis' | 'postgres';
  redisUrl: string | undefined;
  /** BullMQ queue name: deployments that share one Redis or database tell their queues apart by it. */
  queueName: string;
  /** How many never-started jobs of one owner and priority wait in line at once: its turn in each round. */
  fairShareQuantum: number;
  /**
   * Limits per provider that hold across every worker of every process (QUEUE=redis|postgres; the
   * embedded queue serves one process and ignores them).
   */
  providerLimits: Record<string, { concurrency?: number; rateLimit?: { max: number; durationMs: number } }>;
  /**
   * PROVIDER_FALLBACK: per first provider, the providers its jobs move to, in order, when it is down
   * (`runpod>comfyui>mock` gives runpod's jobs comfyui, then mock).
   */
  providerFallback: Record<string, string[]>;
  /** Retryable failures on one provider after which a job moves to the next of its chain. */
  failoverAfterAttempts: number;
  /** Circuit breakers: consecutive retryable failures that open a provider's circuit, and how long it stays open before one probe. */
  circuit: { failures: number; cooldownMs: number };
  storage: 'fs' | 's3';
  s3: {
    endpoint: string | undefined;
    /** The address clients use to download, when it differs from S3_ENDPOINT. */
    publicEndpoint: string | undefined;
    region: string;
    bucket: string | undefined;
    accessKeyId: string | undefined;
    secretAccessKey: string | undefined;
    forcePathStyle: boolean;
    /** Create the bucket when it is missing; off for credentials that may not create buckets. */
    createBucket: boolean;
  };
  /** Base of every absolute link darkroom hands out; unset means the server's own address. */
  publicUrl: string | undefined;
  signedUrlTtlSeconds: number;
  /** HMAC key for filesystem links; unset means a key generated once and kept in `dataDir`. */
  signingSecret: string | undefined;
  defaultProvider: string;
  /**
   * The configured providers' settings by provider name, as each module read them (a provider whose
   * credentials are unset is absent). The mock is always here.
   */
  providers: Record<string, unknown>;
  /** Longest a single call to a provider may take before it counts as a (retryable) timeout. */
  providerTimeoutMs: number;
  /** Largest image darkroom downloads or decodes from a provider. */
  providerMaxImageBytes: number;
  workerConcurrency: number;
  /** How many times a job is started before a retryable failure becomes final. */
  jobMaxAttempts: number;
  /** First retry delay; later ones double, with jitter, up to `retryMaxDelayMs`. */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** How often the reconciler looks for unfinished jobs whose queue entry was lost. */
  reconcileIntervalMs: number;
  /** How long an unfinished job must be untouched before the reconciler enqueues it again. */
  reconcileStaleMs: number;
  /** How long running steps may take to finish after SIGINT/SIGTERM before the process exits. */
  shutdownGraceMs: number;
  /**
   * How long a job turn's lease lasts unless renewed, and with it BullMQ's lock on the entry being
   * run: how long the jobs of a worker that died stay with it before another worker takes them over.
   */
  jobLeaseMs: number;
  bodyLimitBytes: number;
  /** How often an idle server-sent event stream gets a heartbeat comment, so proxies keep it open. */
  sseHeartbeatMs: number;
  /** How long the OpenAI dialect holds a request open for its job before answering 504 with the job id. */
  openaiWaitMs: number;
  /** Bull Board at /admin/queues (BullMQ queues only); needs adminApiKey. */
  bullBoard: boolean;
  /** The operator's key: an admin credential that needs no database row (Bearer, or Basic with any user name). */
  adminApiKey: string | undefined;
  /** A Bearer token that reads /metrics (admin keys do too): for a Prometheus scraper that should hold nothing else. */
  metricsToken: string | undefined;
  /**
   * off: no credentials, one shared space. optional: guests (one per client IP) or a valid key.
   * required: a valid key on every API route.
   */
  auth: 'off' | 'optional' | 'required';
  /** Requests per key (guests: per IP) per window; unset: no limit. */
  rateLimits: { generate: RateLimit | undefined; read: RateLimit | undefined };
  /** Queued plus running jobs one key (or guest) may have; unset: no cap. A key may carry its own. */
  maxActiveJobsPerKey: number | undefined;
  /** Jobs one batch may hold, for every key unless a key carries its own (never above 100). */
  maxBatchSize: number;
  /** Fastify's trustProxy: whether X-Forwarded-For names the client (true, a hop count, or trusted addresses). */
  trustProxy: boolean | number | string[];
  /** PROVIDER_PRICES and PRICE_CURRENCY: what jobs cost on each provider. */
  pricing: Pricing;
  /** RETAIN_*: how long things are kept, in ms; undefined keeps them for ever. */
  retention: { imagesMs?: number; jobsMs?: number; deliveriesMs?: number };
  inputs: {
    /** Largest input image, uploaded, fetched or inline (UPLOAD_MAX_BYTES). */
    maxBytes: number;
    /** How long an upload lives unless a job uses it. */
    uploadTtlSeconds: number;
    /** Longest fetch of an input image's URL. */
    fetchTimeoutMs: number;
    /** Lets input URLs (and webhooks) reach loopback, private and link-local addresses. */
    allowPrivate: boolean;
  };
  webhooks: {
    /** Standard Webhooks signing secret (`whsec_…`); unset means one generated once and kept in `dataDir`. */
    secret: string | undefined;
    /** How long a delivery is retried before it is given up (0: one attempt). */
    retryHours: number;
    /** First retry delay; later ones double, with jitter, up to `retryMaxDelayMs`. */
    retryBaseDelayMs: number;
    retryMaxDelayMs: number;
    /** Longest one attempt may take, from connecting to the answer's status. */
    timeoutMs: number;
    /** Attempts in flight at once per worker process, apart from job work. */
    concurrency: number;
    /** Lets webhooks go to loopback, private and link-local addresses (a trusted network, tests). */
    allowPrivate: boolean;
  };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** LOG_FILE: the same JSON lines in a rotated file as well as on stdout. */
  logFile?: { path: string; rotate: string; keep: number };
}

export interface RateLimit {
  max: number;
  windowMs: number;
  /** As configured ("10/hour"), for messages. */
  text: string;
}

const RATE_WINDOWS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000 };

/** The Standard Webhooks secret form: `whsec_` and base64 of 24–64 bytes. */
function isWebhookSecret(value: string): boolean {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
  if (!match?.[1] || match[1].length % 4 !== 0) return false;
  const bytes = Buffer.from(match[1], 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Reads `.env` in the working directory, if any; real environment variables win over it. */
export function readEnvironment(cwd = process.cwd()): Env {
  const file = `${cwd}/.env`;
  const fromFile = existsSync(file) ? parseDotenv(readFileSync(file)) : {};
  return { ...fromFile, ...process.env };
}

export function loadConfig(env: Env = readEnvironment()): Config {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${name}="${raw}" must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };

  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name}="${raw}" must be one of: ${allowed.join(', ')}`);
      return fallback;
    }
    return raw as T;
  };

  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    problems.push(`${name}="${raw}" must be true or false`);
    return fallback;
  };

  const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  /** A duration such as `90s`, `15m`, `12h` or `30d`; unset means for ever. */
  const duration = (name: string): number | undefined => {
    const raw = read(name);
    if (raw === undefined) return undefined;
    const match = /^(\d{1,6})([smhd])$/.exec(raw);
    if (!match || Number(match[1]) === 0) {
      problems.push(`${name}="${raw}" must be a duration such as 90s, 15m, 12h or 30d (unset keeps for ever)`);
      return undefined;
    }
    return Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
  };

  const SHORT_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  /** A duration such as `30s`, `500ms` or `5m` (a bare number is milliseconds), from `min` to `max` ms. */
  const shortDuration = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const match = /^(\d{1,9})(ms|s|m|h)?$/.exec(raw);
    const value = match ? Number(match[1]) * (SHORT_UNITS[match[2] ?? 'ms'] as number) : Number.NaN;
    if (!(value >= min && value <= max)) {
      problems.push(`${name}="${raw}" must be a duration from ${min} ms to ${max / 1000} s, such as 30s, 500ms or 2m`);
      return fallback;
    }
    return value;
  };

  /** "runpod>comfyui>mock,civitai>runpod": each chain's first provider and where its jobs go next. */
  const fallbackChains = (): Record<string, string[]> => {
    const raw = read('PROVIDER_FALLBACK');
    if (raw === undefined) return {};
    const chains: Record<string, string[]> = {};
    for (const text of raw.split(',')) {
      const names = text.split('>').map((name) => name.trim());
      const [first, ...rest] = names;
      if (!first || rest.length === 0 || names.some((name) => !/^[a-z0-9_-]{1,64}$/.test(name))) {
        problems.push(`PROVIDER_FALLBACK="${raw}" must be chains of provider names joined by ">", separated by commas, like "runpod>comfyui>mock,civitai>runpod"`);
        return {};
      }
      if (new Set(names).size !== names.length) problems.push(`PROVIDER_FALLBACK: the chain "${text.trim()}" names a provider twice`);
      if (first in chains) problems.push(`PROVIDER_FALLBACK: two chains start with "${first}"; a provider has one chain`);
      chains[first] = rest;
    }
    return chains;
  };

  const prices = (): Pricing => {
    const currency = read('PRICE_CURRENCY') ?? 'USD';
    if (!/^[A-Z]{3}$/.test(currency)) problems.push(`PRICE_CURRENCY="${currency}" must be a three-letter currency code such as USD`);
    const parsed = parsePrices(read('PROVIDER_PRICES') ?? '');
    if ('problem' in parsed) {
      problems.push(`PROVIDER_PRICES: ${parsed.problem}`);
      return { currency, rules: [] };
    }
    return { currency, rules: parsed.rules };
  };

  /** LOG_FILE and how it rotates: LOG_FILE_ROTATE is daily, hourly or a size (`50m`, `500k`, `1g`). */
  const logFile = (): Config['logFile'] => {
    const path = read('LOG_FILE');
    const rotate = read('LOG_FILE_ROTATE') ?? 'daily';
    const keep = integer('LOG_FILE_KEEP', 14, 1, 1000);
    if (!['daily', 'hourly'].includes(rotate) && !/^\d+[kmg]$/.test(rotate)) {
      problems.push(`LOG_FILE_ROTATE="${rotate}" must be daily, hourly or a size such as 50m, 500k or 1g`);
    }
    return path === undefined ? undefined : { path, rotate, keep };
  };

  const url = (name: string, protocols: string[]): string | undefined => {
    const raw = read(name);
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) throw new Error('protocol');
      return raw.replace(/\/+$/, '');
    } catch {
      problems.push(`${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);
      return undefined;
    }
  };

  const fraction = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) {
      problems.push(`${name}="${raw}" must be a number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };

  // What provider modules read their own variables through (core/ports/provider.ts).
  const settings: SettingsReader = {
    text: ((name: string, fallback?: string) => read(name) ?? fallback) as SettingsReader['text'],
    integer,
    number: fraction,
    oneOf,
    url: ((name: string, fallback?: string) => url(name, ['http:', 'https:']) ?? fallback) as SettingsReader['url'],
    problem: (message) => problems.push(message),
  };
  const providers: Record<string, unknown> = {};
  for (const module of PROVIDER_MODULES) {
    const configured = module.settings(settings);
    if (configured !== undefined) providers[module.name] = configured;
  }

  const rateLimit = (name: string): RateLimit | undefined => {
    const raw = read(name);
    if (raw === undefined) return undefined;
    const match = /^(\d+)\s*\/\s*(second|minute|hour)$/i.exec(raw);
    const max = Number(match?.[1]);
    if (!match?.[2] || max < 1 || max > 1_000_000) {
      problems.push(`${name}="${raw}" must be requests per window: "N/second", "N/minute" or "N/hour" with N from 1 to 1000000`);
      return undefined;
    }
    const unit = match[2].toLowerCase();
    return { max, windowMs: RATE_WINDOWS[unit] as number, text: `${max}/${unit}` };
  };

  const trustProxy = (): boolean | number | string[] => {
    const raw = read('TRUST_PROXY');
    if (raw === undefined || raw.toLowerCase() === 'false') return false;
    if (raw.toLowerCase() === 'true') return true;
    if (/^\d+$/.test(raw)) return Number(raw);
    const addresses = raw.split(',').map((part) => part.trim()).filter((part) => part !== '');
    if (addresses.some((address) => !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(address))) {
      problems.push(`TRUST_PROXY="${raw}" must be true, false, a number of proxy hops, or a comma-separated list of proxy addresses or CIDRs`);
      return false;
    }
    return addresses;
  };

  const queue = oneOf('QUEUE', ['embedded', 'redis', 'postgres'] as const, 'embedded');
  const storage = oneOf('STORAGE', ['fs', 's3'] as const, 'fs');
  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:']);

  /** "civitai=4,runpod=8": one value per provider name; nothing (and a problem) when malformed. */
  const perProvider = <T>(name: string, parse: (value: string) => T | undefined, expected: string): Map<string, T> => {
    const values = new Map<string, T>();
    const raw = read(name);
    if (raw === undefined) return values;
    for (const item of raw.split(',')) {
      const match = /^\s*([A-Za-z0-9_-]+)\s*=\s*(\S+)\s*$/.exec(item);
      const value = match?.[2] === undefined ? undefined : parse(match[2]);
      if (!match?.[1] || value === undefined) {
        problems.push(`${name}="${raw}" must be ${expected}`);
        return new Map();
      }
      values.set(match[1], value);
    }
    return values;
  };

  const providerLimits = (): Config['providerLimits'] => {
    const concurrency = perProvider(
      'PROVIDER_CONCURRENCY',
      (value) => (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 10_000 ? Number(value) : undefined),
      'provider=jobs pairs with 1 to 10000 jobs at once, like "civitai=4,runpod=8"',
    );
    const periodMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    const rateLimit = perProvider(
      'PROVIDER_RATE_LIMIT',
      (value) => {
        const match = /^(\d+)\/(\d*)(ms|s|m|h)$/.exec(value);
        if (!match?.[3]) return undefined;
        const max = Number(match[1]);
        const durationMs = Number(match[2] || 1) * periodMs[match[3] as keyof typeof periodMs];
        return max >= 1 && durationMs >= 1 ? { max, durationMs } : undefined;
      },
      'provider=jobs/period pairs, like "civitai=10/s,runpod=100/m" (periods: ms, s, m, h, with an optional count: "5/250ms")',
    );
    const limits: Config['providerLimits'] = {};
    for (const provider of new Set([...concurrency.keys(), ...rateLimit.keys()])) {
      limits[provider] = { concurrency: concurrency.get(provider), rateLimit: rateLimit.get(provider) };
    }
    return limits;
  };

  /**
   * How long an upload lives: RETAIN_UPLOADS (a duration, like the other RETAIN_* variables) or
   * UPLOAD_TTL (seconds), two names for one setting. Uploads are temporary by design, so unset means
   * a day, not for ever; both set to different times is refused rather than one silently winning.
   */
  const uploadTtlSeconds = (): number => {
    const maxSeconds = 30 * 24 * 3600;
    const ttl = integer('UPLOAD_TTL', 24 * 3600, 1, maxSeconds);
    const retainMs = duration('RETAIN_UPLOADS');
    if (retainMs === undefined) return ttl;
    if (retainMs > maxSeconds * 1000) problems.push(`RETAIN_UPLOADS="${read('RETAIN_UPLOADS')}" must be at most 30d`);
    else if (read('UPLOAD_TTL') !== undefined && retainMs !== ttl * 1000) {
      problems.push(`RETAIN_UPLOADS="${read('RETAIN_UPLOADS')}" and UPLOAD_TTL="${read('UPLOAD_TTL')}" both say how long an upload lives, and disagree; set one of them`);
    }
    return Math.min(retainMs, maxSeconds * 1000) / 1000;
  };

  // One switch for every URL a client gives darkroom to call or fetch: input images and webhooks.
  const allowPrivateUrls = boolean('ALLOW_PRIVATE_URLS', false);
  const config: Config = {
    port: integer('PORT', 3000, 0, 65535),
    host: read('HOST') ?? '127.0.0.1',
    dataDir: read('DATA_DIR') ?? './data',
    databaseUrl,
    queue,
    redisUrl,
    queueName: read('QUEUE_NAME') ?? 'darkroom',
    fairShareQuantum: integer('FAIR_SHARE_QUANTUM', 1, 1, 1000),
    providerLimits: providerLimits(),
    providerFallback: fallbackChains(),
    failoverAfterAttempts: integer('FAILOVER_AFTER_ATTEMPTS', 2, 1, 100),
    circuit: { failures: integer('CIRCUIT_FAILURES', 5, 1, 1000), cooldownMs: shortDuration('CIRCUIT_COOLDOWN', 30_000, 100, 24 * 3_600_000) },
    storage,
    s3: {
      endpoint: url('S3_ENDPOINT', ['http:', 'https:']),
      publicEndpoint: url('S3_PUBLIC_ENDPOINT', ['http:', 'https:']),
      region: read('S3_REGION') ?? 'us-east-1',
      bucket: read('S3_BUCKET'),
      accessKeyId: read('S3_ACCESS_KEY_ID'),
      secretAccessKey: read('S3_SECRET_ACCESS_KEY'),
      forcePathStyle: boolean('S3_FORCE_PATH_STYLE', false),
      createBucket: boolean('S3_CREATE_BUCKET', true),
    },
    publicUrl: url('PUBLIC_URL', ['http:', 'https:']),
    signedUrlTtlSeconds: integer('SIGNED_URL_TTL', 3600, 1, 7 * 24 * 3600),
    signingSecret: read('SIGNING_SECRET'),
    defaultProvider: read('DEFAULT_PROVIDER') ?? 'mock',
    providers,
    providerTimeoutMs: integer('PROVIDER_TIMEOUT_MS', 60_000, 100, 3_600_000),
    providerMaxImageBytes: integer('PROVIDER_MAX_IMAGE_BYTES', 50 * 1_048_576, 1024, 1024 * 1_048_576),
    workerConcurrency: integer('WORKER_CONCURRENCY', 4, 0, 1000),
    jobMaxAttempts: integer('JOB_MAX_ATTEMPTS', 5, 1, 100),
    retryBaseDelayMs: integer('RETRY_BASE_DELAY_MS', 1000, 1, 3_600_000),
    retryMaxDelayMs: integer('RETRY_MAX_DELAY_MS', 60_000, 1, 24 * 3_600_000),
    reconcileIntervalMs: integer('RECONCILE_INTERVAL_MS', 5000, 50, 3_600_000),
    reconcileStaleMs: integer('RECONCILE_STALE_MS', 20_000, 100, 24 * 3_600_000),
    shutdownGraceMs: integer('SHUTDOWN_GRACE_MS', 10_000, 0, 3_600_000),
    jobLeaseMs: integer('JOB_LEASE_MS', 4000, 500, 600_000),
    bodyLimitBytes: integer('BODY_LIMIT_BYTES', 1_048_576, 1024, 100 * 1_048_576),
    sseHeartbeatMs: integer('SSE_HEARTBEAT_MS', 15_000, 10, 3_600_000),
    openaiWaitMs: integer('OPENAI_WAIT_MS', 300_000, 100, 540_000),
    bullBoard: boolean('BULL_BOARD', false),
    adminApiKey: read('ADMIN_API_KEY'),
    metricsToken: read('METRICS_TOKEN'),
    auth: oneOf('AUTH', ['off', 'optional', 'required'] as const, 'optional'),
    rateLimits: { generate: rateLimit('RATE_LIMIT_GENERATE'), read: rateLimit('RATE_LIMIT_READ') },
    maxActiveJobsPerKey: read('MAX_ACTIVE_JOBS_PER_KEY') === undefined ? undefined : integer('MAX_ACTIVE_JOBS_PER_KEY', 0, 1, 1_000_000),
    maxBatchSize: integer('MAX_BATCH_SIZE', 100, 1, 100),
    trustProxy: trustProxy(),
    pricing: prices(),
    retention: { imagesMs: duration('RETAIN_IMAGES'), jobsMs: duration('RETAIN_JOBS'), deliveriesMs: duration('RETAIN_DELIVERIES') },
    inputs: {
      maxBytes: integer('UPLOAD_MAX_BYTES', 20 * 1_048_576, 1024, 100 * 1_048_576),
      uploadTtlSeconds: uploadTtlSeconds(),
      fetchTimeoutMs: integer('INPUT_FETCH_TIMEOUT_MS', 15_000, 100, 300_000),
      allowPrivate: allowPrivateUrls,
    },
    webhooks: {
      secret: read('WEBHOOK_SECRET'),
      retryHours: integer('WEBHOOK_RETRY_HOURS', 24, 0, 24 * 30),
      retryBaseDelayMs: integer('WEBHOOK_RETRY_BASE_DELAY_MS', 5000, 1, 3_600_000),
      retryMaxDelayMs: integer('WEBHOOK_RETRY_MAX_DELAY_MS', 3_600_000, 1, 24 * 3_600_000),
      timeoutMs: integer('WEBHOOK_TIMEOUT_MS', 10_000, 100, 300_000),
      concurrency: integer('WEBHOOK_CONCURRENCY', 8, 1, 1000),
      allowPrivate: boolean('WEBHOOK_ALLOW_PRIVATE', false) || allowPrivateUrls,
    },
    logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    logFile: logFile(),
  };

  const configuredNames = Object.keys(providers);
  for (const name of new Set(Object.entries(config.providerFallback).flatMap(([first, rest]) => [first, ...rest]))) {
    if (!(name in providers)) {
      problems.push(`PROVIDER_FALLBACK names "${name}", which is not a configured provider (configured: ${configuredNames.join(', ')}); set its credentials or leave it out`);
    }
  }
  if (config.signingSecret !== undefined && config.signingSecret.length < 32) {
    problems.push('SIGNING_SECRET must be at least 32 characters');
  }
  if (queue === 'redis' && !redisUrl) problems.push('QUEUE=redis needs REDIS_URL');
  if (queue === 'postgres' && !databaseUrl) problems.push('QUEUE=postgres needs DATABASE_URL');
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(config.queueName)) {
    problems.push(`QUEUE_NAME="${config.queueName}" must be 1 to 100 letters, digits, dots, dashes or underscores`);
  }
  if (storage === 's3' && !config.s3.bucket) problems.push('STORAGE=s3 needs S3_BUCKET');
  if (storage === 's3' && Boolean(config.s3.accessKeyId) !== Boolean(config.s3.secretAccessKey)) {
    problems.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together');
  }
  if (config.adminApiKey !== undefined && config.adminApiKey.length < 16) problems.push('ADMIN_API_KEY must be at least 16 characters');
  if (config.bullBoard && !config.adminApiKey) problems.push('BULL_BOARD=true needs ADMIN_API_KEY, which protects /admin/queues');
  if (config.bullBoard && queue === 'embedded') problems.push('BULL_BOARD=true needs QUEUE=redis or QUEUE=postgres (Bull Board shows BullMQ queues)');
  if (config.retryMaxDelayMs < config.retryBaseDelayMs) {
    problems.push('RETRY_MAX_DELAY_MS must not be smaller than RETRY_BASE_DELAY_MS');
  }
  // The value is a secret: the message says what is wrong with it, never what it is.
  if (config.webhooks.secret !== undefined && !isWebhookSecret(config.webhooks.secret)) {
    problems.push('WEBHOOK_SECRET must be "whsec_" followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))');
  }
  if (config.webhooks.retryMaxDelayMs < config.webhooks.retryBaseDelayMs) {
    problems.push('WEBHOOK_RETRY_MAX_DELAY_MS must not be smaller than WEBHOOK_RETRY_BASE_DELAY_MS');
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** What the CLI's client commands (generate, jobs, open, and keys through a server) read: which darkroom to talk to, and as whom. */
export interface ClientConfig {
  /** The darkroom to talk to; unset means this machine's server (PUBLIC_URL, or HOST and PORT). */
  serverUrl: string | undefined;
  /** Sent as `Authorization: Bearer`; unset sends none. */
  apiKey: string | undefined;
  /** ADMIN_API_KEY, which `darkroom keys` sends to a running server before DARKROOM_API_KEY. */
  adminApiKey: string | undefined;
}

/**
 * The client side of the configuration. It checks only its own variables, so that a client whose
 * environment has nothing of a server's (or a broken one) still works with an explicit server.
 */
export function loadClientConfig(env: Env = readEnvironment()): ClientConfig {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const serverUrl = read('DARKROOM_URL');
  if (serverUrl !== undefined && !isHttpUrl(serverUrl)) {
    throw new ConfigError(['DARKROOM_URL must be a URL starting with http:// or https://']);
  }
  return { serverUrl, apiKey: read('DARKROOM_API_KEY'), adminApiKey: read('ADMIN_API_KEY') };
}

export function isHttpUrl(value: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}
