import { ProviderError } from '../../core/errors.ts';
import type { PollResult, Provider, ProviderJobRef, ProviderModule, SettingsReader } from '../../core/ports/provider.ts';
import { imageTokens, textTokens, type TokenUsage } from '../../core/pricing.ts';
import { DEFAULT_STRENGTH, inputOf, referencesOf, type GenerationRequest } from '../../core/request.ts';
import { blendWithInit, renderMockImage } from './image.ts';

export interface MockProviderOptions {
  latencyMs: { min: number; max: number };
  /** Share of submissions that fail: a third each are retryable submit errors, permanent rejections, and worker failures. */
  failureRate: number;
  /** Report token usage as OpenAI's GPT image models do (MOCK_USAGE), for token prices and the OpenAI dialect's `usage`. */
  usage?: boolean;
  random?: () => number;
  now?: () => number;
}

/** Everything the mock needs to answer a poll, carried in its provider job id so a restarted process can resume. */
interface MockTicket {
  /** submitted at (epoch ms) */
  t: number;
  /** latency chosen for this job (ms) */
  l: number;
  /** seed of the first image */
  s: number;
  /** 1 when this job fails on the "worker" when it completes */
  f: 0 | 1;
  /** uniqueness */
  n: number;
}

const PREFIX = 'mock-';
const MAX_SEED = 4294967295;

function encodeTicket(ticket: MockTicket): string {
  return PREFIX + Buffer.from(JSON.stringify(ticket)).toString('base64url');
}

function decodeTicket(providerJobId: string): MockTicket {
  try {
    if (!providerJobId.startsWith(PREFIX)) throw new Error('prefix');
    const ticket = JSON.parse(Buffer.from(providerJobId.slice(PREFIX.length), 'base64url').toString()) as MockTicket;
    if (![ticket.t, ticket.l, ticket.s, ticket.n].every(Number.isFinite)) throw new Error('fields');
    return ticket;
  } catch {
    throw new ProviderError(`The mock provider has no job ${providerJobId}`, {
      code: 'upstream_job_not_found',
      retryable: true,
      resubmit: true,
    });
  }
}

/**
 * The built-in provider: no GPU, no network. It renders deterministic pictures (see image.ts),
 * takes `latencyMs` to "generate", and injects failures at `failureRate` so every retry path runs.
 */
export function makeMockProvider(options: MockProviderOptions): Provider {
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const cancelled = new Set<string>();

  return {
    name: 'mock',
    // A workflow job's parameters describe its graph (the dialect that took it read them from it): the mock renders those.
    capabilities: { textToImage: true, imageToImage: true, inpainting: true, references: true, workflows: true },

    async submit(request) {
      if (random() < options.failureRate) {
        const kind = random();
        if (kind < 1 / 3) {
          throw new ProviderError('Mock upstream answered 503 Service Unavailable', {
            code: 'upstream_unavailable',
            retryable: true,
          });
        }
        if (kind < 2 / 3) {
          throw new ProviderError('Mock upstream rejected the request: prompt refused by content policy', {
            code: 'rejected',
            retryable: false,
          });
        }
        return { providerJobId: encodeTicket(ticketFor(request.seed, 1)) };
      }
      return { providerJobId: encodeTicket(ticketFor(request.seed, 0)) };
    },

    async poll(job: ProviderJobRef, context): Promise<PollResult> {
      const ticket = decodeTicket(job.providerJobId);
      if (cancelled.has(job.providerJobId)) return { state: 'cancelled' };
      const elapsed = now() - ticket.t;
      if (elapsed < ticket.l) {
        return { state: 'running', progress: elapsed / ticket.l, nextPollMs: Math.min(ticket.l - elapsed, 1000) };
      }
      if (ticket.f === 1) {
        throw new ProviderError('Mock worker crashed while generating (CUDA out of memory)', {
          code: 'worker_failed',
          retryable: true,
          resubmit: true,
        });
      }
      const { prompt, width, height, numImages, strength = DEFAULT_STRENGTH } = job.request;
      const init = inputOf(job.request, 'init');
      const mask = inputOf(job.request, 'mask');
      const [initBytes, maskBytes] = await Promise.all([init && context.readInput(init), mask && context.readInput(mask)]);
      // References change the picture as a prompt would: different references, different compositions.
      const references = referencesOf(job.request).map((reference) => reference.sha256);
      const subject = references.length > 0 ? `${prompt}\u0000${references.join(',')}` : prompt;
      const outputs = await Promise.all(
        Array.from({ length: numImages }, async (_, index) => {
          const seed = (ticket.s + index) % (MAX_SEED + 1);
          const own = await renderMockImage(subject, seed, width, height);
          const bytes = initBytes ? await blendWithInit(own, initBytes, maskBytes, strength, width, height) : own;
          return { bytes, contentType: 'image/png', seed };
        }),
      );
      return options.usage ? { state: 'succeeded', outputs, usage: usageOf(job.request) } : { state: 'succeeded', outputs };
    },

    async cancel(job) {
      cancelled.add(job.providerJobId);
    },

    async check() {
      return { ok: true, detail: 'The mock provider runs in-process' };
    },
  };

  /** Tokens counted the way darkroom estimates them: the prompt's text, the pixels of the input images and of the outputs. */
  function usageOf(request: GenerationRequest): TokenUsage {
    const inputTextTokens = textTokens(request.prompt);
    const inputImageTokens = (request.inputs ?? []).reduce((sum, input) => sum + imageTokens(input.width, input.height), 0);
    const outputTokens = imageTokens(request.width, request.height) * request.numImages;
    return { inputTokens: inputTextTokens + inputImageTokens, outputTokens, inputTextTokens, inputImageTokens };
  }

  function ticketFor(seed: number | undefined, fails: 0 | 1): MockTicket {
    const { min, max } = options.latencyMs;
    return {
      t: now(),
      l: Math.round(min + random() * (max - min)),
      s: seed ?? Math.floor(random() * (MAX_SEED + 1)),
      f: fails,
      n: Math.floor(random() * 1e9),
    };
  }
}

type MockSettings = Pick<MockProviderOptions, 'latencyMs' | 'failureRate' | 'usage'>;

const DEFAULT_LATENCY_MS = { min: 1500, max: 4000 };

/** MOCK_LATENCY_MS: milliseconds ("2000") or a range ("500-3000"). */
function latency(read: SettingsReader): MockSettings['latencyMs'] {
  const raw = read.text('MOCK_LATENCY_MS');
  if (raw === undefined) return DEFAULT_LATENCY_MS;
  const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(raw);
  const min = Number(match?.[1]);
  const max = match?.[2] === undefined ? min : Number(match[2]);
  if (!match || max < min || max > 3_600_000) {
    read.problem(`MOCK_LATENCY_MS="${raw}" must be milliseconds ("2000") or a range ("500-3000") up to 3600000`);
    return DEFAULT_LATENCY_MS;
  }
  return { min, max };
}

/** The mock is always configured: it is what darkroom runs on when nothing else is set up. */
export const mockProviderModule: ProviderModule<MockSettings> = {
  name: 'mock',
  settings: (read) => ({
    latencyMs: latency(read),
    failureRate: read.number('MOCK_FAILURE_RATE', 0, 0, 1),
    usage: read.oneOf('MOCK_USAGE', ['true', 'false'] as const, 'false') === 'true',
  }),
  create: (settings, shared) => makeMockProvider({ ...settings, random: shared.random }),
};
