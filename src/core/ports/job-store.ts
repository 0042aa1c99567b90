import type { Job, JobEvent, JobEventType, JobImage, JobStatus } from '../job.ts';

/**
 * The job store port: the system of record for jobs, their images, their event history and the
 * live workers. The database adapter (src/db) implements it.
 *
 * Contract
 * - Status changes are compare-and-set: `transition` changes a job only while its status is one of
 *   `from`, so when two actors race exactly one of them wins; the loser gets null.
 * - Every status change, stage change and stored image is one `job_events` row written in the same
 *   transaction as the change it records; event ids increase in commit order per job.
 * - `succeed` replaces an image with the same (job, index), so a retried store never doubles.
 * - Leases (invariant 6): a turn of a job first takes the job's lease with `acquireLease`, which
 *   succeeds only while no other turn holds an unexpired one, and answers a fencing token that
 *   increases with every acquisition. The turn passes the token to each of its writes
 *   (`transition`, `update`, `succeed`), which then also require the job's current token to be
 *   that one: once another turn has taken the lease over, the old turn's writes change nothing and
 *   answer null (false). The holder renews the lease (`renewLease`) well before it expires and
 *   releases it (`releaseLease`) when the turn ends. A lease expires on the database's clock, so
 *   processes on different machines agree on it. Writes without a token (a cancel requested through
 *   the API) are not fenced: they win against the holder, which sees its next write refused.
 */

/**
 * A lease's fencing token. Tokens of one job only grow, so a write carrying an older token than the
 * job's current one comes from a turn that lost the lease.
 */
export type LeaseToken = number;

/** What `acquireLease` found. */
export type LeaseClaim =
  /** The turn holds the lease until it expires (unless renewed) or it releases it. */
  | { outcome: 'acquired'; job: Job; token: LeaseToken }
  /** Another turn holds an unexpired lease on this queued or running job, for `expiresInMs` more at least. */
  | { outcome: 'held'; job: Job; expiresInMs: number }
  /** The job is missing or final: there is nothing to take a lease on. */
  | { outcome: 'finished'; job: Job | null };

/** A job as it is first stored. */
export type NewJob = Omit<
  Job,
  'stage' | 'progress' | 'queuePosition' | 'providerJobId' | 'attempts' | 'error' | 'timings' | 'runAfter' | 'createdAt' | 'updatedAt' | 'startedAt' | 'completedAt' | 'imagesExpiredAt' | 'cost' | 'usage' | 'fallback' | 'providerHistory'
> &
  Partial<Pick<Job, 'stage' | 'progress' | 'queuePosition' | 'providerJobId' | 'attempts' | 'error' | 'timings' | 'runAfter' | 'cost' | 'fallback' | 'providerHistory'>>;

/** An image row as the pipeline stores it. */
export type NewImage = Omit<JobImage, 'createdAt'>;

/** Columns a caller may change alongside (or without) a status change. */
export type JobPatch = Partial<
  Pick<Job, 'stage' | 'progress' | 'queuePosition' | 'providerJobId' | 'attempts' | 'error' | 'timings' | 'runAfter' | 'startedAt' | 'completedAt' | 'cost' | 'usage' | 'provider' | 'providerHistory'>
>;

export interface CountFilter {
  /** One owner's jobs (null: jobs without an owner); absent: everyone's. */
  owner?: string | null;
  dialect?: string;
  dialectData?: Record<string, unknown>;
  /** Only jobs not due before a time later than this (run_after > it): queued jobs waiting out a retry backoff. */
  scheduledAfter?: Date;
}

export interface EventInput {
  type: JobEventType;
  data?: Record<string, unknown>;
}

/** At most `max` queued or running jobs of `owner` once the insert commits. */
export interface ActiveCap {
  owner: string | null;
  max: number;
}

/** The spend of one owner in one period (`2026-12-06` for a day, `2026-12` for a month), and its limit. */
export interface BudgetCharge {
  owner: string;
  period: string;
  amount: number;
  /** What the rows being inserted are estimated to cost together. */
  cost: number;
}

/** What one owner's priced jobs cost so far, in one currency. */
export interface OwnerCosts {
  owner: string | null;
  currency: string;
  jobs: number;
  estimated: number;
  actual: number;
}

export class BudgetExceeded extends Error {
  constructor(
    readonly spent: number,
    readonly amount: number,
    readonly cost: number,
  ) {
    super(`spent ${spent} of ${amount}; ${cost} more would exceed it`);
    this.name = 'BudgetExceeded';
  }
}

/** Raised by insertJobs when the rows would take their owner over its active-jobs cap; nothing is stored. */
export class ActiveCapExceeded extends Error {
  constructor(
    readonly active: number,
    readonly max: number,
  ) {
    super(`${active} active jobs; the cap is ${max}`);
    this.name = 'ActiveCapExceeded';
  }
}

export interface ListQuery {
  owner?: string | null;
  dialect?: string;
  status?: JobStatus;
  limit: number;
  /** Id of the last job of the previous page: the next page starts strictly after it. */
  after?: string;
  /** Jobs to skip first, for numbered pages (`after` is cheaper for walking a long list). */
  offset?: number;
  /** Only jobs whose dialect data contains this (jsonb @>): a job by the id its client gave it. */
  dialectData?: Record<string, unknown>;
}

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  startedAt: Date;
  heartbeatAt: Date;
}

export interface JobStore {
  /**
   * Stores the jobs and their `created` events in one transaction; with `cap`, refuses
   * (ActiveCapExceeded) rather than exceed it; with `budget`, adds its cost to the owner's spend of
   * the period in the same transaction, or refuses (BudgetExceeded) when that would pass the amount.
   * Exact across processes: one owner's inserts are serialised.
   */
  insertJobs(rows: NewJob[], cap?: ActiveCap, budget?: BudgetCharge): Promise<Job[]>;
  /**
   * What `owner` spent in a budget period: the estimates of its jobs charged there that have not
   * ended, and the actual costs of those that have. A job's actual cost replaces its estimate in the
   * transaction of the transition that ends it (`transition` to a final status), once.
   */
  spendOf(owner: string, period: string): Promise<number>;
  /** The costs of priced jobs per owner (only `owner`'s when given). */
  costsByOwner(owner?: string | null): Promise<OwnerCosts[]>;
  get(id: string): Promise<Job | null>;
  /** The jobs that exist among `ids`, in id order. */
  getMany(ids: string[]): Promise<Job[]>;
  /** Merges `data` into the job's dialect data (only a job of `owner`, when given); null when there is none. */
  mergeDialectData(id: string, data: Record<string, unknown>, owner?: string | null): Promise<Job | null>;
  /** Sets `key` in the job's dialect data unless it is set already; true only for the caller that set it. */
  claimDialectKey(id: string, key: string, value: unknown, owner?: string | null): Promise<boolean>;
  /** Newest first. */
  list(query: ListQuery): Promise<Job[]>;
  listByBatch(batchId: string): Promise<Job[]>;
  /** Every queued or running job: what a restarted process resumes. */
  listUnfinished(): Promise<Job[]>;
  /** Unfinished jobs not updated since `before` (the reconciler's candidates), oldest first. */
  listStale(before: Date, limit: number): Promise<Job[]>;
  /** Queued jobs on `provider` that may fail over, oldest first: what an opening circuit re-routes. */
  listMovable(provider: string, limit: number): Promise<Job[]>;
  /**
   * Compare-and-set status change with its event; null when the job is missing or not in `from`,
   * or, given a lease token, when the job's lease has been taken with a newer one.
   */
  transition(id: string, from: readonly JobStatus[], to: JobStatus, patch?: JobPatch, event?: EventInput, lease?: LeaseToken): Promise<Job | null>;
  /**
   * Changes a job without changing its status, only while it still has `status` (and, given a lease
   * token, while its lease is still that one).
   */
  update(id: string, status: JobStatus, patch: JobPatch, event?: EventInput, lease?: LeaseToken): Promise<Job | null>;
  /**
   * Saves one job's image rows with their `image` events and moves it to `succeeded` (with `patch`
   * and the status event), all in one transaction; a repeated index replaces the earlier row. Only
   * while the job is running (and, given a lease token, while its lease is still that one): null,
   * with nothing saved, otherwise.
   */
  succeed(jobId: string, rows: NewImage[], patch: JobPatch, event: EventInput, lease?: LeaseToken): Promise<Job | null>;
  listImages(jobIds: string[]): Promise<JobImage[]>;
  /** Deletes a job's image rows and answers them (their files are the caller's to delete). */
  deleteImages(jobId: string): Promise<JobImage[]>;
  /**
   * Retention, step one: marks up to `limit` jobs that succeeded before `before` as having expired
   * images (each job by one caller only, however many sweep at once); answers their ids.
   */
  expireImages(before: Date, limit: number): Promise<string[]>;
  /** Retention, step two: image rows of jobs marked expired, whose files are to be deleted before the rows. */
  listImagesToPurge(limit: number): Promise<JobImage[]>;
  /** Retention of jobs: deletes up to `limit` finished jobs completed before `before` that have no image rows left (events and deliveries go with them). */
  deleteFinishedJobs(before: Date, limit: number): Promise<Job[]>;
  /** One job's events after `after` (an event id), oldest first. */
  listEvents(jobId: string, after?: number, owner?: string | null): Promise<JobEvent[]>;
  /** Every job's events after `after`, oldest first, at most `limit`. */
  listEventsAfter(after: number, limit: number, owner?: string | null): Promise<JobEvent[]>;
  lastEventId(): Promise<number>;
  countByStatus(filter?: CountFilter): Promise<Record<JobStatus, number>>;
  /**
   * Takes the lease of a queued or running job for `durationMs`, unless another turn holds an
   * unexpired one. Acquiring increments the fencing token, so whoever held the lease before can no
   * longer write.
   */
  acquireLease(id: string, durationMs: number): Promise<LeaseClaim>;
  /**
   * Extends the lease to `durationMs` from now, if `token` still holds it (expired or not: until
   * another turn takes it, the holder may carry on). False once the lease was taken over.
   */
  renewLease(id: string, token: LeaseToken, durationMs: number): Promise<boolean>;
  /** Ends the lease held with `token`, so the next turn need not wait for it to expire; a no-op once it was taken over. */
  releaseLease(id: string, token: LeaseToken): Promise<void>;
  heartbeat(worker: Omit<WorkerInfo, 'startedAt' | 'heartbeatAt'>): Promise<void>;
  removeWorker(id: string): Promise<void>;
  listWorkers(aliveSince: Date): Promise<WorkerInfo[]>;
}
