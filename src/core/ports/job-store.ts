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
 * - `saveImages` replaces an image with the same (job, index), so a retried store never doubles.
 */

/** A job as it is first stored. */
export type NewJob = Omit<
  Job,
  'stage' | 'progress' | 'queuePosition' | 'providerJobId' | 'attempts' | 'error' | 'timings' | 'runAfter' | 'createdAt' | 'updatedAt' | 'startedAt' | 'completedAt'
> &
  Partial<Pick<Job, 'stage' | 'progress' | 'queuePosition' | 'providerJobId' | 'attempts' | 'error' | 'timings' | 'runAfter'>>;

/** An image row as the pipeline stores it. */
export type NewImage = Omit<JobImage, 'createdAt'>;

/** Columns a caller may change alongside (or without) a status change. */
export type JobPatch = Partial<
  Pick<Job, 'stage' | 'progress' | 'queuePosition' | 'providerJobId' | 'attempts' | 'error' | 'timings' | 'runAfter' | 'startedAt' | 'completedAt'>
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
  /** Stores the jobs and their `created` events in one transaction; with `cap`, refuses (ActiveCapExceeded) rather than exceed it. */
  insertJobs(rows: NewJob[], cap?: ActiveCap): Promise<Job[]>;
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
  /** Compare-and-set status change with its event; null when the job is missing or not in `from`. */
  transition(id: string, from: readonly JobStatus[], to: JobStatus, patch?: JobPatch, event?: EventInput): Promise<Job | null>;
  /** Changes a job without changing its status, only while it still has `status`. */
  update(id: string, status: JobStatus, patch: JobPatch, event?: EventInput): Promise<Job | null>;
  /** Saves image rows and their `image` events; a repeated index replaces the earlier row. */
  saveImages(rows: NewImage[]): Promise<void>;
  listImages(jobIds: string[]): Promise<JobImage[]>;
  /** Deletes a job's image rows and answers them (their files are the caller's to delete). */
  deleteImages(jobId: string): Promise<JobImage[]>;
  /** One job's events after `after` (an event id), oldest first. */
  listEvents(jobId: string, after?: number, owner?: string | null): Promise<JobEvent[]>;
  /** Every job's events after `after`, oldest first, at most `limit`. */
  listEventsAfter(after: number, limit: number, owner?: string | null): Promise<JobEvent[]>;
  lastEventId(): Promise<number>;
  countByStatus(filter?: CountFilter): Promise<Record<JobStatus, number>>;
  heartbeat(worker: Omit<WorkerInfo, 'startedAt' | 'heartbeatAt'>): Promise<void>;
  removeWorker(id: string): Promise<void>;
  listWorkers(aliveSince: Date): Promise<WorkerInfo[]>;
}
