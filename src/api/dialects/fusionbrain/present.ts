import type { JobView } from '../../../core/job-service.ts';

/** The one pipeline this dialect offers; its id never changes, so clients may keep it. */
export const PIPELINE = {
  id: '5b1e2c3d-8f4a-4e6b-9c7d-0a1b2c3d4e5f',
  name: 'Kandinsky',
  nameEn: 'Kandinsky',
  description: 'darkroom, answering as Fusion Brain: text to image through its configured providers',
  descriptionEn: 'darkroom, answering as Fusion Brain: text to image through its configured providers',
  tags: [],
  version: 3.1,
  status: 'ACTIVE',
  type: 'TEXT2IMAGE',
  createdDate: '2025-01-01T00:00:00.000Z',
  lastModified: '2025-01-01T00:00:00.000Z',
};

/** Failure codes that mean moderation refused the prompt: the service reports those as a censored result. */
const CENSORED_CODES = new Set(['content_filtered', 'rejected']);

/** A finished generation as the service answers it (once): the image, a censored result, or the failure. */
export async function presentFinished(uuid: string, job: JobView, readImage: (index: number) => Promise<{ bytes: Buffer }>) {
  const generationTime = Math.round(((job.completedAt ?? new Date()).getTime() - job.createdAt.getTime()) / 1000);
  if (job.status === 'succeeded') {
    const image = await readImage(0);
    return { uuid, status: 'DONE' as const, result: { files: [image.bytes.toString('base64')], censored: false }, generationTime };
  }
  if (job.status === 'failed' && job.error && CENSORED_CODES.has(job.error.code)) {
    return { uuid, status: 'DONE' as const, result: { files: [], censored: true }, generationTime };
  }
  const errorDescription =
    job.status === 'failed'
      ? (job.error?.message ?? 'The generation failed')
      : job.status === 'expired'
        ? 'The generation did not finish before its deadline'
        : 'The generation was cancelled';
  return { uuid, status: 'FAIL' as const, errorDescription };
}
