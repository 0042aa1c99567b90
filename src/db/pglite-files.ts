import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PGlite } from '@electric-sql/pglite';

/**
 * PGlite's settings for a small server (its defaults plus these). Postgres's own page cache
 * (shared_buffers) lives in PGlite's WebAssembly memory, is resident once touched, and that memory
 * never shrinks: the default 128MB costs as much RSS again as everything else darkroom holds.
 * 16MB keeps the hot pages (recent jobs, their indexes, keys); colder pages come from the
 * operating system's file cache, a system call away. Memory for sorts and maintenance is taken per
 * operation and given back, so its defaults stay.
 */
export const pgliteStartParams = (): string[] => [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

/** How a new embedded database came to be: copied from the migrated template, or initdb in a child process. */
export type PgliteOrigin = 'template' | 'initdb';

/** Where `npm run build:template` (part of `prepare`) leaves a migrated data directory. */
export const PGLITE_TEMPLATE_DIR = fileURLToPath(new URL('../../dist/pglite-template', import.meta.url));

/** Beside a template: which PGlite made it. Written last, so it also says the template is complete. */
export const templateStampOf = (templateDir: string) => `${templateDir}.json`;

interface TemplateStamp {
  pglite: string;
}

/** The installed PGlite's version: a template from another one may hold files this one cannot read. */
export function installedPgliteVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
      if (name === '@electric-sql/pglite' && version) return version;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the version of @electric-sql/pglite');
    dir = parent;
  }
}

function usableTemplate(templateDir: string): boolean {
  try {
    const stamp = JSON.parse(readFileSync(templateStampOf(templateDir), 'utf8')) as Partial<TemplateStamp>;
    return stamp.pglite === installedPgliteVersion() && existsSync(join(templateDir, 'PG_VERSION'));
  } catch {
    return false;
  }
}

/**
 * Makes a migrated database in `dir`, which holds none (no PG_VERSION), without running initdb in
 * this process: PGlite never gives back the WebAssembly memory initdb grows, so a server that ran it
 * would carry that memory for its whole life. The database is copied from `templateDir` when that is
 * a complete template of the installed PGlite, else made by initdb in a child process that exits.
 *
 * Either way it is built beside `dir` and renamed into place, so a crash part-way leaves `dir`
 * without a database and the next start builds it again (and removes what the crashed one left).
 * The caller holds the directory's lock.
 */
export async function createPgliteDirectory(dir: string, options: { templateDir?: string | null | undefined }): Promise<PgliteOrigin> {
  const prefix = `${basename(dir)}.creating-`;
  for (const entry of readdirSync(dirname(dir))) {
    if (entry.startsWith(prefix)) rmSync(join(dirname(dir), entry), { recursive: true, force: true });
  }
  // A name of its own: the initdb child of a start that was killed may still be writing to its own.
  const staging = join(dirname(dir), `${prefix}${randomBytes(4).toString('hex')}`);
  const templateDir = options.templateDir === undefined ? PGLITE_TEMPLATE_DIR : options.templateDir;
  let origin: PgliteOrigin;
  if (templateDir !== null && usableTemplate(templateDir)) {
    cpSync(templateDir, staging, { recursive: true });
    origin = 'template';
  } else {
    await initInChild(staging);
    origin = 'initdb';
  }
  // Without PG_VERSION `dir` holds no database: at most what an earlier start left half-made.
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  return origin;
}

/**
 * Runs `pglite-init <dir>` in a child node process (through tsx when this module is TypeScript).
 * Its IPC channel closes when this process dies, and the child then exits rather than go on alone.
 */
function initInChild(dir: string): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const entry = join(dirname(self), `pglite-init${extname(self)}`);
  const loader = extname(self) === '.ts' ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...loader, entry, dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`creating the embedded database in ${dir} failed (${signal ?? `exit code ${code}`}): ${stderr.trim()}`));
    });
  });
}
