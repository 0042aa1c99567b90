import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { isUnauthorized, type Api, type QueueStats } from '../api.ts';
import type { LiveState } from '../live.ts';

/** Job events ask for a refresh; at most one per this interval follows, however many arrive. */
const EVENT_REFRESH_MS = 1_000;
/** Without events (jobs created elsewhere, workers coming and going), a slow refresh. */
const IDLE_REFRESH_MS = 10_000;

/**
 * Queue stats: `GET /api/v1/queue/stats`, fetched again soon after job events (`refreshSoon`) and
 * every ten seconds while the page is visible. Counts are cheap to get slightly late; job
 * progress itself comes from the event stream, never from here.
 */
export function useQueueStats(api: Api, reload: number) {
  const [stats, setStats] = useState<QueueStats>();
  const scheduled = useRef<ReturnType<typeof setTimeout>>(undefined);

  const refresh = useCallback(async () => {
    try {
      setStats(await api.queueStats());
    } catch (error) {
      // Stale counts are better than none; a 401 is told by the page's notice.
      if (isUnauthorized(error)) setStats(undefined);
    }
  }, [api]);

  const refreshSoon = useCallback(() => {
    if (scheduled.current !== undefined) return;
    scheduled.current = setTimeout(() => {
      scheduled.current = undefined;
      void refresh();
    }, EVENT_REFRESH_MS);
  }, [refresh]);

  useEffect(() => {
    void refresh();
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') void refresh();
    }, IDLE_REFRESH_MS);
    return () => {
      clearInterval(timer);
      clearTimeout(scheduled.current);
      scheduled.current = undefined;
    };
  }, [refresh, reload]);

  return { stats, refreshSoon };
}

const LIVE_TEXT: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  unauthorized: 'API key needed',
};

export function StatusBar({ stats, live }: { stats: QueueStats | undefined; live: LiveState }) {
  const workers = stats?.workers?.length;
  return (
    <div class="status-bar" role="group" aria-label="Queue status">
      <span class={`live live-${live}`} title="Live job updates">
        {LIVE_TEXT[live]}
      </span>
      {stats ? (
        <>
          <span>{stats.jobs.queued} queued</span>
          <span>{stats.jobs.running} running</span>
          <span>{stats.jobs.succeeded} succeeded</span>
          {stats.jobs.failed > 0 ? <span>{stats.jobs.failed} failed</span> : null}
          {workers === undefined ? null : (
            <span>
              {workers} {workers === 1 ? 'worker' : 'workers'}
            </span>
          )}
        </>
      ) : null}
    </div>
  );
}
