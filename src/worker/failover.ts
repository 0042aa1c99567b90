import { firstStint, nextProvider, type FallbackChains } from '../core/failover.ts';
import type { Job, JobError, JobTimings, ProviderStint } from '../core/job.ts';
import type { CircuitStore } from '../core/ports/circuits.ts';
import type { JobStore, LeaseToken } from '../core/ports/job-store.ts';
import type { Logger } from '../core/ports/logger.ts';
import type { ProviderRegistry } from '../core/ports/provider.ts';
import { entryOptions, type JobQueue } from '../core/ports/queue.ts';

export interface FailoverDeps {
  repo: JobStore;
  queue: JobQueue;
  providers: ProviderRegistry;
  circuits: CircuitStore;
  chains: FallbackChains;
  /** Retryable failures on one provider after which a job moves on (FAILOVER_AFTER_ATTEMPTS). */
  afterAttempts: number;
  leaseMs: number;
  logger: Logger;
}

export type Failover = ReturnType<typeof makeFailover>;

/** What a move found: the job moved (its new row), there was nowhere to go, or the fenced write was refused. */
export type MoveResult = { moved: Job } | { stayed: true } | { refused: true };

/** Queued jobs re-routed per pass when a circuit opens. */
const REROUTE_BATCH = 500;

/**
 * Moving jobs between providers (docs/architecture.md, "Failover"). A move is one compare-and-set
 * write under the job's lease: the job goes back to `queued` on the next provider of its chain,
 * without a provider job id, with a `failover` event. The upstream job it leaves behind is recorded
 * on the stint it leaves (`cancel`), and `settle` cancels it before the job's next turn may submit
 * anywhere, so a job never runs on two providers at once (invariant 7), even across a crash.
 */
export function makeFailover(deps: FailoverDeps) {
  const { repo, logger } = deps;

  /** The stints whose upstream job still has to be cancelled. */
  const leftovers = (job: Pick<Job, 'providerHistory'>) => job.providerHistory.filter((stint): stint is ProviderStint & { cancel: string } => stint.cancel !== undefined);

  /**
   * Moves a job held with `token` to the next provider of its chain. `upstreamGone` says the
   * provider job needs no cancel (the upstream lost it, or it failed there). `extra` is written along
   * (the error and timings of a failed turn).
   */
  async function move(job: Job, token: LeaseToken, reason: string, options: { upstreamGone?: boolean; error?: JobError; timings?: JobTimings } = {}): Promise<MoveResult> {
    const next = nextProvider(job, deps.chains, deps.providers, await deps.circuits.unavailable());
    if (!next) return { stayed: true };
    const now = new Date();
    const history = job.providerHistory.length > 0 ? [...job.providerHistory] : [firstStint(job.provider, job.createdAt)];
    const current = history.at(-1) as ProviderStint;
    if (job.providerJobId && !options.upstreamGone) history[history.length - 1] = { ...current, cancel: job.providerJobId };
    history.push({ provider: next.name, since: job.attempts, at: now.toISOString() });
    const patch = {
      provider: next.name,
      providerJobId: null,
      providerHistory: history,
      stage: null,
      progress: null,
      queuePosition: null,
      runAfter: now,
      ...(options.error ? { error: options.error } : {}),
      ...(options.timings ? { timings: options.timings } : {}),
    };
    const event = { type: 'failover' as const, data: { from: job.provider, to: next.name, reason } };
    const moved = job.status === 'running' ? await repo.transition(job.id, ['running'], 'queued', patch, event, token) : await repo.update(job.id, 'queued', patch, event, token);
    if (!moved) return { refused: true };
    logger.warn({ jobId: job.id, from: job.provider, to: next.name, reason }, 'job failed over to the next provider of its chain');
    return { moved };
  }

  /**
   * Cancels the upstream jobs a queued job left on providers it moved away from, then clears them.
   * Answers the job as it then is, `{ blocked }` when one could not be cancelled (the job must not
   * be submitted anywhere yet), or null when the fenced write was refused.
   */
  async function settle(job: Job, token: LeaseToken): Promise<Job | { blocked: true } | null> {
    const pending = leftovers(job);
    if (pending.length === 0) return job;
    for (const stint of pending) {
      const provider = deps.providers.get(stint.provider);
      if (!provider) continue;
      try {
        await provider.cancel({ providerJobId: stint.cancel, request: job.request });
      } catch (error) {
        logger.warn({ err: error, jobId: job.id, provider: stint.provider }, 'could not cancel the upstream job the job left; it is not submitted elsewhere until that succeeds');
        return { blocked: true };
      }
    }
    const history = job.providerHistory.map(({ cancel: _cancel, ...stint }) => stint);
    return repo.update(job.id, 'queued', { providerHistory: history }, undefined, token);
  }

  /**
   * Moves every queued job of `provider` that may fail over to the next provider of its chain, each
   * under its own lease (a job whose lease another turn holds is left to that turn), and enqueues it
   * to run at once. Called when the provider's circuit opens.
   */
  async function rerouteQueued(provider: string): Promise<number> {
    const queued = await repo.listMovable(provider, REROUTE_BATCH);
    let moved = 0;
    for (const candidate of queued) {
      const claim = await repo.acquireLease(candidate.id, deps.leaseMs);
      if (claim.outcome !== 'acquired') continue;
      try {
        if (claim.job.status !== 'queued' || claim.job.provider !== provider) continue;
        const result = await move(claim.job, claim.token, 'circuit_open');
        if (!('moved' in result)) continue;
        moved += 1;
        await deps.queue.enqueue(result.moved.id, entryOptions(result.moved));
      } finally {
        await repo.releaseLease(candidate.id, claim.token);
      }
    }
    if (moved > 0) logger.warn({ provider, moved }, 'circuit opened: queued jobs re-routed along their chains');
    return moved;
  }

  return { move, settle, rerouteQueued, leftovers, afterAttempts: deps.afterAttempts };
}
