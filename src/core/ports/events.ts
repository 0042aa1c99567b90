import type { JobEventType, JobStage, JobStatus } from '../job.ts';

/**
 * What subscribers hear about a job: one message per job_events row, after its transaction
 * committed. `id` is the event row's id, so a subscriber can order messages and resume after a gap
 * by reading the rows it missed.
 */
export interface JobEventMessage {
  id: number;
  jobId: string;
  type: JobEventType;
  status: JobStatus;
  stage: JobStage | null;
  at: string;
}

/** Where a message was published: subscribers that keep state of their own (caches) skip their own writes. */
export type MessageOrigin = 'this-process' | 'another-process';

export type JobEventListener = (message: JobEventMessage, origin: MessageOrigin) => void;

/**
 * The event bus port: how a job change made by any process reaches subscribers in every process.
 * Delivery is best effort (a subscriber that needs every event re-reads job_events after a gap).
 */
export interface EventBus {
  readonly kind: string;
  publish(message: JobEventMessage): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe(listener: JobEventListener): () => void;
  close(): Promise<void>;
}
