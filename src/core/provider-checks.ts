import { v7 as uuidv7 } from 'uuid';
import type { ProviderCheckRecord, ProviderCheckStore } from './ports/stores.ts';
import type { Caller } from './caller.ts';
import type { Logger } from './ports/logger.ts';
import { badRequest } from './errors.ts';
import { UUID_PATTERN } from './ids.ts';

/** How one check ended. */
export interface CheckOutcome {
  healthy: boolean;
  detail: string;
  latencyMs: number;
}

/**
 * A provider connection check run as a task: started now, answered later, readable from any process.
 * `state` is `running` until the provider has answered (or the check timed out); then `done`, and
 * `healthy` says how it went.
 */
export type ProviderCheck = Omit<ProviderCheckRecord, 'owner'>;

export interface ProviderChecksDeps {
  repo: ProviderCheckStore;
  /** One provider's check; never throws for an unhealthy provider (JobService.testProvider). */
  test: (provider: string) => Promise<CheckOutcome>;
  providerNames: () => string[];
  defaultProvider: string;
  /** Longest a check may take; a slower one is recorded as unhealthy. */
  timeoutMs: number;
  logger: Logger;
}

export type ProviderChecks = ReturnType<typeof makeProviderChecks>;

/** Checks are kept this long, then pruned. */
const KEEP_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;
/** A check still running this long past its timeout was left by a process that stopped. */
const ABANDONED_AFTER_TIMEOUT_MS = 30_000;

/**
 * Provider connection checks as tasks. `start` records the check and runs it in the background of
 * the process that took the request; the outcome is written to the database, so `get` answers in
 * any process. `close` waits for the checks this process is running.
 */
export function makeProviderChecks(deps: ProviderChecksDeps) {
  const { repo, logger } = deps;
  const running = new Set<Promise<void>>();
  let lastPrune = 0;

  async function outcomeOf(provider: string): Promise<CheckOutcome> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<CheckOutcome>((resolve) => {
      timer = setTimeout(
        () => resolve({ healthy: false, detail: `The check did not finish within ${deps.timeoutMs} ms`, latencyMs: deps.timeoutMs }),
        deps.timeoutMs,
      );
    });
    const checked = deps.test(provider).catch((error: unknown) => ({
      healthy: false,
      detail: error instanceof Error ? error.message : 'the check failed',
      latencyMs: Math.round(performance.now() - started),
    }));
    try {
      return await Promise.race([checked, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  function present(row: ProviderCheckRecord): ProviderCheck {
    const check: ProviderCheck = {
      id: row.id,
      provider: row.provider,
      state: row.state,
      healthy: row.healthy,
      detail: row.detail,
      latencyMs: row.latencyMs,
      createdAt: row.createdAt,
      completedAt: row.completedAt,
    };
    const abandonedAt = row.createdAt.getTime() + deps.timeoutMs + ABANDONED_AFTER_TIMEOUT_MS;
    if (row.state === 'running' && Date.now() > abandonedAt) {
      return { ...check, state: 'done', healthy: false, detail: 'The check was interrupted: the process running it stopped' };
    }
    return check;
  }

  return {
    /** Starts a check of `provider` (default: the default provider) for `caller`. */
    async start(caller: Caller, provider: string = deps.defaultProvider): Promise<ProviderCheck> {
      const names = deps.providerNames();
      if (!names.includes(provider)) {
        throw badRequest(`Provider "${provider}" is not configured (available: ${names.join(', ')})`, [
          { field: 'provider', in: 'querystring', message: `is not a configured provider; available: ${names.join(', ')}` },
        ]);
      }
      if (Date.now() - lastPrune > PRUNE_EVERY_MS) {
        lastPrune = Date.now();
        repo.prune(new Date(Date.now() - KEEP_MS)).catch((error: unknown) => logger.warn({ err: error }, 'could not prune provider checks'));
      }
      const row = await repo.insert({ id: uuidv7(), owner: caller.owner, provider });
      const task = outcomeOf(provider)
        .then((outcome) => repo.complete(row.id, outcome))
        .catch((error: unknown) => logger.error({ err: error, checkId: row.id }, 'could not record a provider check'))
        .finally(() => running.delete(task));
      running.add(task);
      return present(row);
    },

    /** The check when it exists and `caller` may see it (its own, or any for an unscoped caller); otherwise null. */
    async get(caller: Caller, id: string): Promise<ProviderCheck | null> {
      if (!UUID_PATTERN.test(id)) return null;
      const row = await repo.get(id.toLowerCase());
      if (!row || (caller.owner !== null && row.owner !== caller.owner)) return null;
      return present(row);
    },

    /** Waits for the checks this process is running. Idempotent. */
    async close(): Promise<void> {
      await Promise.all([...running]);
    },
  };
}
