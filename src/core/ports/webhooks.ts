import type { Job, JobImage } from '../job.ts';

/**
 * Glossary
 * - subscription: a job's `webhook` URL and the events it asked for (`webhookEvents`).
 * - delivery: one message for one event to one URL; its id is the Standard Webhooks `webhook-id`.
 * - attempt: one HTTP POST of a delivery; a delivery has attempts until one answers 2xx or it gives up.
 * - format: whose payload is sent: darkroom's envelope (`native`), or the status body of the dialect
 *   the job came in through (a dialect that declares a webhook payload, e.g. Civitai's callbackUrl).
 */
export const WEBHOOK_EVENT_TYPES = ['job.completed', 'job.status', 'job.image', 'job.failover', 'batch.completed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** `native`, or the name of the dialect whose payload the delivery carries. */
export type WebhookFormat = string;
export const NATIVE_WEBHOOK_FORMAT = 'native';
export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

/** A row as it comes back from jsonb: dates are ISO strings. */
export type Jsonified<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };

/** A job and its images at the moment of an event, so a later (or retried) message still shows that moment. */
export interface WebhookSnapshot {
  job: Jsonified<Job>;
  images: Jsonified<JobImage>[];
  /** For `job.image`: the image the event announces. */
  imageIndex: number | null;
  /** For `job.failover`: the move the event announces. */
  failover?: { from: string; to: string; reason: string };
}

export interface WebhookDelivery {
  id: string;
  jobId: string;
  batchId: string | null;
  url: string;
  event: WebhookEventType;
  format: WebhookFormat;
  /** What the body is rendered from when it must show a moment (the job at a status change); empty otherwise. */
  payload: WebhookSnapshot | Record<string, never>;
  status: WebhookDeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

export interface WebhookAttempt {
  id: number;
  deliveryId: string;
  attempt: number;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  retryAt: Date | null;
}

export interface DeliveryLogEntry extends WebhookDelivery {
  attemptLog: WebhookAttempt[];
}

/** What the core needs of webhooks: the check of a submitted URL, and the delivery log. */
export interface WebhookPort {
  /** Why webhooks may not go to `url` (not http(s), a private address, …), or null when they may. */
  refusal(url: string): Promise<string | null>;
  /** The deliveries about a job (its batch's completion included), each with its attempts. */
  deliveriesOf(job: Job): Promise<DeliveryLogEntry[]>;
}
