import { and, eq, inArray, lt, ne, sql, type Column } from 'drizzle-orm';
import { RECENT_WINDOW_MS, type Admission, type CallOutcome, type CircuitState, type CircuitStore, type CircuitView } from '../core/ports/circuits.ts';
import type { Db } from './client.ts';
import { jobs, providerCalls, providerCircuits } from './schema.ts';

export interface CircuitSettings {
  /** Retryable failures or timeouts in a row that open a circuit (CIRCUIT_FAILURES). */
  failures: number;
  /** How long an open circuit waits before its probe (CIRCUIT_COOLDOWN). */
  cooldownMs: number;
  /** How long a claimed probe holds before another job may claim it (its worker may have died). */
  probeMs: number;
}

const millis = (ms: number) => sql`(${ms} * interval '1 millisecond')`;
/** Milliseconds from now (the database's clock) until `column`, at least 0. */
const msUntil = (column: Column) =>
  sql<number>`greatest(0, ceil(extract(epoch from (${column} - now())) * 1000))::float8`.mapWith(Number);
/** A "look again" for jobs waiting on another job's probe: soon, but not a busy loop. */
const PROBE_RECHECK_MS = { min: 250, max: 2000 };

/**
 * The circuits of every provider in one row each, changed only by single statements or under the
 * row's lock, so processes that record outcomes at once never lose one. See core/ports/circuits.ts.
 */
export function makeCircuitRepository(db: Db, settings: CircuitSettings): CircuitStore {
  async function ensure(provider: string): Promise<void> {
    await db.insert(providerCircuits).values({ provider }).onConflictDoNothing();
  }

  async function admit(provider: string, jobId: string): Promise<Admission> {
    const [row] = await db
      .select({
        state: providerCircuits.state,
        pausedMs: msUntil(providerCircuits.pausedUntil),
        retryMs: msUntil(providerCircuits.retryAt),
        probeMs: msUntil(providerCircuits.probeExpiresAt),
        probeJobId: providerCircuits.probeJobId,
      })
      .from(providerCircuits)
      .where(eq(providerCircuits.provider, provider));
    if (!row) return { admitted: true, probe: false };
    if (row.pausedMs > 0) return { admitted: false, reason: 'paused', retryInMs: row.pausedMs };
    if (row.state === 'closed') return { admitted: true, probe: false };
    if (row.state === 'open' && row.retryMs > 0) return { admitted: false, reason: 'open', retryInMs: row.retryMs };
    // Cooled down (or half-open): one job's call is the probe, claimed in one statement so one process wins.
    const claimed = await db
      .update(providerCircuits)
      .set({ state: 'half_open', probeJobId: jobId, probeExpiresAt: sql`now() + ${millis(settings.probeMs)}`, updatedAt: sql`now()` })
      .where(
        and(
          eq(providerCircuits.provider, provider),
          sql`(${providerCircuits.pausedUntil} is null or ${providerCircuits.pausedUntil} <= now())`,
          sql`((${providerCircuits.state} = 'open' and ${providerCircuits.retryAt} <= now())
            or (${providerCircuits.state} = 'half_open' and (${providerCircuits.probeJobId} is null or ${providerCircuits.probeJobId} = ${jobId} or ${providerCircuits.probeExpiresAt} <= now())))`,
        ),
      )
      .returning({ provider: providerCircuits.provider });
    if (claimed.length === 1) return { admitted: true, probe: true };
    const wait = Math.min(PROBE_RECHECK_MS.max, Math.max(PROBE_RECHECK_MS.min, row.probeMs));
    return { admitted: false, reason: 'probing', retryInMs: wait };
  }

  async function record(provider: string, jobId: string, outcome: CallOutcome): Promise<{ opened: boolean }> {
    await db.insert(providerCalls).values({ provider, outcome: outcome.kind, ms: Math.max(0, Math.round(outcome.ms)) });
    switch (outcome.kind) {
      case 'ok':
      case 'refused':
        // The upstream answered: the run of failures ends, and the probe's answer closes the circuit.
        await db
          .update(providerCircuits)
          .set({
            consecutiveFailures: 0,
            state: sql`case when ${providerCircuits.state} = 'half_open' and ${providerCircuits.probeJobId} = ${jobId} then 'closed' else ${providerCircuits.state} end`,
            probeJobId: sql`case when ${providerCircuits.probeJobId} = ${jobId} then null else ${providerCircuits.probeJobId} end`,
            updatedAt: sql`now()`,
          })
          .where(
            and(
              eq(providerCircuits.provider, provider),
              sql`(${providerCircuits.consecutiveFailures} > 0 or ${providerCircuits.probeJobId} = ${jobId})`,
            ),
          );
        return { opened: false };
      case 'rate_limited':
        if (outcome.retryAfterMs === undefined || outcome.retryAfterMs <= 0) return { opened: false };
        await ensure(provider);
        // A later Retry-After extends the pause, an earlier one never shortens it; a probe that met it lets another job probe afterwards.
        await db
          .update(providerCircuits)
          .set({
            pausedUntil: sql`greatest(coalesce(${providerCircuits.pausedUntil}, now()), now() + ${millis(outcome.retryAfterMs)})`,
            probeJobId: sql`case when ${providerCircuits.probeJobId} = ${jobId} then null else ${providerCircuits.probeJobId} end`,
            updatedAt: sql`now()`,
          })
          .where(eq(providerCircuits.provider, provider));
        return { opened: false };
      case 'failure':
        return failure(provider, jobId);
    }
  }

  async function failure(provider: string, jobId: string): Promise<{ opened: boolean }> {
    await ensure(provider);
    return db.transaction(async (tx) => {
      const [row] = await tx.select().from(providerCircuits).where(eq(providerCircuits.provider, provider)).for('update');
      if (!row) return { opened: false };
      const failures = row.consecutiveFailures + 1;
      const probeFailed = row.state === 'half_open' && row.probeJobId === jobId;
      const tripped = row.state === 'closed' && failures >= settings.failures;
      const open = probeFailed || tripped;
      await tx
        .update(providerCircuits)
        .set({
          consecutiveFailures: failures,
          ...(open
            ? { state: 'open' as CircuitState, openedAt: sql`now()`, retryAt: sql`now() + ${millis(settings.cooldownMs)}`, probeJobId: null, probeExpiresAt: null }
            : {}),
          updatedAt: sql`now()`,
        })
        .where(eq(providerCircuits.provider, provider));
      return { opened: open };
    });
  }

  async function unavailable(): Promise<Set<string>> {
    const rows = await db.select({ provider: providerCircuits.provider }).from(providerCircuits).where(ne(providerCircuits.state, 'closed'));
    return new Set(rows.map((row) => row.provider));
  }

  async function overview(providers: string[]): Promise<CircuitView[]> {
    if (providers.length === 0) return [];
    const [circuits, calls, queued] = await Promise.all([
      db.select().from(providerCircuits).where(inArray(providerCircuits.provider, providers)),
      db
        .select({
          provider: providerCalls.provider,
          calls: sql<number>`count(*)`.mapWith(Number),
          failures: sql<number>`count(*) filter (where ${providerCalls.outcome} = 'failure')`.mapWith(Number),
          p50: sql<number | null>`percentile_cont(0.5) within group (order by ${providerCalls.ms}) filter (where ${providerCalls.outcome} = 'ok')`,
        })
        .from(providerCalls)
        .where(and(inArray(providerCalls.provider, providers), sql`${providerCalls.at} > now() - ${millis(RECENT_WINDOW_MS)}`))
        .groupBy(providerCalls.provider),
      db
        .select({ provider: jobs.provider, count: sql<number>`count(*)`.mapWith(Number) })
        .from(jobs)
        .where(and(eq(jobs.status, 'queued'), inArray(jobs.provider, providers)))
        .groupBy(jobs.provider),
    ]);
    return providers.map((provider) => {
      const circuit = circuits.find((row) => row.provider === provider);
      const recent = calls.find((row) => row.provider === provider);
      const paused = circuit?.pausedUntil && circuit.pausedUntil.getTime() > Date.now() ? circuit.pausedUntil : null;
      return {
        provider,
        state: circuit?.state ?? 'closed',
        consecutiveFailures: circuit?.consecutiveFailures ?? 0,
        openedAt: circuit?.state === 'closed' ? null : (circuit?.openedAt ?? null),
        retryAt: circuit?.state === 'open' ? circuit.retryAt : null,
        pausedUntil: paused,
        recentCalls: recent?.calls ?? 0,
        errorRate: recent && recent.calls > 0 ? recent.failures / recent.calls : null,
        p50LatencyMs: recent?.p50 === null || recent?.p50 === undefined ? null : Math.round(Number(recent.p50)),
        queued: queued.find((row) => row.provider === provider)?.count ?? 0,
      };
    });
  }

  async function prune(): Promise<number> {
    const removed = await db
      .delete(providerCalls)
      .where(lt(providerCalls.at, sql`now() - ${millis(RECENT_WINDOW_MS)}`))
      .returning({ id: providerCalls.id });
    return removed.length;
  }

  return { admit, record, unavailable, overview, prune };
}
