#!/usr/bin/env node
// `npm install` compiles src/ to dist/ (the `prepare` script): that JavaScript runs when it is newer
// than every source file, without a TypeScript loader in the process. A checkout edited since its
// last build (or never built) runs its TypeScript through tsx instead: `npm run build:server` makes
// it fast again.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const BUILD_STAMP = join(root, 'dist', 'server-build.json');

/** The newest mtime under `dir`, directories included (a deleted source file changes its directory's). */
function newestModification(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestModification(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function compiledIsCurrent() {
  let built;
  try {
    built = statSync(BUILD_STAMP).mtimeMs;
  } catch {
    return false;
  }
  try {
    return newestModification(join(root, 'src')) <= built;
  } catch (error) {
    // An installation without sources (a container image) has only the build.
    if (error.code === 'ENOENT') return true;
    throw error;
  }
}

if (compiledIsCurrent()) {
  await import('../dist/main/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main/cli.ts');
}
