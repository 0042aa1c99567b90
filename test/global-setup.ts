import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { dumpMigratedPglite } from '../src/db/client.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A gzipped PGlite data directory with every migration applied (see test/helpers/darkroom.ts). */
    pgliteTemplate: string;
  }
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** Every file under `dir`, relative to it, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(dir, join(prefix, entry.name)) : [join(prefix, entry.name)]))
    .sort();
}

/**
 * Once per test run: a migrated PGlite data directory, kept under the temp directory and named
 * by a hash of the migrations and of the PGlite version, so a later run (or another checkout with
 * the same migrations) reuses it and a changed migration makes a new one.
 */
export default async function setup(project: TestProject): Promise<void> {
  const hash = createHash('sha256');
  hash.update(readFileSync(join(root, 'node_modules/@electric-sql/pglite/package.json')));
  const migrations = join(root, 'drizzle');
  for (const file of filesUnder(migrations)) hash.update(`\0${file}\0`).update(readFileSync(join(migrations, file)));
  const path = join(tmpdir(), `darkroom-pglite-template-${hash.digest('hex').slice(0, 16)}.tar.gz`);
  if (!existsSync(path)) {
    const dump = Buffer.from(await (await dumpMigratedPglite()).arrayBuffer());
    // Written aside and renamed: a run starting at the same time never reads half a file.
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, dump);
    renameSync(partial, path);
  }
  project.provide('pgliteTemplate', path);
}
