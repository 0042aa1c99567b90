import type { JobStore } from './ports/job-store.ts';
import type { Logger } from './ports/logger.ts';
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
  logger: Logger;
  /** Counts what was removed, by kind (images, jobs, deliveries). */
  onRemoved?: (kind: 'images' | 'jobs' | 'deliveries', count: number) => void;
}

const BATCH = 200;

/**
 * Removes what has outlived its retention, in bounded batches, safe to run in several processes at
 * once and to stop at any point. Images: the job is marked first (its views stop showing them and
 * their links answer 410), then the files go, then the rows — so a file never exists without a row
 * and a row never shows a file that may be gone; a sweep that stopped half-way is finished by the
 * next one. Jobs go only once their images have.
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

  return {
    /** One pass; answers what it removed. */
    async sweep(now = new Date()): Promise<{ images: number; jobs: number; deliveries: number }> {
      const cutoffs = [settings.imagesMs, settings.jobsMs].filter((ms) => ms !== undefined).map((ms) => new Date(now.getTime() - ms));
      // The earlier of the two: a job to be deleted loses its images first.
      const imagesBefore = cutoffs.length > 0 ? new Date(Math.max(...cutoffs.map((date) => date.getTime()))) : undefined;
      if (imagesBefore) while ((await repo.expireImages(imagesBefore, BATCH)).length === BATCH);
      const images = await purgeMarkedImages();
      const jobs = settings.jobsMs === undefined ? 0 : await sweepJobs(new Date(now.getTime() - settings.jobsMs));
      let deliveries = 0;
      if (settings.deliveriesMs !== undefined) {
        const before = new Date(now.getTime() - settings.deliveriesMs);
        for (let pruned = BATCH; pruned === BATCH; deliveries += pruned) pruned = await deps.pruneDeliveries(before, BATCH);
      }
      for (const [kind, count] of [['images', images], ['jobs', jobs], ['deliveries', deliveries]] as const) {
        if (count > 0) {
          deps.onRemoved?.(kind, count);
          deps.logger.info({ kind, count }, `retention removed ${count} ${kind}`);
        }
      }
      return { images, jobs, deliveries };
    },
  };
}
