import type { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Fair shares for the BullMQ adapter: the admission book that lets owners take turns on a queue
 * whose open-source edition has no group fairness.
 *
 * A slot is one owner's fresh entries of one priority on one BullMQ queue. Only `quantum` of
 * them (FAIR_SHARE_QUANTUM, 1 by default) are in BullMQ at a time (admitted); the others are held
 * here, in arrival order. When an admitted entry starts, its turn releases it and admits the next
 * held one, which BullMQ (first in, first out within a priority) places behind every other owner's
 * entry of that priority. So one owner's backlog occupies `quantum` places in each round, however
 * long it is.
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
export function makeRedisFairShare(client: Redis, base: string, quantum: number): FairShare {
  const keys = (slot: string) => [`${base}:held:${slot}`, `${base}:admitted:${slot}`, `${base}:held-ids`, `${base}:admitted-ids`, `${base}:seq`];
  const share = String(quantum);
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
 * slot and arrival number. Each change is one round trip: a multi-statement query, which
 * PostgreSQL runs as one transaction, taking the slot's advisory lock first (every statement after
 * it sees what the slot's previous change committed).
 */
export function makePostgresFairShare(pool: pg.Pool, namespace: string, quantum: number): FairShare {
  const ns = pg.escapeLiteral(namespace);

  function fill(slot: string): string {
    return `UPDATE ${TABLE} SET admitted = true
       WHERE namespace = ${ns} AND job_id IN (
         SELECT job_id FROM ${TABLE} WHERE namespace = ${ns} AND slot = ${slot} AND NOT admitted ORDER BY seq
          LIMIT greatest(0, ${quantum} - (SELECT count(*) FROM ${TABLE} WHERE namespace = ${ns} AND slot = ${slot} AND admitted)))
       RETURNING job_id, seq`;
  }

  /** Runs `statements` under the slot's lock; returns each statement's rows. */
  async function inSlot(key: string, statements: string[]): Promise<Record<string, unknown>[][]> {
    const lock = `SELECT pg_advisory_xact_lock(hashtextextended(${pg.escapeLiteral(`${TABLE}:${namespace}:${key}`)}, 0))`;
    // Several statements answer with one result each; the pg types only know the single form.
    const results = (await pool.query([lock, ...statements].join(';\n'))) as unknown as pg.QueryResult[];
    return results.slice(1).map((result) => result.rows as Record<string, unknown>[]);
  }

  const admittedIn = (rows: Record<string, unknown>[] | undefined) =>
    (rows ?? []).sort((a, b) => Number(a.seq) - Number(b.seq)).map((row) => String(row.job_id));

  return {
    async prepare() {
      // Several processes start at once; the lock keeps their CREATEs from colliding.
      await pool.query(`SELECT pg_advisory_xact_lock(hashtextextended('${TABLE}', 0));
        CREATE TABLE IF NOT EXISTS ${TABLE} (
          namespace text NOT NULL,
          job_id text NOT NULL,
          slot text NOT NULL,
          seq bigserial NOT NULL,
          admitted boolean NOT NULL DEFAULT false,
          PRIMARY KEY (namespace, job_id));
        CREATE INDEX IF NOT EXISTS ${TABLE}_slot ON ${TABLE} (namespace, slot, admitted, seq)`);
    },
    async offer(slot, jobId) {
      const key = slotKey(slot);
      const literal = pg.escapeLiteral(key);
      const [inserted, admitted] = await inSlot(key, [
        `INSERT INTO ${TABLE} (namespace, job_id, slot) VALUES (${ns}, ${pg.escapeLiteral(jobId)}, ${literal}) ON CONFLICT DO NOTHING RETURNING job_id`,
        fill(literal),
      ]);
      return { added: (inserted ?? []).length === 1, admitted: admittedIn(admitted) };
    },
    async release(slot, jobId) {
      const key = slotKey(slot);
      const literal = pg.escapeLiteral(key);
      // After every change a slot with room has nothing held, so a fill that follows a release of
      // an id without a place (a second release) admits nothing.
      const [, admitted] = await inSlot(key, [
        `DELETE FROM ${TABLE} WHERE namespace = ${ns} AND job_id = ${pg.escapeLiteral(jobId)} AND slot = ${literal} AND admitted`,
        fill(literal),
      ]);
      return admittedIn(admitted);
    },
    async forget(jobId) {
      const found = await pool.query<{ slot: string }>(`SELECT slot FROM ${TABLE} WHERE namespace = $1 AND job_id = $2`, [namespace, jobId]);
      const key = found.rows[0]?.slot;
      if (key === undefined) return undefined;
      // Forgetting a held id frees no place, so the fill admits nothing then.
      const [, admitted] = await inSlot(key, [
        `DELETE FROM ${TABLE} WHERE namespace = ${ns} AND job_id = ${pg.escapeLiteral(jobId)}`,
        fill(pg.escapeLiteral(key)),
      ]);
      return { slot: parseSlotKey(key), admitted: admittedIn(admitted) };
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
