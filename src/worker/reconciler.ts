import type { Logger } from '../core/ports/logger.ts';
import type { JobStore } from '../core/ports/job-store.ts';
import { entryOptions, type JobQueue } from '../core/ports/queue.ts';

export interface ReconcilerDeps {
  repo: JobStore;
  queue: JobQueue;
  logger: Logger;
  intervalMs: number;
  /**
   * A job untouched for this long is presumed to have lost its queue entry. A healthy running job is
   * touched at every poll (at most every few seconds), so this must be well above the longest poll delay.
   */
  staleMs: number;
  /** Chores run on every pass after the jobs (deleting what has expired); a failing one does not stop the others. */
  housekeeping?: { name: string; run: () => Promise<number> }[];
}

export interface Reconciler {
  /** One pass: enqueues every stale unfinished job again; returns how many. */
  runOnce(): Promise<number>;
  start(): void;
  stop(): void;
}

const BATCH = 500;

/**
 * The database is the system of record; the queue only carries reminders. A job committed whose
 * enqueue failed, or whose entry a queue lost, is enqueued again here. Enqueue is idempotent per job
 * id, so a job that still has its entry is left as it was.
 */
export function makeReconciler(deps: ReconcilerDeps): Reconciler {
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  async function runOnce(): Promise<number> {
    const stale = await deps.repo.listStale(new Date(Date.now() - deps.staleMs), BATCH);
    for (const job of stale) {
      await deps.queue.enqueue(job.id, entryOptions(job, Math.max(0, job.runAfter.getTime() - Date.now())));
    }
    if (stale.length > 0) deps.logger.info({ count: stale.length }, 'reconciler enqueued stale jobs again');
    for (const chore of deps.housekeeping ?? []) {
      const count = await chore.run().catch((error: unknown) => {
        deps.logger.warn({ err: error }, `could not remove ${chore.name}`);
        return 0;
      });
      if (count > 0) deps.logger.info({ count }, `removed ${chore.name}`);
    }
    return stale.length;
  }

  return {
    runOnce,
    start() {
      if (timer) return;
      timer = setInterval(() => {
        if (running) return;
        running = true;
        runOnce()
          .catch((error: unknown) => deps.logger.warn({ err: error }, 'reconciler pass failed'))
          .finally(() => (running = false));
      }, deps.intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
