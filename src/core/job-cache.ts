import { LRUCache } from 'lru-cache';
import type { Job, JobImage } from './job.ts';
import type { JobStore } from './ports/job-store.ts';

export interface JobCacheOptions {
  /**
   * How long an entry is trusted without news of a change: the staleness bound when another
   * process's change reaches this one late or never (a lost notification, a write without an event).
   */
  ttlMs: number;
  /** Jobs kept at most (least recently used go first). */
  maxEntries: number;
}

export interface CachedJobStore extends JobStore {
  /** Forgets what is known of a job: another process changed it. */
  invalidate(jobId: string): void;
  /** Forgets every job (the news of other processes' changes may have been lost). */
  clear(): void;
}

interface Entry {
  job: Job;
  /** Known once read: undefined until then (a job just written through carries no images). */
  images?: JobImage[];
}

/** Who is reading or writing a job right now, and how many reads and writes began or ended since. */
interface Activity {
  operations: number;
  version: number;
}

/**
 * The jobs store with the rows GET answers kept in memory, coherent with writes.
 *
 * In this process every change goes through here: a write forgets the job when it starts (so a read
 * made while it runs, or woken by its event, goes to the database) and stores the row it answers
 * when it ends. Other processes' changes arrive through {@link CachedJobStore.invalidate} (the job
 * event bus), and an entry older than `ttlMs` is read again whatever the bus said.
 *
 * Reads and writes of one job may overlap (several requests, a worker's turn and a cancel). Each
 * write bumps the job's version when it begins and when it ends, as does news from another process,
 * and a result is kept only if the version did not move meanwhile: a read that overlapped a write
 * may have seen the row before it, and of two overlapping writes either may have committed last.
 * Reads do not move the version, so concurrent readers of a job all keep (the same) row, and
 * readers that miss together share one query.
 */
export function makeCachedJobStore(store: JobStore, options: JobCacheOptions): CachedJobStore {
  const entries = new LRUCache<string, Entry>({ max: options.maxEntries, ttl: options.ttlMs, updateAgeOnGet: false });
  const activity = new Map<string, Activity>();
  /** The query under way for a job's row, shared by readers that miss while it runs. */
  const reading = new Map<string, { version: number; row: Promise<Job | null> }>();

  type Kind = 'read' | 'write';

  function begin(id: string, kind: Kind): { activity: Activity; version: number } {
    let current = activity.get(id);
    if (!current) {
      current = { operations: 0, version: 0 };
      activity.set(id, current);
    }
    current.operations += 1;
    if (kind === 'write') current.version += 1;
    return { activity: current, version: current.version };
  }

  /** Ends an operation; `keep` runs only when no write began or ended and no news came since it began. */
  function end(id: string, started: { activity: Activity; version: number }, kind: Kind, keep: () => void): void {
    const { activity: current, version } = started;
    if (current.version === version) keep();
    else if (kind === 'write') entries.delete(id);
    if (kind === 'write') current.version += 1;
    current.operations -= 1;
    if (current.operations === 0) activity.delete(id);
  }

  function forget(id: string): void {
    entries.delete(id);
    const current = activity.get(id);
    if (current) current.version += 1;
  }

  /**
   * Runs one read or write of job `id`; `keep` stores what it learned only when nothing else began or
   * ended on the job meanwhile. A write forgets the job first, so nobody reads the old row from
   * memory while the write is under way.
   */
  async function tracked<T>(id: string, kind: Kind, operation: () => Promise<T>, keep: (result: T) => void): Promise<T> {
    if (kind === 'write') entries.delete(id);
    const started = begin(id, kind);
    let result: T;
    try {
      result = await operation();
    } catch (error) {
      end(id, started, kind, () => undefined);
      throw error;
    }
    end(id, started, kind, () => keep(result));
    return result;
  }

  /** A write that answers the job's new row (null: a refused compare-and-set says nothing of the row, which the next read looks up). */
  const writeJob = (id: string, write: () => Promise<Job | null>) =>
    tracked(id, 'write', write, (job) => {
      if (job) entries.set(id, { job });
    });

  /** A write whose result says nothing of the row: the job is read again next time. */
  const writeOther = <T>(id: string, write: () => Promise<T>) => tracked(id, 'write', write, () => undefined);

  async function get(id: string): Promise<Job | null> {
    const hit = entries.get(id);
    if (hit) return hit.job;
    const shared = reading.get(id);
    if (shared && shared.version === (activity.get(id)?.version ?? 0)) return shared.row;
    const row = tracked(id, 'read', () => store.get(id), (job) => {
      if (job) entries.set(id, { job });
    });
    const mine = { version: activity.get(id)?.version ?? 0, row };
    reading.set(id, mine);
    try {
      return await row;
    } finally {
      if (reading.get(id) === mine) reading.delete(id);
    }
  }

  /** One job's images come from the entry when it knows them; several jobs' (a list page) from the store. */
  async function listImages(jobIds: string[]): Promise<JobImage[]> {
    const [id] = jobIds;
    if (jobIds.length !== 1 || id === undefined) return store.listImages(jobIds);
    const known = entries.get(id);
    if (known?.images) return known.images;
    return tracked(id, 'read', () => store.listImages(jobIds), (images) => {
      // Kept with the row it belongs to; without a row in memory, the next read fetches both.
      const entry = entries.get(id);
      if (entry) entries.set(id, { job: entry.job, images }, { noUpdateTTL: true });
    });
  }

  return {
    ...store,
    get,
    listImages,
    invalidate: forget,
    clear: () => {
      entries.clear();
      for (const current of activity.values()) current.version += 1;
    },

    async insertJobs(rows, cap, budget) {
      const jobs = await store.insertJobs(rows, cap, budget);
      for (const job of jobs) entries.set(job.id, { job, images: [] });
      return jobs;
    },
    mergeDialectData: (id, data, owner) => writeJob(id, () => store.mergeDialectData(id, data, owner)),
    claimDialectKey: (id, key, value, owner) => writeOther(id, () => store.claimDialectKey(id, key, value, owner)),
    transition: (id, from, to, patch, event, lease) => writeJob(id, () => store.transition(id, from, to, patch, event, lease)),
    update: (id, status, patch, event, lease) => writeJob(id, () => store.update(id, status, patch, event, lease)),
    succeed: (jobId, rows, patch, event, lease) => writeJob(jobId, () => store.succeed(jobId, rows, patch, event, lease)),
    deleteImages: (jobId) => writeOther(jobId, () => store.deleteImages(jobId)),
    async expireImages(before, limit) {
      const ids = await store.expireImages(before, limit);
      for (const id of ids) forget(id);
      return ids;
    },
    async deleteFinishedJobs(before, limit) {
      const deleted = await store.deleteFinishedJobs(before, limit);
      for (const job of deleted) forget(job.id);
      return deleted;
    },
    acquireLease: (id, durationMs) =>
      tracked(id, 'write', () => store.acquireLease(id, durationMs), (claim) => {
        if (claim.job) entries.set(id, { job: claim.job });
      }),
  };
}
