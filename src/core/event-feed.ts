import { isTerminal, type JobEvent } from './job.ts';
import type { JobStore } from './ports/job-store.ts';
import type { EventBus } from './ports/events.ts';

/** Rows read per query when replaying every job's events after a resume point. */
const REPLAY_PAGE = 500;
/** Finished jobs a stream of every job remembers, so that a late duplicate message replays nothing. */
const FINISHED_MEMORY = 10_000;

export interface FollowOptions {
  /** One job (the stream ends after its terminal status event), or every job when absent. */
  jobId?: string;
  /**
   * Only events with a greater id are yielded (SSE Last-Event-ID). Without `jobId` they are
   * replayed from here (0: all of them); take `lastEventId()` first for "from now on".
   */
  after?: number;
  /**
   * How often to look at the database even when the bus has said nothing. The bus is best effort
   * (a LISTEN connection that reconnects misses what was sent meanwhile); this bounds how long a
   * missed message can hold an event back.
   */
  recheckMs: number;
  signal: AbortSignal;
  /** Only this owner's jobs (null: jobs without one); absent: everyone's. */
  owner?: string | null;
}

export type EventFeed = ReturnType<typeof makeEventFeed>;

/**
 * Job events as an ordered, gap-free sequence of job_events rows, live. The bus only wakes the
 * reader; rows always come from the database, read after the last one yielded for that job. So a
 * subscriber sees each row once, in id order per job, whichever process wrote it, and a resume
 * after `after` continues exactly where an earlier stream stopped.
 *
 * Why per job: one job's events are written one after another under its row lock, so their ids
 * follow commit order. Across jobs, concurrent transactions may commit out of id order, so the
 * stream of every job keeps a cursor per job instead of one global cursor (which would skip a row
 * that committed late with a smaller id).
 */
export function makeEventFeed(deps: { repo: JobStore; events: EventBus }) {
  return {
    /** The newest event's id: the `after` of a stream that starts now. */
    lastEventId: () => deps.repo.lastEventId(),

    async *follow(options: FollowOptions): AsyncGenerator<JobEvent> {
      const { jobId, signal, owner } = options;
      const pending = new Set<string>();
      let recheckAll = false;
      let wake: () => void = () => undefined;
      const woken = () => new Promise<void>((resolve) => (wake = resolve));
      let nextWake = woken();

      // Subscribed before the first read: a row committed while history is read still wakes us.
      const unsubscribe = deps.events.subscribe((message) => {
        if (jobId !== undefined && message.jobId !== jobId) return;
        pending.add(message.jobId);
        wake();
      });
      const onAbort = () => wake();
      signal.addEventListener('abort', onAbort);
      const recheck = setInterval(() => {
        if (jobId !== undefined) pending.add(jobId);
        else recheckAll = true;
        wake();
      }, options.recheckMs);

      /** Last row yielded per job; undefined value means finished (its terminal event was yielded). */
      const cursors = new Map<string, number | undefined>();
      // Rows of a job this stream has not seen yet start after this id.
      const floor = options.after ?? 0;
      let newest = floor;

      const remember = (row: JobEvent) => {
        const finished = isTerminal(row.status);
        cursors.delete(row.jobId);
        cursors.set(row.jobId, finished ? undefined : row.id);
        if (row.id > newest) newest = row.id;
        if (cursors.size > FINISHED_MEMORY) {
          for (const [id, cursor] of cursors) {
            if (cursors.size <= FINISHED_MEMORY) break;
            if (cursor === undefined) cursors.delete(id);
          }
        }
        return finished;
      };

      try {
        if (jobId !== undefined) {
          // Read before its events: a job finished by then has all its events committed (same
          // transaction), so its history is complete and the stream ends after it.
          const job = await deps.repo.get(jobId);
          if (!job || isTerminal(job.status)) {
            for (const row of await deps.repo.listEvents(jobId, floor, owner)) {
              if (signal.aborted) return;
              yield row;
            }
            return;
          }
          pending.add(jobId);
        } else {
          for (;;) {
            const page = await deps.repo.listEventsAfter(newest, REPLAY_PAGE, owner);
            for (const row of page) {
              if (signal.aborted) return;
              remember(row);
              yield row;
            }
            if (page.length < REPLAY_PAGE) break;
          }
        }

        while (!signal.aborted) {
          if (pending.size === 0 && !recheckAll) {
            await nextWake;
            nextWake = woken();
            continue;
          }
          if (recheckAll) {
            recheckAll = false;
            for (const row of await deps.repo.listEventsAfter(newest, REPLAY_PAGE, owner)) pending.add(row.jobId);
          }
          const ids = [...pending];
          pending.clear();
          for (const id of ids) {
            if (cursors.has(id) && cursors.get(id) === undefined) continue;
            for (const row of await deps.repo.listEvents(id, cursors.get(id) ?? floor, owner)) {
              if (signal.aborted) return;
              const finished = remember(row);
              yield row;
              if (finished && jobId !== undefined) return;
            }
          }
        }
      } finally {
        clearInterval(recheck);
        signal.removeEventListener('abort', onAbort);
        unsubscribe();
      }
    },
  };
}
