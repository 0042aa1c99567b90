import type { Job } from 'darkroom/client';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError, isUnauthorized, type Api } from '../api.ts';
import { Thumbnail } from './thumbnail.tsx';

const PAGE_SIZE = 24;

interface GalleryState {
  /** Succeeded jobs, newest first (by id: UUIDv7 ids sort by creation time, as the API lists them). */
  jobs: Job[];
  /** The next page's cursor; null once the last page is in. */
  cursor: string | null;
  started: boolean;
  loading: boolean;
  error?: string;
}

const byNewest = (a: Job, b: Job) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/** Puts `incoming` among `jobs`, replacing older copies of the same job, newest first. */
function merge(jobs: Job[], incoming: Job[]): Job[] {
  const ids = new Set(incoming.map((job) => job.id));
  return [...jobs.filter((job) => !ids.has(job.id)), ...incoming].sort(byNewest);
}

/**
 * The gallery's pages: `GET /api/v1/jobs?status=succeeded`, one cursor page at a time. `reload`
 * changes when the first page must be fetched again (the API key was saved).
 */
export function useGallery(api: Api, reload: number) {
  const [state, setState] = useState<GalleryState>({ jobs: [], cursor: null, started: false, loading: false });
  const current = useRef(state);
  current.current = state;
  // Bumped by every reset, so that the answer of a page asked for before it is dropped.
  const generation = useRef(0);
  // Set at once, unlike `loading`, which the observer only sees after the next render.
  const inFlight = useRef(false);

  const loadPage = useCallback(
    async (cursor: string | undefined) => {
      const mine = generation.current;
      inFlight.current = true;
      setState((previous) => ({ ...previous, loading: true, error: undefined }));
      try {
        const page = await api.client.list({ status: 'succeeded', limit: PAGE_SIZE, cursor });
        if (mine !== generation.current) return;
        setState((previous) => ({ ...previous, jobs: merge(previous.jobs, page.items), cursor: page.nextCursor, started: true, loading: false }));
      } catch (error) {
        if (mine !== generation.current) return;
        // A 401 is told once, by the page's notice; the gallery only says it is empty for now.
        setState((previous) => ({ ...previous, loading: false, error: isUnauthorized(error) ? undefined : describeError(error) }));
      } finally {
        if (mine === generation.current) inFlight.current = false;
      }
    },
    [api],
  );

  useEffect(() => {
    generation.current += 1;
    inFlight.current = false;
    setState({ jobs: [], cursor: null, started: false, loading: false });
    void loadPage(undefined);
  }, [loadPage, reload]);

  const loadMore = useCallback(() => {
    const { cursor, started, error } = current.current;
    if (inFlight.current || !started || cursor === null || error) return;
    void loadPage(cursor);
  }, [loadPage]);

  /** After a failed page: that page again. */
  const retry = useCallback(() => {
    const { started, cursor } = current.current;
    void loadPage(started ? (cursor ?? undefined) : undefined);
  }, [loadPage]);

  /** A job that has just succeeded, or a fresh copy of one (new links). */
  const add = useCallback((job: Job) => setState((previous) => ({ ...previous, jobs: merge(previous.jobs, [job]) })), []);

  const hasMore = state.started && state.cursor !== null;
  return { ...state, hasMore, loadMore, retry, add };
}

interface GalleryProps {
  gallery: ReturnType<typeof useGallery>;
  onOpen(job: Job, index: number, opener: HTMLElement): void;
  onBroken(job: Job): void;
}

export function Gallery({ gallery, onOpen, onBroken }: GalleryProps) {
  const sentinel = useRef<HTMLDivElement>(null);
  const { jobs, hasMore, loadMore, retry, loading, error, started } = gallery;

  // Re-created after every page: a new observer reports at once whether the sentinel is still in
  // view, so a page too short to fill the screen is followed by the next without any scrolling.
  useEffect(() => {
    const element = sentinel.current;
    if (!element || !hasMore) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) loadMore();
      },
      { rootMargin: '300px' },
    );
    observer.observe(element);
    return () => observer.disconnect();
  }, [hasMore, loadMore, jobs.length]);

  const images = jobs.flatMap((job) => job.images.map((image) => ({ job, image })));
  return (
    <section class="gallery" aria-labelledby="gallery-title">
      <h2 id="gallery-title">Gallery</h2>
      {started && images.length === 0 && !hasMore ? <p class="muted">No images yet. Finished jobs appear here.</p> : null}
      <ul class="gallery-grid">
        {images.map(({ job, image }) => (
          <li key={`${job.id}/${image.index}`} data-job-id={job.id}>
            <Thumbnail job={job} image={image} onOpen={onOpen} onBroken={onBroken} />
          </li>
        ))}
      </ul>
      <div ref={sentinel} class="gallery-end" aria-live="polite">
        {error ? (
          <p class="problem">
            The gallery could not be loaded: {error}{' '}
            <button type="button" onClick={retry}>
              Try again
            </button>
          </p>
        ) : loading ? (
          <p class="muted">Loading…</p>
        ) : null}
      </div>
    </section>
  );
}
