import { eq, lt } from 'drizzle-orm';
import type { ProviderCheckRecord, ProviderCheckStore } from '../core/ports/stores.ts';
import type { Db } from './client.ts';
import { providerChecks } from './schema.ts';

/** The provider_checks table: one row per connection check run as a task. */
export function makeProviderCheckRepository(db: Db): ProviderCheckStore {
  return {
    async insert(row: { id: string; owner: string | null; provider: string }): Promise<ProviderCheckRecord> {
      const [inserted] = await db
        .insert(providerChecks)
        .values({ ...row, state: 'running' })
        .returning();
      if (!inserted) throw new Error('insert returned no row');
      return inserted;
    },

    async complete(id: string, outcome: { healthy: boolean; detail: string; latencyMs: number }): Promise<void> {
      await db
        .update(providerChecks)
        .set({ ...outcome, state: 'done', completedAt: new Date() })
        .where(eq(providerChecks.id, id));
    },

    async get(id: string): Promise<ProviderCheckRecord | null> {
      const [row] = await db.select().from(providerChecks).where(eq(providerChecks.id, id));
      return row ?? null;
    },

    /** Deletes the checks started before `before`. */
    async prune(before: Date): Promise<void> {
      await db.delete(providerChecks).where(lt(providerChecks.createdAt, before));
    },
  };
}
