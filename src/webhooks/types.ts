import type { Job, JobImage } from '../core/job.ts';

/**
 * Glossary
 * - subscription: a job's `webhook` URL and the events it asked for (`webhookEvents`).
 * - delivery: one message for one event to one URL; its id is the Standard Webhooks `webhook-id`.
 * - attempt: one HTTP POST of a delivery; a delivery has attempts until one answers 2xx or it gives up.
 * - format: whose payload is sent: darkroom's envelope (`native`), or the status body of the dialect
 *   the job came in through (`civitai` callbackUrl, `runpod` webhook).
 */
export const WEBHOOK_EVENT_TYPES = ['job.completed', 'job.status', 'job.image', 'batch.completed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export type WebhookFormat = 'native' | 'civitai' | 'runpod';
export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

/** A row as it comes back from jsonb: dates are ISO strings. */
export type Jsonified<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };

/** A job and its images at the moment of an event, so a later (or retried) message still shows that moment. */
export interface WebhookSnapshot {
  job: Jsonified<Job>;
  images: Jsonified<JobImage>[];
  /** For `job.image`: the image the event announces. */
  imageIndex: number | null;
}
