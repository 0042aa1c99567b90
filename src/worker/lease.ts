import type { JobStore, LeaseToken } from '../core/ports/job-store.ts';
import type { Logger } from '../core/ports/logger.ts';

/** The reason a turn's provider calls are aborted with once another turn has taken its lease. */
export class LeaseLostError extends Error {
  constructor(readonly jobId: string) {
    super(`Another turn took over the lease of job ${jobId}`);
    this.name = 'LeaseLostError';
  }
}

/** A turn's hold on its job's lease, renewed in the background until released. */
export interface HeldLease {
  readonly token: LeaseToken;
  /** Aborted (with a LeaseLostError) once a renewal finds that another turn took the lease. */
  readonly signal: AbortSignal;
  /** Whether a renewal found the lease taken over. A write refused by the fence may tell first. */
  readonly lost: boolean;
  /**
   * Stops renewing and releases the lease (unless it was lost, or `finished` says the job is final,
   * which no turn leases again). Idempotent.
   */
  release(options?: { finished?: boolean }): Promise<void>;
}

export interface HoldLeaseDeps {
  repo: JobStore;
  logger: Logger;
}

/**
 * Keeps a lease taken with `acquireLease` alive: renews it every third of `durationMs`, so two
 * renewals can fail (a slow database, a busy event loop) before it expires. A renewal that finds
 * the lease taken over aborts `signal`, which the turn passes to its provider calls: a turn that
 * lost its lease stops waiting on an answer it could not record anyway, and a submission it had not
 * sent yet is not sent.
 */
export function holdLease(deps: HoldLeaseDeps, jobId: string, token: LeaseToken, durationMs: number): HeldLease {
  const controller = new AbortController();
  let renewal: Promise<void> | undefined;
  let releasing: Promise<void> | undefined;

  const renew = () => {
    if (renewal || releasing || controller.signal.aborted) return;
    renewal = deps.repo
      .renewLease(jobId, token, durationMs)
      .then(
        (held) => {
          if (!held) controller.abort(new LeaseLostError(jobId));
        },
        // The fence still protects the row; the next renewal tries again.
        (error: unknown) => deps.logger.warn({ err: error, jobId }, 'could not renew the lease of a running job turn'),
      )
      .finally(() => (renewal = undefined));
  };
  const timer = setInterval(renew, Math.max(1, Math.floor(durationMs / 3)));
  timer.unref();

  return {
    token,
    signal: controller.signal,
    get lost() {
      return controller.signal.aborted;
    },
    release(options = {}) {
      releasing ??= (async () => {
        clearInterval(timer);
        // A renewal landing after the release would hold the lease for nobody until it expired.
        await renewal;
        if (controller.signal.aborted || options.finished) return;
        await deps.repo.releaseLease(jobId, token).catch((error: unknown) => {
          deps.logger.warn({ err: error, jobId }, 'could not release the lease of a job turn; the next turn waits for it to expire');
        });
      })();
      return releasing;
    },
  };
}
