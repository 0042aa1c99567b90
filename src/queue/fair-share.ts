import type { Redis } from 'ioredis';
import type pg from 'pg';

/**
 * Fair shares for the BullMQ adapter: the admission book that lets owners take turns on a queue
 * whose open-source edition has no group fairness.
 *
 * A slot is one owner's fresh entries of one priority on one BullMQ queue. Only SLOT_SHARE of
 * them are in BullMQ at a time (admitted); the others are held here, in arrival order. When an
 * admitted entry starts, its turn releases it and admits the next held one, which BullMQ (first in,
 * first out within a priority) places behind every other owner's entry of that priority. So one
 * owner's backlog occupies one place in each round, however long it is.
 *
 * Every operation is atomic in the shared store (a Lua script on Redis, a transaction under a per-slot
 * advisory lock on PostgreSQL), so processes enqueueing and starting jobs at once never admit more
 * than the share, and never lose a held id.
 */
export interface FairSlot {
  /** The BullMQ queue the slot's entries go to. */
  queue: string;
  /** BullMQ's priority of the slot's entries. */
  priority: number;
  owner: string;
}

export interface FairShare {
  /** Creates what the store needs (PostgreSQL: its table). Idempotent. */
  prepare(): Promise<void>;
  /**
   * Holds `jobId` in its slot (unless it is there already, held or admitted: `added` is then false),
   * then admits held ids while the slot has room. Returns the ids admitted now, in arrival order:
   * the caller adds each to BullMQ.
   */
  offer(slot: FairSlot, jobId: string): Promise<{ added: boolean; admitted: string[] }>;
  /** Frees the place of an admitted id (it started, or its entry is gone) and admits the next held ids. */
  release(slot: FairSlot, jobId: string): Promise<string[]>;
  /** Drops an id, held or admitted; an admitted one's place goes to the next held ids of its slot. */
  forget(jobId: string): Promise<{ slot: FairSlot; admitted: string[] } | undefined>;
  /** The ids a slot has admitted (for finding places whose entry was lost). */
  admittedOf(slot: FairSlot): Promise<string[]>;
  /** How many ids are held, over every slot. */
  heldCount(): Promise<number>;
}

/** How many entries of one owner and priority are in BullMQ at once: the owner's place in each round. */
export const SLOT_SHARE = 1;

export function slotKey(slot: FairSlot): string {
  return JSON.stringify([slot.queue, slot.priority, slot.owner]);
}

export function parseSlotKey(key: string): FairSlot {
  const [queue, priority, owner] = JSON.parse(key) as [string, number, string];
  return { queue, priority, owner };
}

// Moves held ids (KEYS[1], by arrival) to admitted (KEYS[2]) while the slot has room (ARGV[3]),
// recording where each id is (KEYS[3] held ids, KEYS[4] admitted ids, both id → slot key ARGV[2]).
const FILL = `
local admitted = {}
while redis.call('SCARD', KEYS[2]) < tonumber(ARGV[3]) do
  local head = redis.call('ZPOPMIN', KEYS[1])
  if #head == 0 then break end
  redis.call('HDEL', KEYS[3], head[1])
  redis.call('SADD', KEYS[2], head[1])
  redis.call('HSET', KEYS[4], head[1], ARGV[2])
  admitted[#admitted + 1] = head[1]
end
`;

const OFFER = `
local added = 0
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 and redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[5]), ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  added = 1
end
${FILL}
return {added, admitted}
`;

const RELEASE = `
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return {} end
redis.call('HDEL', KEYS[4], ARGV[1])
${FILL}
return admitted
`;

const FORGET = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  return {}
end
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return {} end
redis.call('HDEL', KEYS[4], ARGV[1])
${FILL}
return admitted
`;

/**
 * On Redis, next to BullMQ's keys: per slot a sorted set of held ids (scored by an arrival counter)
 * and a set of admitted ids; two hashes map every held and admitted id to its slot.
 */
export function makeRedisFairShare(client: Redis, base: string): FairShare {
  const keys = (slot: string) => [`${base}:held:${slot}`, `${base}:admitted:${slot}`, `${base}:held-ids`, `${base}:admitted-ids`, `${base}:seq`];
  const share = String(SLOT_SHARE);
  const run = async (script: string, slot: string, jobId: string) => client.eval(script, 5, ...keys(slot), jobId, slot, share);
  return {
    async prepare() {},
    async offer(slot, jobId) {
      const [added, admitted] = (await run(OFFER, slotKey(slot), jobId)) as [number, string[]];
      return { added: added === 1, admitted };
    },
    async release(slot, jobId) {
      return (await run(RELEASE, slotKey(slot), jobId)) as string[];
    },
    async forget(jobId) {
      const key = (await client.hget(`${base}:held-ids`, jobId)) ?? (await client.hget(`${base}:admitted-ids`, jobId));
      if (key === null) return undefined;
      return { slot: parseSlotKey(key), admitted: (await run(FORGET, key, jobId)) as string[] };
    },
    async admittedOf(slot) {
      return client.smembers(`${base}:admitted:${slotKey(slot)}`);
    },
    async heldCount() {
      return client.hlen(`${base}:held-ids`);
    },
  };
}

const TABLE = 'darkroom_fair_share';

/**
 * On PostgreSQL, one table beside BullMQ's in its schema: a row per held or admitted id, with its
 * slot and arrival number. Each change runs in a transaction holding the slot's advisory lock.
 */
export function makePostgresFairShare(pool: pg.Pool, namespace: string): FairShare {
  async function inSlot<T>(slot: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${TABLE}:${namespace}:${slot}`]);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async function fill(client: pg.PoolClient, slot: string): Promise<string[]> {
    const { rows } = await client.query<{ job_id: string; seq: string }>(
      `UPDATE ${TABLE} SET admitted = true
        WHERE namespace = $1 AND job_id IN (
          SELECT job_id FROM ${TABLE} WHERE namespace = $1 AND slot = $2 AND NOT admitted ORDER BY seq
           LIMIT greatest(0, $3 - (SELECT count(*) FROM ${TABLE} WHERE namespace = $1 AND slot = $2 AND admitted)))
        RETURNING job_id, seq`,
      [namespace, slot, SLOT_SHARE],
    );
    return rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map((row) => row.job_id);
  }

  return {
    async prepare() {
      // Several processes start at once; the lock keeps their CREATEs from colliding.
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [TABLE]);
        await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (
          namespace text NOT NULL,
          job_id text NOT NULL,
          slot text NOT NULL,
          seq bigserial NOT NULL,
          admitted boolean NOT NULL DEFAULT false,
          PRIMARY KEY (namespace, job_id))`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_slot ON ${TABLE} (namespace, slot, admitted, seq)`);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    offer(slot, jobId) {
      const key = slotKey(slot);
      return inSlot(key, async (client) => {
        const inserted = await client.query(`INSERT INTO ${TABLE} (namespace, job_id, slot) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
          namespace,
          jobId,
          key,
        ]);
        return { added: inserted.rowCount === 1, admitted: await fill(client, key) };
      });
    },
    release(slot, jobId) {
      const key = slotKey(slot);
      return inSlot(key, async (client) => {
        const deleted = await client.query(`DELETE FROM ${TABLE} WHERE namespace = $1 AND job_id = $2 AND slot = $3 AND admitted`, [namespace, jobId, key]);
        return deleted.rowCount === 1 ? fill(client, key) : [];
      });
    },
    async forget(jobId) {
      const found = await pool.query<{ slot: string }>(`SELECT slot FROM ${TABLE} WHERE namespace = $1 AND job_id = $2`, [namespace, jobId]);
      const key = found.rows[0]?.slot;
      if (key === undefined) return undefined;
      const admitted = await inSlot(key, async (client) => {
        const deleted = await client.query<{ admitted: boolean }>(
          `DELETE FROM ${TABLE} WHERE namespace = $1 AND job_id = $2 AND slot = $3 RETURNING admitted`,
          [namespace, jobId, key],
        );
        return deleted.rows[0]?.admitted ? fill(client, key) : [];
      });
      return { slot: parseSlotKey(key), admitted };
    },
    async admittedOf(slot) {
      const { rows } = await pool.query<{ job_id: string }>(`SELECT job_id FROM ${TABLE} WHERE namespace = $1 AND slot = $2 AND admitted`, [
        namespace,
        slotKey(slot),
      ]);
      return rows.map((row) => row.job_id);
    },
    async heldCount() {
      const { rows } = await pool.query<{ count: string }>(`SELECT count(*) FROM ${TABLE} WHERE namespace = $1 AND NOT admitted`, [namespace]);
      return Number(rows[0]?.count ?? 0);
    },
  };
}
