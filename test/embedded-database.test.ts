import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initMigratedPglite, openDatabase } from '../src/db/client.ts';
import { installedPgliteVersion, templateStampOf } from '../src/db/pglite-files.ts';
import { makeDataDir } from './helpers/darkroom.ts';
import { spawnDarkroom } from './helpers/processes.ts';

/**
 * How a DATA_DIR gets its embedded database: copied from a migrated template, or made by initdb in a
 * child process; never half-made, and an older one is migrated as it is.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = makeDataDir();
  dirs.push(dir);
  return dir;
}

const journal = JSON.parse(readFileSync('drizzle/meta/_journal.json', 'utf8')) as { entries: { tag: string }[] };

/** The names of the applied migrations and the tables, read through darkroom's own open. */
async function contents(dataDir: string, templateDir: string | null) {
  const database = await openDatabase({ dataDir, templateDir });
  try {
    await database.migrate();
    const rows = async <Row>(query: ReturnType<typeof sql>) => ((await database.db.execute(query)) as unknown as { rows: Row[] }).rows;
    const [applied] = await rows<{ count: number }>(sql`select count(*)::int as count from drizzle.__drizzle_migrations`);
    const marks = await rows<{ note: string }>(sql`select note from darkroom_test_marks order by note`).catch(() => []);
    return { created: database.created, migrations: applied?.count, marks: marks.map((row) => row.note) };
  } finally {
    await database.close();
  }
}

async function mark(dataDir: string, note: string): Promise<void> {
  const database = await openDatabase({ dataDir, templateDir: null });
  try {
    await database.db.execute(sql`create table if not exists darkroom_test_marks (note text)`);
    await database.db.execute(sql`insert into darkroom_test_marks values (${note})`);
  } finally {
    await database.close();
  }
}

/** What a creation left beside `pgdata` in `dataDir`, besides the database itself. */
const leftovers = (dataDir: string) => readdirSync(dataDir).filter((name) => name.startsWith('pgdata.'));

let template: string;
beforeAll(async () => {
  // A template like the one `npm run build:template` makes, stamped with the installed PGlite.
  template = join(tempDir(), 'template');
  await initMigratedPglite(template);
  writeFileSync(templateStampOf(template), JSON.stringify({ pglite: installedPgliteVersion() }));
}, 120_000);

describe('a new DATA_DIR', () => {
  it('without a template, gets its database from initdb in a child process; the next open finds it as it was', async () => {
    const dataDir = tempDir();
    const first = await contents(dataDir, null);
    expect(first).toEqual({ created: 'initdb', migrations: journal.entries.length, marks: [] });
    expect(leftovers(dataDir)).toEqual([]);

    await mark(dataDir, 'kept');
    expect(await contents(dataDir, null)).toEqual({ created: undefined, migrations: journal.entries.length, marks: ['kept'] });
  }, 180_000);

  it('with a template of the installed PGlite, gets a copy of it (and the template stays as it was)', async () => {
    const dataDir = tempDir();
    expect(await contents(dataDir, template)).toEqual({ created: 'template', migrations: journal.entries.length, marks: [] });
    await mark(dataDir, 'only in the copy');
    expect(await contents(tempDir(), template)).toEqual({ created: 'template', migrations: journal.entries.length, marks: [] });
  }, 120_000);

  it('ignores a template made by another PGlite version, or one whose build did not finish', async () => {
    const stale = join(tempDir(), 'stale');
    cpSync(template, stale, { recursive: true });
    writeFileSync(templateStampOf(stale), JSON.stringify({ pglite: '0.0.1' }));
    expect((await contents(tempDir(), stale)).created).toBe('initdb');

    const unfinished = join(tempDir(), 'unfinished');
    cpSync(template, unfinished, { recursive: true });
    expect((await contents(tempDir(), unfinished)).created).toBe('initdb');
  }, 240_000);

  it('left half-made by a start that crashed, is made again: the leftovers go and the database works', async () => {
    const dataDir = tempDir();
    // A copy cut short (files, no PG_VERSION) and the staging directory of a killed initdb child.
    mkdirSync(join(dataDir, 'pgdata', 'base', '1'), { recursive: true });
    writeFileSync(join(dataDir, 'pgdata', 'base', '1', '1259'), 'half a catalog');
    mkdirSync(join(dataDir, 'pgdata.creating-0badc0de', 'global'), { recursive: true });
    writeFileSync(join(dataDir, 'pgdata.creating-0badc0de', 'PG_VERSION'), '17\n');

    expect(await contents(dataDir, template)).toEqual({ created: 'template', migrations: journal.entries.length, marks: [] });
    expect(leftovers(dataDir)).toEqual([]);
    expect(existsSync(join(dataDir, 'pgdata', 'PG_VERSION'))).toBe(true);
  }, 120_000);
});

describe('darkroom serve', () => {
  it('on a DATA_DIR from an earlier version (default PGlite settings, older migrations), starts, migrates and keeps its rows', async () => {
    const dataDir = tempDir();
    // The migrations of that version: the first few of today's.
    const older = join(tempDir(), 'drizzle');
    cpSync('drizzle', older, { recursive: true });
    writeFileSync(join(older, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries: journal.entries.slice(0, 3) }));
    const client = await PGlite.create(join(dataDir, 'pgdata'));
    await migrate(drizzle({ client }), { migrationsFolder: older });
    await client.exec(`create table darkroom_test_marks (note text); insert into darkroom_test_marks values ('from before')`);
    await client.close();

    const server = await spawnDarkroom('serve', { DATA_DIR: dataDir, MOCK_LATENCY_MS: '0' });
    try {
      expect(server.output()).not.toContain('created the embedded database');
      // The tables of the later migrations are there: a job is made and read back whole.
      const created = await fetch(`${server.url}/api/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'after the upgrade', width: 256, height: 256 }),
      });
      expect(created.status).toBe(202);
      const { id } = (await created.json()) as { id: string };
      expect((await fetch(`${server.url}/api/v1/jobs/${id}`)).status).toBe(200);
    } finally {
      await server.stop();
    }
    expect(await contents(dataDir, null)).toEqual({ created: undefined, migrations: journal.entries.length, marks: ['from before'] });
  }, 180_000);

  it('says on its first start how the database was made, and not on the next', async () => {
    const dataDir = tempDir();
    const first = await spawnDarkroom('serve', { DATA_DIR: dataDir, MOCK_LATENCY_MS: '0' });
    await first.stop();
    const line = first
      .output()
      .split('\n')
      .find((text) => text.includes('"created the embedded database"'));
    expect(['template', 'initdb']).toContain((JSON.parse(line ?? '{}') as { from?: string }).from);

    const second = await spawnDarkroom('serve', { DATA_DIR: dataDir, MOCK_LATENCY_MS: '0' });
    await second.stop();
    expect(second.output()).not.toContain('created the embedded database');
    expect(leftovers(dataDir).filter((name) => name !== 'pgdata.lock')).toEqual([]);
  }, 180_000);
});
