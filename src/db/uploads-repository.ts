import { and, asc, eq, gt, inArray, lte, sql } from 'drizzle-orm';
import type { Upload, UploadStore } from '../core/ports/inputs.ts';
import type { Db } from './client.ts';
import { jobs, uploads } from './schema.ts';

/** The uploads table; whether a stored object is still used looks at uploads and at every job's inputs. */
export function makeUploadRepository(db: Db): UploadStore {
  return {
    async insert(upload: Upload): Promise<void> {
      await db.insert(uploads).values(upload);
    },

    async get(id: string): Promise<Upload | null> {
      const [row] = await db.select().from(uploads).where(eq(uploads.id, id));
      return row ?? null;
    },

    async listExpired(now: Date, limit: number): Promise<Upload[]> {
      return db.select().from(uploads).where(lte(uploads.expiresAt, now)).orderBy(asc(uploads.expiresAt)).limit(limit);
    },

    async delete(ids: string[]): Promise<void> {
      if (ids.length > 0) await db.delete(uploads).where(inArray(uploads.id, ids));
    },

    async isKeyInUse(key: string, now = new Date()): Promise<boolean> {
      const [upload] = await db
        .select({ id: uploads.id })
        .from(uploads)
        .where(and(eq(uploads.key, key), gt(uploads.expiresAt, now)))
        .limit(1);
      if (upload) return true;
      const [job] = await db
        .select({ id: jobs.id })
        .from(jobs)
        .where(sql`${jobs.request} -> 'inputs' @> ${JSON.stringify([{ key }])}::jsonb`)
        .limit(1);
      return job !== undefined;
    },
  };
}
