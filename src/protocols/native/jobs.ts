/** The native API's enumerations and limits, apart from the schemas so that reading them loads no schema library. */

/** A job's lifecycle as the API shows it. */
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired'] as const;
export const TERMINAL_STATUSES: readonly (typeof JOB_STATUSES)[number][] = ['succeeded', 'failed', 'cancelled', 'expired'];
/** What a running job is doing. */
export const JOB_STAGES = ['submitting', 'waiting_upstream', 'storing'] as const;
/** Jobs one batch may hold. */
export const MAX_BATCH_SIZE = 100;
/** Largest page of a job list. */
export const MAX_PAGE_SIZE = 100;
/** What an input image is for. */
export const INPUT_ROLES = ['init', 'mask', 'reference'] as const;
/** Input images one job may have. */
export const MAX_INPUTS = 8;
/** How much the init image may change when a request does not say. */
export const DEFAULT_STRENGTH = 0.75;
