import { asc, count, eq, like, sql } from 'drizzle-orm';
import type { ResourceRow, ResourceStore } from '../core/ports/stores.ts';
import type { Db } from './client.ts';
import { resources } from './schema.ts';

/** `%`, `_` and `\` are LIKE wildcards; a prefix search must match them literally. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

/**
 * All SQL about the AIR catalogue. Keys are canonical AIRs (the caller canonicalises); documents are
 * stored as given, so whatever a client wrote is what it reads back.
 */
export function makeResourceRepository(db: Db): ResourceStore {
  return {
    async get(air: string): Promise<ResourceRow | null> {
      const [row] = await db.select().from(resources).where(eq(resources.air, air));
      return row ?? null;
    },

    /** null when the AIR is already catalogued: creating never overwrites. */
    async insert(air: string, data: Record<string, unknown>): Promise<ResourceRow | null> {
      const [row] = await db.insert(resources).values({ air, data }).onConflictDoNothing().returning();
      return row ?? null;
    },

    /** null when the AIR is not catalogued. */
    async replace(air: string, data: Record<string, unknown>): Promise<ResourceRow | null> {
      const [row] = await db.update(resources).set({ data, updatedAt: new Date() }).where(eq(resources.air, air)).returning();
      return row ?? null;
    },

    /**
     * Shallow-merges `patch` into the stored document in one statement, so two concurrent patches of
     * different fields both survive. null when the AIR is not catalogued.
     */
    async merge(air: string, patch: Record<string, unknown>): Promise<ResourceRow | null> {
      const [row] = await db
        .update(resources)
        .set({ data: sql`${resources.data} || ${JSON.stringify(patch)}::jsonb`, updatedAt: new Date() })
        .where(eq(resources.air, air))
        .returning();
      return row ?? null;
    },

    async delete(air: string): Promise<boolean> {
      const deleted = await db.delete(resources).where(eq(resources.air, air)).returning({ air: resources.air });
      return deleted.length > 0;
    },

    /** One page in AIR order, optionally only AIRs that start with `prefix`. */
    async list(query: { limit: number; offset: number; prefix?: string }): Promise<{ total: number; items: ResourceRow[] }> {
      const where = query.prefix === undefined ? undefined : like(resources.air, `${escapeLike(query.prefix)}%`);
      const [items, [counted]] = await Promise.all([
        db.select().from(resources).where(where).orderBy(asc(resources.air)).limit(query.limit).offset(query.offset),
        db.select({ total: count() }).from(resources).where(where),
      ]);
      return { total: counted?.total ?? 0, items };
    },
  };
}
