/**
 * The queue port: how the core hands job ids to workers. The database stays the system of record;
 * the queue only says "look at job X (not before T)". Delivery is at least once, so handlers read the
 * job row first and act on what it says.
 *
 * Glossary
 * - entry: one pending delivery of a job id. A job id has at most one entry at a time.
 * - delay: an entry becomes deliverable only after it (polling, retry backoff).
 * - priority: higher is delivered first among deliverable entries.
 */
export interface EnqueueOptions {
  priority: number;
  delayMs?: number;
  /** The provider the job runs on: adapters that limit concurrency or rate per provider key on it. */
  group?: string;
}

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
