import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The operator credential an embedded darkroom keeps in DATA_DIR when ADMIN_API_KEY is unset: the
 * `keys` command on the same machine reads it to manage keys through the running server. Whoever
 * can read DATA_DIR owns the embedded database anyway.
 */
export const LOCAL_ADMIN_KEY_FILE = 'admin.key';

/** The local admin credential in `dataDir`, if a server made one. */
export function localAdminKey(dataDir: string): string | undefined {
  try {
    return readSecret(join(dataDir, LOCAL_ADMIN_KEY_FILE));
  } catch {
    return undefined;
  }
}

/**
 * The secret kept in `dataDir/fileName`, made by `make` on first start. Processes starting together
 * on one DATA_DIR all end up with the first one's: the file is written whole under a temporary name
 * and then linked into place, which fails if it exists, so no process ever reads it half-written.
 */
export function persistentSecret(dataDir: string, fileName: string, make: () => string): string {
  const file = join(dataDir, fileName);
  try {
    return readSecret(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = make();
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(draft, secret, { mode: 0o600 });
  try {
    linkSync(draft, file);
    return secret;
  } catch (error) {
    // Another process sharing DATA_DIR put its secret there first: theirs is the one.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readSecret(file);
  } finally {
    unlinkSync(draft);
  }
}

function readSecret(file: string): string {
  const secret = readFileSync(file, 'utf8').trim();
  if (secret === '') throw new Error(`${file} is empty: delete it to have a new secret made, or set the secret in the configuration`);
  return secret;
}
