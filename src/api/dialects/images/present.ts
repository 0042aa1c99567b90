import type { JobView } from '../../../core/job-service.ts';
import type { JobStatus } from '../../../core/job.ts';

export type ImageStatus = 'created' | 'pending' | 'done' | 'error';

/** The service's statuses: created → pending → done, and error, which darkroom sets when a job fails. */
export const STATUS: Record<JobStatus, ImageStatus> = {
  queued: 'created',
  running: 'pending',
  succeeded: 'done',
  failed: 'error',
  cancelled: 'error',
  expired: 'error',
};

export function failureOf(job: JobView): string {
  if (job.status === 'cancelled') return 'it was cancelled';
  if (job.status === 'expired') return 'it did not finish before its deadline';
  return job.error?.message ?? 'the generation failed';
}
