import type { Job } from 'darkroom/client';

/** "0.4 s", "12 s", "3 min 05 s": how long something took or has been going. */
export function formatDuration(ms: number): string {
  const safe = Math.max(0, ms);
  if (safe < 10_000) return `${(safe / 1000).toFixed(1)} s`;
  const seconds = Math.round(safe / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

const STAGES: Record<NonNullable<Job['stage']>, string> = {
  submitting: 'submitting',
  waiting_upstream: 'generating',
  storing: 'storing',
};

/** The status as a card shows it: "Running · generating", "Succeeded". */
export function statusText(job: Pick<Job, 'status' | 'stage'>): string {
  const status = job.status.charAt(0).toUpperCase() + job.status.slice(1);
  return job.status === 'running' && job.stage ? `${status} · ${STAGES[job.stage]}` : status;
}

export const isActive = (status: Job['status']): boolean => status === 'queued' || status === 'running';

/** Timestamps are the server's; the browser's clock may differ a little, never below zero. */
export function elapsedMs(job: Pick<Job, 'createdAt' | 'completedAt'>, now: number): number {
  const end = job.completedAt ? Date.parse(job.completedAt) : now;
  return Math.max(0, end - Date.parse(job.createdAt));
}

export function fileName(job: Pick<Job, 'id'>, image: Job['images'][number]): string {
  const extension = image.contentType.split('/')[1]?.replace('jpeg', 'jpg') ?? 'bin';
  return `darkroom-${job.id}-${image.index}.${extension}`;
}
