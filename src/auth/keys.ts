import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, asc, eq, isNull } from 'drizzle-orm';
import { v7 as uuidv7 } from 'uuid';
import type { Db } from '../db/client.ts';
import { apiKeys } from '../db/schema.ts';

/** What a key may do beyond its own jobs. `admin`: keys, queue-wide stats, the admin UI. */
export const KEY_SCOPES = ['admin'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

const KEY_PREFIX = 'dk_';
/** Characters of a key shown in lists: the `dk_` marker and a few random ones. */
const SHOWN_PREFIX_LENGTH = 10;
/** The id of the credential ADMIN_API_KEY stands for; not a row, so it cannot be revoked through the API. */
export const BOOTSTRAP_ADMIN_ID = 'admin';

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: KeyScope[];
  maxActiveJobs: number | null;
  maxBatchSize: number | null;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface NewKey {
  name: string;
  scopes?: KeyScope[];
  maxActiveJobs?: number | null;
  maxBatchSize?: number | null;
}

const hashOf = (key: string) => createHash('sha256').update(key).digest('hex');

function toKey(row: typeof apiKeys.$inferSelect): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes.filter((scope): scope is KeyScope => (KEY_SCOPES as readonly string[]).includes(scope)),
    maxActiveJobs: row.maxActiveJobs,
    maxBatchSize: row.maxBatchSize,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}

/** True when `given` is `expected`, in time that does not depend on where they differ. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export type KeyRepository = ReturnType<typeof makeKeyRepository>;

export function makeKeyRepository(db: Db) {
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
      return this.get(id);
    },
  };
}
