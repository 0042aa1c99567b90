/**
 * A process of its own that makes a migrated PGlite data directory and exits, taking initdb's
 * memory with it:
 *
 *   node dist/db/pglite-init.js <dir>     the database in <dir> (a server's first start runs this
 *                                         when there is no template)
 *   node dist/db/pglite-init.js --template  the template new databases are copied from
 *                                         (dist/pglite-template; `npm run build:template`)
 */
import { rmSync, renameSync, writeFileSync } from 'node:fs';
import { initMigratedPglite } from './client.ts';
import { installedPgliteVersion, PGLITE_TEMPLATE_DIR, templateStampOf } from './pglite-files.ts';

async function buildTemplate(): Promise<void> {
  const stamp = templateStampOf(PGLITE_TEMPLATE_DIR);
  const staging = `${PGLITE_TEMPLATE_DIR}.creating`;
  rmSync(stamp, { force: true });
  rmSync(staging, { recursive: true, force: true });
  await initMigratedPglite(staging);
  rmSync(PGLITE_TEMPLATE_DIR, { recursive: true, force: true });
  renameSync(staging, PGLITE_TEMPLATE_DIR);
  writeFileSync(stamp, `${JSON.stringify({ pglite: installedPgliteVersion() })}\n`);
  console.log(`PGlite template written to ${PGLITE_TEMPLATE_DIR}`);
}

// Started by a server that has since died: stop at the next chance instead of finishing for nobody.
process.on('disconnect', () => process.exit(1));
process.channel?.unref();

const [target] = process.argv.slice(2);
if (!target) {
  console.error('usage: pglite-init <dir> | --template');
  process.exit(2);
}
await (target === '--template' ? buildTemplate() : initMigratedPglite(target));
