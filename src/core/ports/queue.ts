/**
 * The queue port: how the core hands job ids to workers. The database stays the system of record;
 * the queue only says "look at job X (not before T)". Delivery is at least once, so handlers read the
 * job row first and act on what it says.
 *
 * Glossary
 * - entry: one pending delivery of a job id. A job id has at most one entry at a time.
 * - delay: an entry becomes deliverable only after it (polling, retry backoff).
 * - priority: higher is delivered first among deliverable entries.
 * - owner: whose job an entry is, for a job's first start. Among deliverable entries of one priority,
 *   owners take turns (round-robin), so one owner's backlog does not hold back the others.
 * - continuation: an entry without an owner, a turn of a job that has started already (a poll, a
 *   retry, a lease recheck). It is delivered by priority and due time alone, never behind an owner's turn.
 */
export interface EnqueueOptions {
  priority: number;
  delayMs?: number;
  /** The provider the job runs on: adapters that limit concurrency or rate per provider key on it. */
  group?: string;
  /**
   * Whose job it is (its owner, or one shared name for jobs without one), on the entry of a job that
   * has not started: it then starts in its owner's turn. Omitted for continuations.
   */
  owner?: string;
}

/**
 * The queue entry of a stored job: its priority and provider, and the owner while it has never
 * started (a retry or a resumed running job is a continuation of what already had its turn).
 */
export function entryOptions(job: { owner: string | null; priority: number; provider: string; startedAt: Date | null }, delayMs?: number): EnqueueOptions {
  return {
    priority: job.priority,
    group: job.provider,
    ...(delayMs === undefined ? {} : { delayMs }),
    ...(job.startedAt === null ? { owner: job.owner ?? SHARED_OWNER } : {}),
  };
}

/** The one owner of the jobs that have none (AUTH=off, darkroom's own work). */
export const SHARED_OWNER = 'shared';

/** What a handler asks for when it returns: nothing (the job needs no more turns) or another turn later. */
export type HandlerResult = { runAgainInMs: number } | undefined;

export type JobHandler = (jobId: string) => Promise<HandlerResult>;

export interface QueueStats {
  /** Deliverable now, waiting for a free worker slot. */
  waiting: number;
  /** Scheduled for later (polls, retries). */
  delayed: number;
  /** Being handled right now. */
  active: number;
}

export interface Consumer {
  /** Stops taking new entries and waits up to `graceMs` for running handlers. Idempotent. */
  stop(graceMs: number): Promise<void>;
}

export interface JobQueue {
  readonly kind: string;
  /**
   * Schedules a delivery of `jobId`. Idempotent: if the id already has an entry, the sooner of the
   * two runs is kept; if it is being handled, it is delivered again after the handler returns.
   */
  enqueue(jobId: string, options: EnqueueOptions): Promise<void>;
  /** Drops the pending entry of `jobId`, if any (a running handler finishes its turn). */
  remove(jobId: string): Promise<void>;
  consume(handler: JobHandler, options: { concurrency: number; onError: (error: unknown, jobId: string) => void }): Consumer;
  stats(): Promise<QueueStats>;
  ping(): Promise<void>;
  /** Releases timers and connections. Idempotent. */
  close(): Promise<void>;
}
