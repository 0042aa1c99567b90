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
  /** The fair-share slot of an entry that waits its owner's turn (see Slot); unset for continuations. */
  slot?: string;
}

/**
 * One owner's entries of one priority. Only `fairShareQuantum` of them are in p-queue at a time (admitted);
 * the rest are held in arrival order. When an admitted entry starts, the next held one is admitted
 * and joins p-queue behind everything of its priority, so owners take turns.
 */
interface Slot {
  admitted: Set<string>;
  /** Held job ids, in arrival order (a Map keeps insertion order and deletes in O(1)). */
  held: Map<string, true>;
}

/** A handler that throws (a bug, the database gone) is retried after this long, not dropped. */
const REDELIVERY_DELAY_MS = 1000;

export interface EmbeddedQueueOptions {
  /** How many never-started entries of one owner and priority are in line at once (FAIR_SHARE_QUANTUM). */
  fairShareQuantum?: number;
}

/**
 * In-process queue for the embedded mode. Entries live in memory: durability comes from the
 * database, whose unfinished jobs are enqueued again at start. p-queue does priority ordering and
 * concurrency; this adapter adds what p-queue lacks: one entry per job id, delays, removal, and
 * round-robin across owners within a priority (the slots).
 */
export function makeEmbeddedQueue(options: EmbeddedQueueOptions = {}): JobQueue {
  const quantum = Math.max(1, options.fairShareQuantum ?? 1);
  const entries = new Map<string, Entry>();
  const slots = new Map<string, Slot>();
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
    // Only an entry due now takes its owner's turn; a delayed one is a continuation when due.
    if (delayMs === 0 && options.owner !== undefined) hold(jobId, entry, options.owner);
    else if (delayMs === 0) makeDeliverable(jobId, entry);
    else entry.timer = setTimeout(() => makeDeliverable(jobId, entry), delayMs);
  }

  function hold(jobId: string, entry: Entry, owner: string): void {
    const key = `${entry.priority}:${owner}`;
    let slot = slots.get(key);
    if (!slot) {
      slot = { admitted: new Set(), held: new Map() };
      slots.set(key, slot);
    }
    entry.state = 'waiting';
    entry.slot = key;
    slot.held.set(jobId, true);
    admit(key);
  }

  /** Leaves the slot (the entry started or was removed) and admits the next held entries in its place. */
  function release(jobId: string, key: string): void {
    const slot = slots.get(key);
    if (!slot) return;
    slot.admitted.delete(jobId);
    slot.held.delete(jobId);
    admit(key);
  }

  function admit(key: string): void {
    const slot = slots.get(key);
    if (!slot) return;
    for (const jobId of slot.held.keys()) {
      if (slot.admitted.size >= quantum) break;
      slot.held.delete(jobId);
      slot.admitted.add(jobId);
      const entry = entries.get(jobId);
      if (entry) makeDeliverable(jobId, entry);
    }
    if (slot.admitted.size === 0 && slot.held.size === 0) slots.delete(key);
  }

  async function deliver(jobId: string, entry: Entry): Promise<void> {
    if (entry.removed || entries.get(jobId) !== entry || !handler) return;
    entry.state = 'active';
    if (entry.slot) release(jobId, entry.slot);
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
        // The job has had its start: what follows is a continuation.
        entry.rerun = pickSooner(entry.rerun, { ...options, owner: undefined });
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
      if (entry.state !== 'active' && entry.slot) release(jobId, entry.slot);
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
      slots.clear();
    },
  };
}

function pickSooner(a: EnqueueOptions | undefined, b: EnqueueOptions | undefined): EnqueueOptions | undefined {
  if (!a) return b;
  if (!b) return a;
  return (a.delayMs ?? 0) <= (b.delayMs ?? 0) ? a : b;
}
