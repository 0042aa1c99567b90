import { and, eq, sql } from 'drizzle-orm';
import type { ClaimRequest, IdempotencyRecord, IdempotencyStore, StoredAnswer } from '../core/ports/stores.ts';
import type { Db } from './client.ts';
import { idempotencyKeys } from './schema.ts';

/**
 * The idempotency_keys table. Ages are measured with the database's clock, so processes whose
 * clocks differ still agree on when a key expires.
 */
export function makeIdempotencyRepository(db: Db, options: { ttlMs: number; abandonedAfterMs: number }): IdempotencyStore {
  const olderThan = (ms: number) => sql`${idempotencyKeys.createdAt} < now() - make_interval(secs => ${ms / 1000})`;

  return {
    /**
     * Takes (scope, key) for this request: true when it is now ours, because it was free, expired,
     * or left pending by a request that is gone (older than `abandonedAfterMs`). Otherwise someone
     * else holds it: read the record with `find`.
     */
    async claim(request: ClaimRequest): Promise<boolean> {
      const claimed = await db
        .insert(idempotencyKeys)
        .values({ ...request, state: 'pending' })
        .onConflictDoUpdate({
          target: [idempotencyKeys.scope, idempotencyKeys.key],
          set: {
            fingerprint: request.fingerprint,
            claim: request.claim,
            state: 'pending',
            statusCode: null,
            contentType: null,
            body: null,
            createdAt: sql`now()`,
          },
          setWhere: sql`${olderThan(options.ttlMs)} or (${idempotencyKeys.state} = 'pending' and ${olderThan(options.abandonedAfterMs)})`,
        })
        .returning({ claim: idempotencyKeys.claim });
      return claimed.length > 0;
    },

    /** The live record of a key (an expired one counts as none). */
    async find(scope: string, key: string): Promise<IdempotencyRecord | null> {
      const [row] = await db
        .select()
        .from(idempotencyKeys)
        .where(and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key), sql`not (${olderThan(options.ttlMs)})`));
      return row ?? null;
    },

    /** Records the answer of the request holding the claim; repeats are answered with it from now on. */
    async complete(request: ClaimRequest, answer: StoredAnswer): Promise<void> {
      await db
        .update(idempotencyKeys)
        .set({ state: 'done', ...answer })
        .where(and(eq(idempotencyKeys.scope, request.scope), eq(idempotencyKeys.key, request.key), eq(idempotencyKeys.claim, request.claim)));
    },

    /** Gives the key up (the request failed), so that a retry runs afresh. */
    async release(request: ClaimRequest): Promise<void> {
      await db
        .delete(idempotencyKeys)
        .where(
          and(
            eq(idempotencyKeys.scope, request.scope),
            eq(idempotencyKeys.key, request.key),
            eq(idempotencyKeys.claim, request.claim),
            eq(idempotencyKeys.state, 'pending'),
          ),
        );
    },

    /** Deletes up to `limit` expired records; returns how many. */
    async prune(limit: number): Promise<number> {
      const due = db
        .select({ scope: idempotencyKeys.scope, key: idempotencyKeys.key })
        .from(idempotencyKeys)
        .where(olderThan(options.ttlMs))
        .limit(limit);
      const removed = await db
        .delete(idempotencyKeys)
        .where(sql`(${idempotencyKeys.scope}, ${idempotencyKeys.key}) in (${due})`)
        .returning({ key: idempotencyKeys.key });
      return removed.length;
    },
  };
}
