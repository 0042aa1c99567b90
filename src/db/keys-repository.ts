import { createHash, randomBytes } from 'node:crypto';
import { and, asc, eq, isNull } from 'drizzle-orm';
import { v7 as uuidv7 } from 'uuid';
import { KEY_PREFIX, KEY_SCOPES, type ApiKey, type KeyScope, type KeyStore, type NewKey } from '../core/ports/stores.ts';
import type { Db } from './client.ts';
import { apiKeys } from './schema.ts';

/** Characters of a key shown in lists: the `dk_` marker and a few random ones. */
const SHOWN_PREFIX_LENGTH = 10;

const hashOf = (key: string) => createHash('sha256').update(key).digest('hex');

function toKey(row: typeof apiKeys.$inferSelect): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes.filter((scope): scope is KeyScope => (KEY_SCOPES as readonly string[]).includes(scope)),
    maxActiveJobs: row.maxActiveJobs,
    maxBatchSize: row.maxBatchSize,
    budget: row.budget ?? null,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}

export function makeKeyRepository(db: Db): KeyStore {
  return {
    /** Stores a new key and returns it with its secret, which is never readable again. */
    async create(input: NewKey): Promise<{ key: ApiKey; secret: string }> {
      const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
      const [row] = await db
        .insert(apiKeys)
        .values({
          id: uuidv7(),
          name: input.name,
          prefix: secret.slice(0, SHOWN_PREFIX_LENGTH),
          hash: hashOf(secret),
          scopes: [...new Set(input.scopes ?? [])],
          maxActiveJobs: input.maxActiveJobs ?? null,
          maxBatchSize: input.maxBatchSize ?? null,
          budget: input.budget ?? null,
        })
        .returning();
      if (!row) throw new Error('insert returned no row');
      return { key: toKey(row), secret };
    },

    /** The live key whose secret this is, or null (unknown or revoked). */
    async verify(secret: string): Promise<ApiKey | null> {
      const [row] = await db
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.hash, hashOf(secret)), isNull(apiKeys.revokedAt)));
      return row ? toKey(row) : null;
    },

    /** Every key, revoked ones included (they say so), oldest first. */
    async list(): Promise<ApiKey[]> {
      return (await db.select().from(apiKeys).orderBy(asc(apiKeys.id))).map(toKey);
    },

    async get(id: string): Promise<ApiKey | null> {
      const [row] = await db.select().from(apiKeys).where(eq(apiKeys.id, id));
      return row ? toKey(row) : null;
    },

    /** Revokes a live key; null when there is no such key, the key as it was when already revoked. */
    async revoke(id: string): Promise<ApiKey | null> {
      const [row] = await db
        .update(apiKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
        .returning();
      if (row) return toKey(row);
      const [existing] = await db.select().from(apiKeys).where(eq(apiKeys.id, id));
      return existing ? toKey(existing) : null;
    },
  };
}
