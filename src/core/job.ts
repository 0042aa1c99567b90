import type { JobCost, TokenUsage } from './pricing.ts';
import type { GenerationRequest } from './request.ts';

/**
 * Glossary
 * - job: one text-to-image request and its lifecycle; the database row is the system of record.
 * - status: where the job is in its lifecycle (see TRANSITIONS).
 * - stage: what a running job is doing right now.
 * - attempt: one start of the job (queued → running); a retryable failure returns it to queued.
 * - provider job id: the upstream's id for the submission; once saved, the job only ever polls it.
 */
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const JOB_STAGES = ['submitting', 'waiting_upstream', 'storing'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'expired'];
export const ACTIVE_STATUSES: readonly JobStatus[] = ['queued', 'running'];

/** Every legal status change. Anything not listed is refused by `assertTransition`. */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['running', 'cancelled', 'expired', 'failed'],
  running: ['queued', 'succeeded', 'failed', 'cancelled', 'expired'],
  succeeded: [],
  failed: [],
  cancelled: [],
  expired: [],
};

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: JobStatus,
    readonly to: JobStatus,
  ) {
    super(`A job cannot go from ${from} to ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export function assertTransition(from: JobStatus, to: JobStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

export interface JobError {
  code: string;
  message: string;
  retryable: boolean;
}

/** Where the time of a job went, in milliseconds, for the orchestration-overhead figures. */
export interface JobTimings {
  /** Inside provider calls (submit, poll, downloads). */
  providerMs: number;
  /** Decoding originals and making thumbnails. */
  imageMs: number;
  /** Writing objects to storage. */
  storageMs: number;
}

/**
 * One provider a job was on: from which of its attempts (the job's `attempts` when it moved there)
 * and since when. The last stint is the current provider's.
 */
export interface ProviderStint {
  provider: string;
  /** The job's `attempts` when it came to this provider: attempts on it are counted from there. */
  since: number;
  /** ISO time of the move (of the creation for the first stint). */
  at: string;
  /**
   * The upstream job the job left on this provider, until it is cancelled there: nothing is
   * submitted to another provider while one is set (invariant 7).
   */
  cancel?: string;
}

export interface Job {
  id: string;
  owner: string | null;
  batchId: string | null;
  dialect: string;
  status: JobStatus;
  stage: JobStage | null;
  progress: number | null;
  queuePosition: number | null;
  priority: number;
  provider: string;
  providerJobId: string | null;
  /**
   * Whether the job may move along its provider's fallback chain (PROVIDER_FALLBACK): true unless the
   * caller named the provider without asking for `fallback`.
   */
  fallback: boolean;
  /** Every provider the job has been on, the current one last (empty for jobs stored before failover existed). */
  providerHistory: ProviderStint[];
  request: GenerationRequest;
  dialectData: Record<string, unknown>;
  attempts: number;
  maxAttempts: number;
  error: JobError | null;
  timings: JobTimings;
  runAfter: Date;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  deadlineAt: Date | null;
  /** When the job's images were removed by retention (RETAIN_IMAGES); null while they exist. */
  imagesExpiredAt: Date | null;
  /** What the job is expected to cost and, once it ended, what it cost; null on an unpriced provider. */
  cost: JobCost | null;
  /** The tokens the provider reported for the job (OpenAI's GPT image models), once it succeeded; null when it reported none. */
  usage: TokenUsage | null;
}

export interface JobImage {
  id: string;
  jobId: string;
  index: number;
  originalKey: string;
  thumbnailKey: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  seed: number | null;
  createdAt: Date;
}

/** `failover`: the job moved to another provider (data: from, to, reason). */
export type JobEventType = 'created' | 'status' | 'stage' | 'progress' | 'image' | 'failover';

export interface JobEvent {
  id: number;
  jobId: string;
  type: JobEventType;
  status: JobStatus;
  stage: JobStage | null;
  data: Record<string, unknown>;
  createdAt: Date;
}
