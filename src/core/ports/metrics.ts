import type { Job } from '../job.ts';

/** What retention removes. */
export type RemovedKind = 'images' | 'jobs' | 'deliveries' | 'uploads' | 'idempotency_keys';

/** How a provider call failed, as metrics count it. */
export type ProviderErrorClass = 'retryable' | 'permanent' | 'timeout' | 'rate_limited';

/**
 * What darkroom counts for monitoring. Each process counts what it did; figures that must be
 * global (the queue's depth) are read from the shared store when scraped.
 */
export interface Metrics {
  /** A job reached a terminal status in this process. */
  jobFinished(job: Job): void;
  providerError(provider: string, kind: ProviderErrorClass): void;
  webhookAttempt(outcome: 'delivered' | 'failed' | 'retry'): void;
  httpRequest(dialect: string, status: number, seconds: number): void;
  /** Retention removed `count` things of `kind`. */
  retentionRemoved(kind: RemovedKind, count: number): void;
}

/** Counts nothing: for code paths built without monitoring (unit tests of one part). */
export const NO_METRICS: Metrics = {
  jobFinished: () => undefined,
  providerError: () => undefined,
  webhookAttempt: () => undefined,
  httpRequest: () => undefined,
  retentionRemoved: () => undefined,
};

/** The class of a provider failure from its code and retry meaning. */
export function errorClass(error: { code: string; retryable: boolean; retryAfterMs?: number }): ProviderErrorClass {
  if (error.code === 'rate_limited' || error.retryAfterMs !== undefined) return 'rate_limited';
  if (error.code.includes('timeout')) return 'timeout';
  return error.retryable ? 'retryable' : 'permanent';
}
