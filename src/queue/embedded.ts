import PQueue from 'p-queue';
import type { Consumer, EnqueueOptions, JobHandler, JobQueue, QueueStats } from '../core/ports/queue.ts';

interface Entry {
  state: 'delayed' | 'waiting' | 'active';
  priority: number;
  /** When a delayed entry becomes deliverable (epoch ms). */
  dueAt: number;
  timer?: NodeJS.Timeout;
  /** Set when the id is enqueued again while active: the next run to schedule once it returns. */
  rerun?: EnqueueOptions;
  removed?: boolean;
}

/** A handler that throws (a bug, the database gone) is retried after this long, not dropped. */
const REDELIVERY_DELAY_MS = 1000;

/**
 * In-process queue for the embedded mode. Entries live in memory: durability comes from the
 * database, whose unfinished jobs are enqueued again at start. p-queue does priority ordering and
 * concurrency; this adapter adds what p-queue lacks: one entry per job id, delays and removal.
 */
export function makeEmbeddedQueue(): JobQueue {
  const entries = new Map<string, Entry>();
  const runner = new PQueue({ autoStart: false, concurrency: 1 });
  let handler: JobHandler | undefined;
  let onError: (error: unknown, jobId: string) => void = () => undefined;
  let closed = false;

  function makeDeliverable(jobId: string, entry: Entry): void {
    entry.state = 'waiting';
    entry.timer = undefined;
    void runner.add(() => deliver(jobId, entry), { priority: entry.priority });
  }

  function schedule(jobId: string, options: EnqueueOptions): void {
    const delayMs = Math.max(0, options.delayMs ?? 0);
    const entry: Entry = { state: 'delayed', priority: options.priority, dueAt: Date.now() + delayMs };
    entries.set(jobId, entry);
    if (delayMs === 0) makeDeliverable(jobId, entry);
    else entry.timer = setTimeout(() => makeDeliverable(jobId, entry), delayMs);
  }

  async function deliver(jobId: string, entry: Entry): Promise<void> {
    if (entry.removed || entries.get(jobId) !== entry || !handler) return;
    entry.state = 'active';
    let next: EnqueueOptions | undefined;
    try {
      const result = await handler(jobId);
      if (result) next = { priority: entry.priority, delayMs: result.runAgainInMs };
    } catch (error) {
      onError(error, jobId);
      next = { priority: entry.priority, delayMs: REDELIVERY_DELAY_MS };
    }
    if (entries.get(jobId) !== entry) return;
    entries.delete(jobId);
    if (closed || entry.removed) return;
    const rerun = pickSooner(next, entry.rerun);
    if (rerun) schedule(jobId, rerun);
  }

  return {
    kind: 'embedded',

    async enqueue(jobId, options) {
      if (closed) throw new Error('The queue is closed');
      const entry = entries.get(jobId);
      if (!entry) return schedule(jobId, options);
      if (entry.state === 'active') {
        entry.rerun = pickSooner(entry.rerun, options);
        return;
      }
      if (entry.state === 'delayed' && Date.now() + (options.delayMs ?? 0) < entry.dueAt) {
        clearTimeout(entry.timer);
        entry.removed = true;
        schedule(jobId, options);
      }
    },

    async remove(jobId) {
      const entry = entries.get(jobId);
      if (!entry) return;
      entry.removed = true;
      clearTimeout(entry.timer);
      if (entry.state !== 'active') entries.delete(jobId);
    },

    consume(jobHandler, options) {
      if (handler) throw new Error('The embedded queue has a consumer already');
      handler = jobHandler;
      onError = options.onError;
      runner.concurrency = Math.max(1, options.concurrency);
      if (options.concurrency > 0) runner.start();
      let stopping: Promise<void> | undefined;
      const consumer: Consumer = {
        stop(graceMs) {
          stopping ??= (async () => {
            runner.pause();
            await Promise.race([runner.onPendingZero(), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
          })();
          return stopping;
        },
      };
      return consumer;
    },

    async stats(): Promise<QueueStats> {
      const stats: QueueStats = { waiting: 0, delayed: 0, active: 0 };
      for (const entry of entries.values()) stats[entry.state] += 1;
      return stats;
    },

    async ping() {
      if (closed) throw new Error('The queue is closed');
    },

    async close() {
      closed = true;
      runner.pause();
      runner.clear();
      for (const entry of entries.values()) clearTimeout(entry.timer);
      entries.clear();
    },
  };
}

function pickSooner(a: EnqueueOptions | undefined, b: EnqueueOptions | undefined): EnqueueOptions | undefined {
  if (!a) return b;
  if (!b) return a;
  return (a.delayMs ?? 0) <= (b.delayMs ?? 0) ? a : b;
}
