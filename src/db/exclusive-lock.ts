import type pg from 'pg';
import type { Logger } from '../core/ports/logger.ts';

/**
 * Runs a task only while this process holds a named lock that no other process of the deployment
 * holds; when another does, answers false at once, without waiting or running it.
 *
 * On Postgres it is a session advisory lock (`pg_try_advisory_lock`) on a connection of its own,
 * held for the task's whole length (many short transactions, so no transaction lock could cover it)
 * and let go with the connection: a process killed mid-task leaves no lock behind, as its server
 * session ends with its socket. PGlite belongs to one process (its directory is locked), so there a
 * flag in the process is the same thing.
 */
export function makeExclusiveLock(options: { name: string; pool?: pg.Pool; logger: Logger }): (task: () => Promise<void>) => Promise<boolean> {
  let heldHere = false;
  const { pool } = options;

  return async (task) => {
    // Two calls in one process never need the server to tell them apart.
    if (heldHere) return false;
    heldHere = true;
    try {
      if (!pool) {
        await task();
        return true;
      }
      const client = await pool.connect();
      // A checked-out client that errors (its server went away) must not take the process down.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken = error;
        options.logger.warn({ err: error }, `the connection holding the ${options.name} lock failed; the lock is gone with it`);
      };
      client.on('error', onError);
      const locking = (text: string) =>
        client.query<{ locked: boolean }>(text, [options.name]).catch((error: unknown) => {
          broken = error instanceof Error ? error : new Error(String(error));
          throw error;
        });
      try {
        const { rows } = await locking('select pg_try_advisory_lock(hashtextextended($1, 0)) as locked');
        if (!rows[0]?.locked) return false;
        try {
          await task();
          return true;
        } finally {
          if (!broken) await locking('select pg_advisory_unlock(hashtextextended($1, 0)) as locked').catch(() => undefined);
        }
      } finally {
        client.off('error', onError);
        // A broken connection is closed rather than handed back to the pool.
        client.release(broken ?? false);
      }
    } finally {
      heldHere = false;
    }
  };
}
