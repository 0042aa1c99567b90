/**
 * The circuit store port: each provider's circuit breaker and upstream pause, shared by every
 * process (the database adapter in src/db keeps them in one row per provider).
 *
 * Glossary
 * - circuit: whether darkroom sends a provider work. `closed`: it does. `open`: it does not, after
 *   `failures` retryable failures or timeouts in a row, until `cooldown` has passed. `half_open`: the
 *   cooldown passed and exactly one job's call (the probe) may go through; its success closes the
 *   circuit, its failure opens it again.
 * - pause: an upstream answered 429 with Retry-After; nothing is sent to it (submit or poll) until
 *   then. A pause is not a failure: it leaves the circuit as it is.
 * - admission: asking, before a call for a job, whether it may be made. A half-open circuit admits
 *   the one job that claims the probe (atomically, so across processes only one does).
 *
 * Contract
 * - `admit` answers quickly and never throws for a provider it has not seen (a new provider is closed).
 * - `record` is told of every submit and poll a worker made, with its outcome; it answers whether this
 *   outcome opened the circuit (only one of several concurrent callers is told so).
 * - Times are the store's clock, so processes with skewed clocks agree.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export type Admission =
  | { admitted: true; probe: boolean }
  /** `open` (cooling down), `probing` (half-open, another job holds the probe) or `paused` (Retry-After). */
  | { admitted: false; reason: 'open' | 'probing' | 'paused'; retryInMs: number };

/** How one provider call ended, as the circuit counts it. */
export type CallOutcome =
  | { kind: 'ok'; ms: number }
  /** A retryable failure or a timeout: counts against the circuit. */
  | { kind: 'failure'; ms: number }
  /** 429: pauses the provider for `retryAfterMs` when the upstream said how long. */
  | { kind: 'rate_limited'; ms: number; retryAfterMs?: number }
  /** A permanent refusal (bad request, credentials): the upstream is up, so neither a failure nor a success. */
  | { kind: 'refused'; ms: number };

export interface CircuitView {
  provider: string;
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: Date | null;
  /** While open: when the probe may go through. */
  retryAt: Date | null;
  /** While an upstream's Retry-After lasts. */
  pausedUntil: Date | null;
  /** Calls in the last few minutes (RECENT_WINDOW_MS). */
  recentCalls: number;
  /** Share of those that failed (retryable failures and timeouts); null without calls. */
  errorRate: number | null;
  /** Median duration of those that did not fail; null without any. */
  p50LatencyMs: number | null;
  /** Jobs queued on the provider. */
  queued: number;
}

/** How far back GET /providers looks for the error rate and latency. */
export const RECENT_WINDOW_MS = 5 * 60_000;

export interface CircuitStore {
  /** Whether a call for `jobId` may go to `provider` now; in half-open state, claims the probe for it. */
  admit(provider: string, jobId: string): Promise<Admission>;
  /** Records a call's outcome; `opened` is true when this outcome opened the circuit. */
  record(provider: string, jobId: string, outcome: CallOutcome): Promise<{ opened: boolean }>;
  /** The providers whose circuit is not closed (open or half-open): where jobs are not moved to. */
  unavailable(): Promise<Set<string>>;
  /** Each named provider's circuit and recent figures, in the order given. */
  overview(providers: string[]): Promise<CircuitView[]>;
  /** Forgets calls older than the recent window; answers how many. */
  prune(): Promise<number>;
}
