import type { JobStore } from './ports/job-store.ts';
import type { Logger } from './ports/logger.ts';
import type { RemovedKind } from './ports/metrics.ts';
import type { ObjectStorage } from './ports/storage.ts';

export interface RetentionSettings {
  /** How long a succeeded job's images are kept after it ends; undefined keeps them for ever. */
  imagesMs?: number;
  /** How long a finished job is kept (with its events, images and deliveries); undefined keeps it for ever. */
  jobsMs?: number;
  /** How long finished webhook deliveries are kept. */
  deliveriesMs?: number;
}

export interface RetentionDeps {
  repo: JobStore;
  storage: ObjectStorage;
  /** Deletes the stored input bytes among `keys` that no upload or job uses any more (InputService.deleteUnused). */
  deleteUnusedInputs(keys: string[]): Promise<void>;
  /** Deletes finished deliveries created before `before`, at most `limit`; answers how many. */
  pruneDeliveries(before: Date, limit: number): Promise<number>;
  /** Removes up to `limit` uploads expired at `now` (InputService.sweep); answers how many. */
  sweepUploads(now: Date, limit: number): Promise<number>;
  /** Deletes up to `limit` expired idempotency keys; answers how many. */
  pruneIdempotencyKeys(limit: number): Promise<number>;
  /**
   * Runs `task` only while this process holds the one sweeping lock of the whole deployment (a
   * Postgres advisory lock, released when its connection ends, so also when its process dies):
   * answers false, without running it, when another process holds it.
   */
  exclusive(task: () => Promise<void>): Promise<boolean>;
  logger: Logger;
  /** Counts what was removed, by kind. */
  onRemoved?: (kind: RemovedKind, count: number) => void;
}

export type Removed = Record<RemovedKind, number>;

const BATCH = 200;

/**
 * Removes what has outlived its retention, in bounded batches, one process at a time (`exclusive`),
 * and safe to stop at any point. Images: the job is marked first (its views stop showing them and
 * their links answer 410), then the files go, then the rows — so a file never exists without a row
 * and a row never shows a file that may be gone; a sweep that stopped half-way is finished by the
 * next one. Jobs go only once their images have. Each step also stays correct without the lock (two
 * processes never mark or delete the same rows twice), so a lock lost with its connection costs
 * repeated work at worst.
 */
export function makeRetention(settings: RetentionSettings, deps: RetentionDeps) {
  const { repo, storage } = deps;

  async function purgeMarkedImages(): Promise<number> {
    let removed = 0;
    for (;;) {
      const pending = await repo.listImagesToPurge(BATCH);
      if (pending.length === 0) return removed;
      const jobIds = [...new Set(pending.map((image) => image.jobId))];
      // Every image of each job: its rows go together below.
      const all = await repo.listImages(jobIds);
      await storage.delete(all.flatMap((image) => [image.originalKey, image.thumbnailKey]));
      for (const jobId of jobIds) removed += (await repo.deleteImages(jobId)).length;
    }
  }

  async function sweepJobs(before: Date): Promise<number> {
    let removed = 0;
    for (;;) {
      const deleted = await repo.deleteFinishedJobs(before, BATCH);
      removed += deleted.length;
      await deps.deleteUnusedInputs(deleted.flatMap((job) => job.request.inputs?.map((input) => input.key) ?? []));
      if (deleted.length < BATCH) return removed;
    }
  }

  /** Calls `step` with the batch size until a batch comes back short; answers the total. */
  async function drain(step: (limit: number) => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const count = await step(BATCH);
      total += count;
      if (count < BATCH) return total;
    }
  }

  /** One pass, counting into `removed` as each step ends, so a pass that fails half-way still reports what it did. */
  async function pass(now: Date, removed: Removed): Promise<void> {
    const cutoffs = [settings.imagesMs, settings.jobsMs].filter((ms) => ms !== undefined).map((ms) => new Date(now.getTime() - ms));
    // The earlier of the two: a job to be deleted loses its images first.
    const imagesBefore = cutoffs.length > 0 ? new Date(Math.max(...cutoffs.map((date) => date.getTime()))) : undefined;
    if (imagesBefore) while ((await repo.expireImages(imagesBefore, BATCH)).length === BATCH);
    removed.images = await purgeMarkedImages();
    if (settings.jobsMs !== undefined) removed.jobs = await sweepJobs(new Date(now.getTime() - settings.jobsMs));
    const { deliveriesMs } = settings;
    if (deliveriesMs !== undefined) removed.deliveries = await drain((limit) => deps.pruneDeliveries(new Date(now.getTime() - deliveriesMs), limit));
    removed.uploads = await drain((limit) => deps.sweepUploads(now, limit));
    removed.idempotency_keys = await drain((limit) => deps.pruneIdempotencyKeys(limit));
  }

  return {
    /**
     * One pass, unless another process is sweeping (then `swept` is false and this call removes
     * nothing); answers what it removed, counted and logged by kind.
     */
    async sweep(now = new Date()): Promise<{ swept: boolean; removed: Removed }> {
      const removed: Removed = { images: 0, jobs: 0, deliveries: 0, uploads: 0, idempotency_keys: 0 };
      try {
        return { swept: await deps.exclusive(() => pass(now, removed)), removed };
      } finally {
        for (const [kind, count] of Object.entries(removed) as [RemovedKind, number][]) {
          if (count > 0) {
            deps.onRemoved?.(kind, count);
            deps.logger.info({ kind, count }, `retention removed ${count} ${kind.replace('_', ' ')}`);
          }
        }
      }
    },
  };
}
