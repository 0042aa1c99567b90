import type { Budget } from './ports/stores.ts';

/**
 * Who a use case runs for: whose jobs it creates and which it may see. Built by the API from the
 * request's credential; the core knows nothing of keys or IPs.
 */
export interface Caller {
  /**
   * The owner stamped on created jobs and required of every job read, listed, cancelled or
   * downloaded: `key:<id>` or `guest:<ip>`. null means one shared space (AUTH=off, and darkroom's
   * own background work): jobs without an owner, and every job visible.
   */
  owner: string | null;
  /** Queue-wide statistics (the admin scope, or AUTH=off). */
  admin: boolean;
  /** How many of its jobs may be queued or running at once; null: no cap. */
  maxActiveJobs: number | null;
  /** The most jobs one batch of this caller may hold. */
  maxBatchSize: number;
  /** What this caller's jobs may cost per period; absent: no budget. */
  budget?: Budget | null;
}

/** darkroom's own work (webhook payloads, resumes): unscoped and uncapped. */
export const SYSTEM_CALLER: Caller = { owner: null, admin: true, maxActiveJobs: null, maxBatchSize: Number.MAX_SAFE_INTEGER };
