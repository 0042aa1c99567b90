import { createHash, randomUUID } from 'node:crypto';
import { ProviderError } from '../core/errors.ts';
import { isTerminal, type Job, type JobError, type JobTimings } from '../core/job.ts';
import type { JobStore, NewImage } from '../core/ports/job-store.ts';
import type { Logger } from '../core/ports/logger.ts';
import { errorClass, type Metrics } from '../core/ports/metrics.ts';
import type { HandlerResult } from '../core/ports/queue.ts';
import type { Provider, ProviderContext, ProviderOutput, ProviderRegistry } from '../core/ports/provider.ts';
import { imageKeys, readObject, type ImagePreparer, type ObjectStorage } from '../core/ports/storage.ts';
import type { JobInput } from '../core/request.ts';
import { actualCost, type Pricing, type TokenUsage } from '../core/pricing.ts';
import { pollDelayMs, retryDelayMs } from '../core/backoff.ts';
import { holdLease, type HeldLease } from './lease.ts';
import { attemptsOnCurrent } from '../core/failover.ts';
import type { CallOutcome, CircuitStore } from '../core/ports/circuits.ts';
import type { Failover } from './failover.ts';

export interface PipelineDeps {
  repo: JobStore;
  providers: ProviderRegistry;
  storage: ObjectStorage;
  /** Decodes each original and makes its thumbnail (sharp, in production). */
  prepareImage: ImagePreparer;
  retry: { baseMs: number; maxMs: number };
  /** Longest a single provider call may take before it counts as a (retryable) timeout. */
  providerCallTimeoutMs: number;
  /**
   * How long a turn's lease on its job lasts unless renewed (every third of it). A turn of a worker
   * that died holds the job for at most this long.
   */
  leaseMs: number;
  logger: Logger;
  metrics?: Metrics;
  /** What jobs cost (PROVIDER_PRICES): a priced job records its actual cost when it ends. */
  pricing?: Pricing;
  /**
   * Circuit breakers and upstream pauses, shared by every process: a turn asks before it calls a
   * provider, and tells the outcome of every call. Absent: every call is made (unit tests of one part).
   */
  circuits?: CircuitStore;
  /** Moves jobs along their fallback chains (PROVIDER_FALLBACK); absent: jobs stay on their provider. */
  failover?: Failover;
  random?: () => number;
}

export type Pipeline = ReturnType<typeof makePipeline>;

/** A running job is polled (and its row touched) at least this often; the reconciler relies on it. */
export const MAX_POLL_DELAY_MS = 5000;
/** A delivery that finds another turn holding the lease looks again this long after it expires. */
export const LEASE_RECHECK_MARGIN_MS = 100;

/** How a failed provider call counts for its circuit. */
function outcomeOf(error: ProviderError, ms: number): CallOutcome {
  const kind = errorClass(error);
  if (kind === 'rate_limited') return { kind: 'rate_limited', ms, retryAfterMs: error.retryAfterMs };
  if (kind === 'permanent') return { kind: 'refused', ms };
  return { kind: 'failure', ms };
}

interface Turn {
  job: Job;
  provider: Provider;
  timings: JobTimings;
  lease: HeldLease;
}

/**
 * One turn of a job: take the job's lease (or, when another turn holds it, ask to look again once
 * it expires), read the row, then do the next step (start, submit, poll, store, finish) and say when
 * the job wants its next turn. Every step starts from the row, so a repeated or resumed delivery
 * carries on where the last one stopped; every write carries the lease's fencing token, so a turn
 * that lost its lease to another changes nothing (docs/architecture.md, "The six invariants").
 */
export function makePipeline(deps: PipelineDeps) {
  const { repo, storage, logger } = deps;
  const random = deps.random ?? Math.random;

  async function run(jobId: string): Promise<HandlerResult> {
    const claim = await repo.acquireLease(jobId, deps.leaseMs);
    if (claim.outcome === 'finished') return undefined;
    if (claim.outcome === 'held') return { runAgainInMs: claim.expiresInMs + LEASE_RECHECK_MARGIN_MS };
    const lease = holdLease({ repo, logger }, jobId, claim.token, deps.leaseMs);
    let finished = false;
    try {
      const next = await leased(claim.job, lease);
      // A turn that wants no other has finished the job (or lost it): nobody takes a finished job's
      // lease, so it need not be released.
      finished = next === undefined;
      return next;
    } finally {
      await lease.release({ finished });
      if (lease.lost) logger.warn({ jobId }, 'another turn took over the job; this turn stopped without writing');
    }
  }

  async function leased(row: Job, lease: HeldLease): Promise<HandlerResult> {
    let job: Job | null = row;
    const waitMs = job.runAfter.getTime() - Date.now();
    if (waitMs > 0) return { runAgainInMs: waitMs };
    if (job.deadlineAt && job.deadlineAt.getTime() <= Date.now()) return expire(job, lease);

    if (job.status === 'queued' && deps.failover) {
      // An upstream job left on a provider the job moved away from is cancelled before anything is submitted elsewhere.
      const settled = await deps.failover.settle(job, lease.token);
      if (settled === null) return undefined;
      if ('blocked' in settled) return { runAgainInMs: untilDeadline(job, retryDelayMs(job.attempts + 1, deps.retry, random)) };
      job = settled;
    }

    const gate = await admit(job, lease);
    if (gate !== null) return gate;

    if (job.status === 'queued') {
      job = await repo.transition(
        job.id,
        ['queued'],
        'running',
        {
          stage: job.providerJobId ? 'waiting_upstream' : 'submitting',
          attempts: job.attempts + 1,
          startedAt: job.startedAt ?? new Date(),
        },
        undefined,
        lease.token,
      );
      if (!job) return undefined;
    }

    const provider = deps.providers.get(job.provider);
    if (!provider) {
      return fail(job, lease, { code: 'provider_unavailable', message: `Provider ${job.provider} is not configured`, retryable: false });
    }

    // `turn.job` follows the row as this turn changes it, so a failure is judged on the latest
    // row (with the provider job id just saved), never on the row the turn started from.
    const turn: Turn = { job, provider, timings: { ...job.timings }, lease };
    try {
      return await step(turn);
    } catch (error) {
      // Aborted (or failed) after another turn took the job: that turn decides what happens next.
      if (lease.lost) return undefined;
      return handleFailure(turn, error);
    }
  }

  async function step(turn: Turn): Promise<HandlerResult> {
    const { provider, timings, lease } = turn;
    let job = turn.job;
    if (!job.providerJobId) {
      if (lease.lost) return undefined;
      const started = performance.now();
      const { providerJobId } = await observed(turn, () => provider.submit(job.request, context(turn)));
      timings.providerMs += performance.now() - started;
      const saved = await repo.update(
        job.id,
        'running',
        { providerJobId, stage: 'waiting_upstream', timings },
        { type: 'stage', data: { providerJobId } },
        lease.token,
      );
      if (!saved) {
        // Cancelled or expired while submitting, or taken over by another turn (which submits on
        // its own): nobody will poll the upstream job just started, so stop it.
        await cancelUpstream(provider, job, providerJobId);
        return undefined;
      }
      job = turn.job = saved;
    }

    const started = performance.now();
    const providerJobId = job.providerJobId as string;
    const result = await observed(turn, () => provider.poll({ providerJobId, request: job.request }, context(turn)));
    timings.providerMs += performance.now() - started;

    switch (result.state) {
      case 'queued':
      case 'running': {
        const progress = result.state === 'running' ? (result.progress ?? null) : 0;
        const queuePosition = result.state === 'queued' ? (result.queuePosition ?? null) : null;
        const changed = progress !== job.progress || queuePosition !== job.queuePosition || job.stage !== 'waiting_upstream';
        const updated = await repo.update(
          job.id,
          'running',
          { stage: 'waiting_upstream', progress, queuePosition, timings },
          changed ? { type: 'progress', data: { progress, queuePosition } } : undefined,
          lease.token,
        );
        if (!updated) return undefined;
        const runningFor = Date.now() - (job.startedAt?.getTime() ?? Date.now());
        return { runAgainInMs: untilDeadline(job, Math.min(MAX_POLL_DELAY_MS, result.nextPollMs ?? pollDelayMs(runningFor))) };
      }
      case 'cancelled':
        return fail(job, lease, { code: 'upstream_cancelled', message: 'The upstream service cancelled the job', retryable: false }, timings);
      case 'succeeded':
        return store(turn, result.outputs, result.usage ?? null);
    }
  }

  async function store(turn: Turn, allOutputs: ProviderOutput[], usage: TokenUsage | null): Promise<HandlerResult> {
    const { job, timings, lease } = turn;
    const outputs = allOutputs.slice(0, job.request.numImages);
    if (outputs.length === 0) {
      throw new ProviderError('The provider finished without returning an image', { code: 'no_output', retryable: true, resubmit: true });
    }
    const storing = await repo.update(job.id, 'running', { stage: 'storing', progress: 1, queuePosition: null }, { type: 'stage' }, lease.token);
    if (!storing) return undefined;

    const rows: NewImage[] = [];
    const written: string[] = [];
    for (const [index, output] of outputs.entries()) {
      const imageStarted = performance.now();
      const prepared = await deps.prepareImage(output.bytes).catch((cause: unknown) => {
        throw new ProviderError(`The provider returned an unreadable image (${output.contentType})`, {
          code: 'invalid_output',
          retryable: true,
          resubmit: true,
          cause,
        });
      });
      timings.imageMs += performance.now() - imageStarted;

      const keys = imageKeys(job.id, index, output.contentType);
      // The keys are the job's, so a turn that lost its lease would overwrite the new holder's objects.
      if (lease.lost) return undefined;
      const storageStarted = performance.now();
      written.push(keys.originalKey, keys.thumbnailKey);
      await storage.put(keys.originalKey, output.bytes, output.contentType);
      await storage.put(keys.thumbnailKey, prepared.thumbnail, 'image/webp');
      timings.storageMs += performance.now() - storageStarted;

      rows.push({
        id: randomUUID(),
        jobId: job.id,
        index,
        ...keys,
        contentType: output.contentType,
        width: prepared.width,
        height: prepared.height,
        bytes: output.bytes.length,
        sha256: createHash('sha256').update(output.bytes).digest('hex'),
        seed: output.seed ?? null,
      });
    }
    const done = await repo.succeed(
      job.id,
      rows,
      { stage: null, progress: 1, queuePosition: null, error: null, completedAt: new Date(), timings, usage, ...costPatch(job, rows, timings, usage) },
      { type: 'status', data: { images: rows.length } },
      lease.token,
    );
    if (!done) await discardStored(job, written);
    return undefined;
  }

  /**
   * After a store whose final write was refused. When a cancel or an expiry won, nothing of the job's
   * images may remain. When another turn took the job over, or another delivery already succeeded,
   * the images under these keys are (or will be) that turn's: keep them.
   */
  async function discardStored(job: Job, written: string[]): Promise<void> {
    const current = await repo.get(job.id);
    if (!current || !isTerminal(current.status) || current.status === 'succeeded') return;
    const removed = await repo.deleteImages(job.id);
    await storage.delete([...new Set([...written, ...removed.flatMap((image) => [image.originalKey, image.thumbnailKey])])]);
  }

  async function handleFailure(turn: Turn, error: unknown): Promise<HandlerResult> {
    const { job, provider, timings, lease } = turn;
    const failure = classify(error, job);
    if (error instanceof ProviderError) deps.metrics?.providerError(job.provider, errorClass(failure));
    const jobError: JobError = { code: failure.code, message: failure.message, retryable: failure.retryable };
    // A provider that keeps failing a job hands it to the next of its chain: after FAILOVER_AFTER_ATTEMPTS
    // attempts on it, or at the job's last attempt. A 429 asks for patience, not another provider.
    const movable = error instanceof ProviderError && failure.retryable && errorClass(failure) !== 'rate_limited' && deps.failover !== undefined;
    if (movable && (attemptsOnCurrent(job) >= (deps.failover?.afterAttempts ?? Infinity) || job.attempts >= job.maxAttempts)) {
      const result = await deps.failover?.move(job, lease.token, failure.code, { upstreamGone: failure.resubmit || job.providerJobId === null, error: jobError, timings });
      if (result && 'refused' in result) return undefined;
      if (result && 'moved' in result) return { runAgainInMs: 0 };
    }
    if (failure.retryable && job.attempts < job.maxAttempts) {
      const delay = untilDeadline(job, Math.max(failure.retryAfterMs ?? 0, retryDelayMs(job.attempts, deps.retry, random)));
      const keepUpstream = !failure.resubmit && job.providerJobId !== null;
      const requeued = await repo.transition(
        job.id,
        ['running'],
        'queued',
        {
          stage: null,
          progress: null,
          queuePosition: null,
          error: jobError,
          timings,
          runAfter: new Date(Date.now() + delay),
          providerJobId: keepUpstream ? job.providerJobId : null,
        },
        { type: 'status', data: { retryInMs: delay } },
        lease.token,
      );
      if (!requeued) return undefined;
      logger.warn({ jobId: job.id, attempt: job.attempts, code: failure.code, retryInMs: delay }, 'job attempt failed; retrying');
      return { runAgainInMs: delay };
    }
    if (job.providerJobId && !failure.resubmit) await cancelUpstream(provider, job, job.providerJobId);
    return fail(job, lease, jobError, timings);
  }

  /**
   * The provider's circuit and pause, asked before the turn calls it. A job whose provider is down
   * moves along its chain when it may; otherwise (pinned, nowhere to go, or only paused) it waits
   * until the provider may be asked again. Answers what the turn returns, or undefined to go on.
   */
  async function admit(job: Job, lease: HeldLease): Promise<HandlerResult | null> {
    if (!deps.circuits) return null;
    const admission = await deps.circuits.admit(job.provider, job.id);
    if (admission.admitted) return null;
    if (admission.reason !== 'paused' && deps.failover) {
      const result = await deps.failover.move(job, lease.token, 'circuit_open');
      if ('refused' in result) return undefined;
      if ('moved' in result) return { runAgainInMs: 0 };
    }
    return { runAgainInMs: untilDeadline(job, admission.retryInMs) };
  }

  /** Runs one provider call and tells the circuit how it went (a call aborted because the turn lost its lease is nobody's failure). */
  async function observed<T>(turn: Turn, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await call();
      await tell(turn, { kind: 'ok', ms: performance.now() - started });
      return result;
    } catch (error) {
      if (!turn.lease.lost && error instanceof ProviderError) await tell(turn, outcomeOf(error, performance.now() - started));
      throw error;
    }
  }

  async function tell(turn: Turn, outcome: CallOutcome): Promise<void> {
    if (!deps.circuits) return;
    const provider = turn.job.provider;
    try {
      const { opened } = await deps.circuits.record(provider, turn.job.id, outcome);
      if (!opened) return;
      logger.warn({ provider }, 'provider circuit opened: its jobs go elsewhere or wait for the probe');
      deps.failover?.rerouteQueued(provider).catch((error: unknown) => logger.warn({ err: error, provider }, 'could not re-route the queued jobs of an open circuit'));
    } catch (error) {
      logger.warn({ err: error, provider }, 'could not record a provider call in its circuit');
    }
  }

  function classify(error: unknown, job: Job): ProviderError {
    if (error instanceof ProviderError) return error;
    logger.error({ err: error, jobId: job.id }, 'unexpected error while running a job');
    return new ProviderError('darkroom hit an internal error while running the job', { code: 'internal_error', retryable: true });
  }

  /** A priced job's actual cost: the images it stored, the upstream time it spent (billed even when it failed) and the tokens reported. */
  function costPatch(job: Job, images: { width: number; height: number }[], timings: JobTimings, usage: TokenUsage | null = null): Partial<Pick<Job, 'cost'>> {
    if (!job.cost || !deps.pricing) return {};
    return { cost: actualCost(deps.pricing, job.provider, job.request, { images, upstreamMs: timings.providerMs, usage }, job.cost) };
  }

  async function fail(job: Job, lease: HeldLease, error: JobError, timings?: JobTimings): Promise<HandlerResult> {
    await repo.transition(
      job.id,
      ['running'],
      'failed',
      { stage: null, queuePosition: null, error, completedAt: new Date(), ...(timings ? { timings } : {}), ...costPatch(job, [], timings ?? job.timings) },
      undefined,
      lease.token,
    );
    return undefined;
  }

  async function expire(job: Job, lease: HeldLease): Promise<HandlerResult> {
    const expired = await repo.transition(
      job.id,
      ['queued', 'running'],
      'expired',
      {
        stage: null,
        queuePosition: null,
        completedAt: new Date(),
        ...costPatch(job, [], job.timings),
        error: {
          code: 'deadline_exceeded',
          message: `The job did not finish before its deadline (${job.deadlineAt?.toISOString()})`,
          retryable: false,
        },
      },
      undefined,
      lease.token,
    );
    if (!expired) return undefined;
    const provider = deps.providers.get(job.provider);
    if (provider && job.providerJobId) await cancelUpstream(provider, job, job.providerJobId);
    for (const stint of deps.failover?.leftovers(job) ?? []) {
      const left = deps.providers.get(stint.provider);
      if (left) await cancelUpstream(left, job, stint.cancel);
    }
    return undefined;
  }

  async function cancelUpstream(provider: Provider, job: Job, providerJobId: string): Promise<void> {
    await provider.cancel({ providerJobId, request: job.request }).catch((error: unknown) => {
      logger.warn({ err: error, jobId: job.id, provider: provider.name }, 'could not cancel the upstream job');
    });
  }

  function context(turn: Turn): ProviderContext {
    const { job, lease } = turn;
    return {
      jobId: job.id,
      deadlineAt: job.deadlineAt,
      signal: AbortSignal.any([AbortSignal.timeout(deps.providerCallTimeoutMs), lease.signal]),
      readInput: readStoredInput,
    };
  }

  async function readStoredInput(input: JobInput): Promise<Buffer> {
    const object = await readObject(storage, input.key);
    if (!object) throw new ProviderError(`The job's ${input.role} image is missing from storage (${input.key})`, { code: 'input_missing', retryable: false });
    return object.bytes;
  }

  /** Never sleep past the deadline: the job must wake up to expire on time. */
  function untilDeadline(job: Job, delayMs: number): number {
    if (!job.deadlineAt) return delayMs;
    return Math.max(0, Math.min(delayMs, job.deadlineAt.getTime() - Date.now()));
  }

  return { run };
}
