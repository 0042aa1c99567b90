import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import lockfile from 'proper-lockfile';
import { createPgliteDirectory, pgliteStartParams, type PgliteOrigin } from './pglite-files.ts';
import { schema } from './schema.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** The node-postgres pool (Postgres only): for LISTEN/NOTIFY and other driver-level needs. */
  pool?: pg.Pool;
  /** PGlite in a directory only: how its database came to be when this open created it (undefined when it existed). */
  created?: PgliteOrigin;
  /** Runs pending migrations; safe when several processes start at once. */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));
/** Arbitrary but fixed: every darkroom process takes this advisory lock while migrating. */
const MIGRATION_LOCK_ID = 724_113_001;

export interface DatabaseOptions {
  /** postgres:// URL; when absent, PGlite stores its files in `dataDir` (or memory when `dataDir` is null). */
  url?: string | undefined;
  dataDir?: string | null;
  poolSize?: number;
  /**
   * PGlite only: how long to wait for another process to let go of the data directory. A server
   * waits out a crashed one's lock going stale; a one-off command (keys, migrate) refuses at once.
   */
  lockWaitMs?: number;
  /** PGlite only: told when the directory lock could not be kept fresh (the event loop stalled for long). */
  onLockCompromised?: (error: Error) => void;
  /**
   * PGlite only: a new database starts as a copy of this data directory (a tarball from
   * {@link dumpMigratedPglite}) instead of running initdb. For tests, which make one migrated
   * template and start many databases from it. A data directory that already holds a database is
   * opened as it is. Migrations still run afterwards, so a stale template cannot give an old schema.
   */
  template?: Blob | Uint8Array;
  /**
   * PGlite in a directory, without `template`: the migrated data directory a new database is copied
   * from (default: the one `npm run build:template` makes; null: none, so a child process runs initdb).
   */
  templateDir?: string | null;
}

/**
 * The embedded database's files are in use by another process. PGlite is one process's database:
 * two opening the same files would corrupt them, so darkroom locks the directory.
 */
export class DatabaseLockedError extends Error {
  constructor(readonly directory: string) {
    super(
      `The embedded database in ${directory} is in use by a running darkroom. Stop it first, or use a running server's HTTP API instead (e.g. POST /api/v1/keys with ADMIN_API_KEY).`,
    );
    this.name = 'DatabaseLockedError';
  }
}

/** A lock not refreshed for this long belongs to a process that died: the next one may take it over. */
export const PGLITE_LOCK_STALE_MS = 10_000;
const PGLITE_LOCK_RETRY_MS = 250;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url ? openPostgres(options.url, options.poolSize ?? 10) : openPglite(options);
}

async function lockDataDirectory(dir: string, options: DatabaseOptions): Promise<() => Promise<void>> {
  const waitMs = options.lockWaitMs ?? 0;
  try {
    return await lockfile.lock(dir, {
      realpath: false,
      stale: PGLITE_LOCK_STALE_MS,
      retries: waitMs > 0 ? { retries: Math.ceil(waitMs / PGLITE_LOCK_RETRY_MS), factor: 1, minTimeout: PGLITE_LOCK_RETRY_MS, maxTimeout: PGLITE_LOCK_RETRY_MS } : 0,
      onCompromised: options.onLockCompromised ?? (() => undefined),
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw new DatabaseLockedError(dir);
    throw error;
  }
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  const dataDir = options.dataDir ?? null;
  let dir: string | undefined;
  let unlock: () => Promise<void> = async () => undefined;
  if (dataDir !== null) {
    dir = join(dataDir, 'pgdata');
    mkdirSync(dir, { recursive: true });
    unlock = await lockDataDirectory(dir, options);
  }
  const exists = dir !== undefined && existsSync(join(dir, 'PG_VERSION'));
  const template = options.template && !exists ? options.template : undefined;
  let created: PgliteOrigin | undefined;
  let client: PGlite;
  try {
    // A new database in a directory is made outside this process (copied from the template, or by
    // initdb in a child), so that initdb's WebAssembly memory never stays with a long-lived server.
    if (dir !== undefined && !exists && !template) created = await createPgliteDirectory(dir, { templateDir: options.templateDir });
    client = await PGlite.create(dir, {
      startParams: pgliteStartParams(),
      ...(template ? { loadDataDir: template instanceof Blob ? template : new Blob([template]) } : {}),
    });
  } catch (error) {
    await unlock();
    throw error;
  }
  const db = drizzlePglite({ client, schema }) as unknown as Db;
  let closed = false;
  return {
    db,
    kind: 'pglite',
    created,
    migrate: () => migratePglite(drizzlePglite({ client, schema }), { migrationsFolder }),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        await unlock();
      }
    },
  };
}

/**
 * A new in-memory PGlite with every migration applied, as a gzipped tarball of its data directory:
 * the `template` a test database starts from.
 */
export async function dumpMigratedPglite(): Promise<Blob> {
  const client = await PGlite.create({ startParams: pgliteStartParams() });
  try {
    await migratePglite(drizzlePglite({ client, schema }), { migrationsFolder });
    // Everything in the data files, nothing left to replay from the WAL by each copy.
    await client.exec('CHECKPOINT');
    return await client.dumpDataDir('gzip');
  } finally {
    await client.close();
  }
}

/**
 * Runs initdb and every migration in `dir` (which must not hold a database yet) and closes it
 * cleanly: a data directory any later PGlite opens as it is. What the child process of
 * {@link createPgliteDirectory} and the template build run.
 */
export async function initMigratedPglite(dir: string): Promise<void> {
  const client = await PGlite.create(dir, { startParams: pgliteStartParams() });
  try {
    await migratePglite(drizzlePglite({ client, schema }), { migrationsFolder });
    await client.exec('CHECKPOINT');
  } finally {
    await client.close();
  }
}

async function openPostgres(url: string, max: number): Promise<Database> {
  // Loaded only here, so that the embedded default never loads the Postgres driver.
  const [{ default: pg }, { drizzle: drizzlePg }, { migrate: migratePg }] = await Promise.all([
    import('pg'),
    import('drizzle-orm/node-postgres'),
    import('drizzle-orm/node-postgres/migrator'),
  ]);
  const pool = new pg.Pool({ connectionString: url, max });
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  const db = drizzlePg({ client: pool, schema }) as unknown as Db;
  let closed = false;
  return {
    db,
    kind: 'postgres',
    pool,
    migrate: async () => {
      const client = await pool.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
        await migratePg(drizzlePg({ client, schema }), { migrationsFolder });
      } finally {
        await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
        client.release();
      }
    },
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
