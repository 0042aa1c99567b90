import type { Logger } from 'pino';
import { retryDelayMs } from '../core/backoff.ts';
import type { WebhookDelivery } from '../core/ports/webhooks.ts';
import type { Metrics } from '../core/ports/metrics.ts';
import type { WebhookRepository } from '../db/webhooks-repository.ts';
import { sendWebhook, type SendOutcome } from './send.ts';
import type { WebhookSigner } from './signing.ts';
import type { WebhookTargets } from './target.ts';

export interface WebhookDispatcherDeps {
  repo: WebhookRepository;
  /** The body of one attempt (see payloads.ts). */
  render: (delivery: WebhookDelivery) => Promise<string>;
  signer: WebhookSigner;
  targets: WebhookTargets;
  logger: Logger;
  metrics?: Metrics;
  /** Attempts in flight at once, apart from job work. */
  concurrency: number;
  timeoutMs: number;
  retry: { baseMs: number; maxMs: number; giveUpAfterMs: number };
  random?: () => number;
  userAgent: string;
}

export interface WebhookDispatcher {
  start(): void;
  /** Deliveries were committed: look for due ones now rather than at the next poll. */
  nudge(): void;
  /** Stops taking deliveries and aborts attempts in flight, which become due again at once. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Longest the loop sleeps without being nudged: how late a delivery written by another process (a
 * job cancelled through an API process) goes out at most. This process's own deliveries nudge it.
 */
const IDLE_POLL_MS = 2000;
/** Shortest sleep when deliveries are due but another process holds them for the moment. */
const BUSY_POLL_MS = 25;
/** Time a claimed delivery stays with this process beyond its timeout, for rendering and recording. */
const LEASE_MARGIN_MS = 60_000;

const SAFE_ERROR = 'darkroom could not build the payload; it will try again';

/**
 * The delivery loop of worker processes: claims due deliveries, sends each (at most `concurrency`
 * at once, in its own promise, never on the job worker's slots, so a receiver that hangs holds up
 * only its own delivery until the timeout), records every attempt and schedules the next with
 * exponential backoff and jitter until the retry window closes. Errors are logged, never thrown:
 * the loop outlives a database hiccup.
 */
export function makeWebhookDispatcher(deps: WebhookDispatcherDeps): WebhookDispatcher {
  const { repo, logger } = deps;
  const random = deps.random ?? Math.random;
  const leaseMs = deps.timeoutMs + LEASE_MARGIN_MS;
  const inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let passing: Promise<void> | undefined;
  let passAgain = false;
  let stopping: Promise<void> | undefined;

  function schedule(ms: number) {
    if (!running) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (passing) {
        passAgain = true;
        return;
      }
      passing = pass().finally(() => {
        passing = undefined;
        if (!running) return;
        if (passAgain) {
          passAgain = false;
          schedule(0);
        }
      });
    }, ms);
    timer.unref();
  }

  function nudge() {
    if (passing) passAgain = true;
    else schedule(0);
  }

  /** Claims what is due and free slots allow, then sleeps until the next due time (or a nudge). */
  async function pass(): Promise<void> {
    let sleepMs = IDLE_POLL_MS;
    try {
      const claimed = await repo.claim(deps.concurrency - inFlight.size, leaseMs);
      if (!running) {
        await Promise.all(claimed.map((delivery) => repo.release(delivery.id)));
        return;
      }
      for (const delivery of claimed) launch(delivery);
      if (inFlight.size < deps.concurrency) {
        const dueInMs = await repo.nextDueInMs();
        if (dueInMs !== null) sleepMs = Math.min(IDLE_POLL_MS, Math.max(BUSY_POLL_MS, dueInMs));
      }
    } catch (error) {
      logger.warn({ err: error }, 'webhook delivery pass failed');
    }
    if (!passAgain) schedule(sleepMs);
  }

  function launch(delivery: WebhookDelivery) {
    const controller = new AbortController();
    const done = attempt(delivery, controller.signal)
      .catch((error: unknown) => logger.error({ err: error, deliveryId: delivery.id }, 'webhook attempt could not be recorded'))
      .finally(() => {
        inFlight.delete(delivery.id);
        nudge();
      });
    inFlight.set(delivery.id, { controller, done });
  }

  async function attempt(delivery: WebhookDelivery, signal: AbortSignal): Promise<void> {
    const startedAt = new Date();
    const started = performance.now();
    let outcome: SendOutcome;
    try {
      const body = await deps.render(delivery);
      const headers = { 'content-type': 'application/json', 'user-agent': deps.userAgent, ...deps.signer.headers(delivery.id, body) };
      outcome = await sendWebhook({ url: delivery.url, body, headers, timeoutMs: deps.timeoutMs, signal }, deps.targets);
    } catch (error) {
      // The log shows what went wrong; the delivery log (seen by API clients) only that it did.
      logger.error({ err: error, deliveryId: delivery.id, jobId: delivery.jobId }, 'could not build a webhook payload');
      outcome = { kind: 'failed', statusCode: null, error: SAFE_ERROR, permanent: false, durationMs: Math.round(performance.now() - started) };
    }
    if (outcome.kind === 'aborted') return repo.release(delivery.id);

    const attemptNumber = delivery.attempts + 1;
    const next =
      outcome.kind === 'delivered'
        ? ({ kind: 'delivered' } as const)
        : outcome.permanent
          ? ({ kind: 'failed' } as const)
          : ({
              kind: 'retry',
              delayMs: retryDelayMs(attemptNumber, deps.retry, random),
              giveUpAfterMs: deps.retry.giveUpAfterMs,
            } as const);
    deps.metrics?.webhookAttempt(next.kind);
    const status = await repo.record(delivery.id, {
      startedAt,
      durationMs: outcome.durationMs,
      statusCode: outcome.statusCode,
      error: outcome.kind === 'failed' ? outcome.error : null,
      next,
    });
    // The origin only: a URL's path or query may carry the receiver's token.
    const fields = { deliveryId: delivery.id, jobId: delivery.jobId, event: delivery.event, to: new URL(delivery.url).origin, attempt: attemptNumber, statusCode: outcome.statusCode };
    if (outcome.kind === 'delivered') logger.info(fields, 'webhook delivered');
    else logger.warn({ ...fields, error: outcome.error, status }, 'webhook attempt failed');
  }

  return {
    start() {
      if (running || stopping) return;
      running = true;
      schedule(0);
    },
    nudge,
    stop() {
      stopping ??= (async () => {
        running = false;
        clearTimeout(timer);
        await passing;
        for (const { controller } of inFlight.values()) controller.abort();
        await Promise.all([...inFlight.values()].map(({ done }) => done));
      })();
      return stopping;
    },
  };
}
