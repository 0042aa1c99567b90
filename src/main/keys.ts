import type { ApiKey, KeyScope, KeyStore } from '../core/ports/stores.ts';
import { loadConfig } from '../config/index.ts';
import { UUID_PATTERN } from '../core/ids.ts';
import { columnWidths, CommandFailed, dispatch, EXIT, formatOptions, HELP_OPTION, HELP_ROW, listCommands, parseCommandLine, printHelp, UsageError, wholeNumber, type Command } from './command.ts';

const JSON_ROW = ['--json', 'machine-readable output'] as const;
const ABOUT = `Works on darkroom's database directly
(DATABASE_URL, or the embedded one in DATA_DIR). The embedded database belongs to one process: while
a darkroom server runs on it, this refuses and changes nothing; use the server's HTTP API then
(/api/v1/keys with an admin key).`;

const CREATE_HELP = `Usage: darkroom keys create --name NAME [options]

Creates an API key and prints its secret, once: it is never shown again.

${formatOptions([
  ['--name NAME', 'what the key is for (1–100 characters), shown in lists'],
  ['--admin', 'the admin scope: key management, queue-wide stats, /admin/queues'],
  ['--max-active-jobs N', 'queued plus running jobs at once (default MAX_ACTIVE_JOBS_PER_KEY)'],
  ['--max-batch-size N', 'jobs per batch, at most MAX_BATCH_SIZE (the default)'],
  JSON_ROW,
  HELP_ROW,
])}`;

const LIST_HELP = `Usage: darkroom keys list [options]

Every key, revoked ones marked; never the secrets.

${formatOptions([JSON_ROW, HELP_ROW])}`;

const REVOKE_HELP = `Usage: darkroom keys revoke [options] <id>

Revokes a key: it stops working at once.

${formatOptions([JSON_ROW, HELP_ROW])}`;

/**
 * Opens the configured database, runs `action` on its keys, and closes it. The database code is
 * loaded here, not at the top, so `darkroom --help` and the client commands do not pay for it.
 */
async function withKeys<T>(action: (keys: KeyStore) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const [{ DatabaseLockedError, openDatabase }, { makeKeyRepository }] = await Promise.all([import('../db/client.ts'), import('../db/keys-repository.ts')]);
  let database;
  try {
    database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  } catch (error) {
    if (error instanceof DatabaseLockedError) throw new CommandFailed(error.message);
    throw error;
  }
  try {
    await database.migrate();
    return await action(makeKeyRepository(database.db));
  } finally {
    await database.close();
  }
}

function table(keys: ApiKey[]): string {
  if (keys.length === 0) return 'no keys';
  const header = ['ID', 'NAME', 'PREFIX', 'SCOPES', 'CREATED', 'STATUS'];
  const rows = keys.map((key) => [
    key.id,
    key.name,
    `${key.prefix}…`,
    key.scopes.join(',') || '-',
    key.createdAt.toISOString(),
    key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active',
  ]);
  const widths = columnWidths([header, ...rows]);
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()).join('\n');
}

const create: Command = {
  name: 'create',
  summary: 'create a key; its secret is printed once',
  help: CREATE_HELP,
  async run(argv) {
    const options = {
      ...HELP_OPTION,
      name: { type: 'string' },
      admin: { type: 'boolean' },
      'max-active-jobs': { type: 'string' },
      'max-batch-size': { type: 'string' },
      json: { type: 'boolean' },
    } as const;
    const { values } = parseCommandLine(CREATE_HELP, { args: argv, options });
    if (values.help) return printHelp(CREATE_HELP);
    const name = values.name?.trim();
    if (!name || name.length > 100) throw new UsageError('--name NAME is required (1 to 100 characters)', CREATE_HELP);
    const maxActiveJobs = values['max-active-jobs'] === undefined ? undefined : wholeNumber('max-active-jobs', values['max-active-jobs'], 1, CREATE_HELP);
    const maxBatchSize = values['max-batch-size'] === undefined ? undefined : wholeNumber('max-batch-size', values['max-batch-size'], 1, CREATE_HELP);
    const { MAX_BATCH_SIZE } = await import('../core/job-service.ts');
    if (maxBatchSize !== undefined && maxBatchSize > MAX_BATCH_SIZE) throw new UsageError(`--max-batch-size must be at most ${MAX_BATCH_SIZE}`, CREATE_HELP);
    const scopes: KeyScope[] = values.admin ? ['admin'] : [];
    const { key, secret } = await withKeys((keys) => keys.create({ name, scopes, maxActiveJobs, maxBatchSize }));
    const { presentKey } = await import('../api/dialects/native/present.ts');
    console.log(
      values.json
        ? JSON.stringify({ ...presentKey(key), key: secret }, null, 2)
        : `created key ${key.id} (${key.name}${key.scopes.length ? `, scopes: ${key.scopes.join(',')}` : ''})\n${secret}\nKeep it now: it is not shown again.`,
    );
    return EXIT.ok;
  },
};

const list: Command = {
  name: 'list',
  summary: 'every key (never the secrets)',
  help: LIST_HELP,
  async run(argv) {
    const { values } = parseCommandLine(LIST_HELP, { args: argv, options: { ...HELP_OPTION, json: { type: 'boolean' } } });
    if (values.help) return printHelp(LIST_HELP);
    const all = await withKeys((keys) => keys.list());
    const { presentKey } = await import('../api/dialects/native/present.ts');
    console.log(values.json ? JSON.stringify({ items: all.map(presentKey) }, null, 2) : table(all));
    return EXIT.ok;
  },
};

const revoke: Command = {
  name: 'revoke',
  summary: 'revoke a key: it stops working at once',
  help: REVOKE_HELP,
  async run(argv) {
    const { values, positionals } = parseCommandLine(REVOKE_HELP, { args: argv, options: { ...HELP_OPTION, json: { type: 'boolean' } }, allowPositionals: true });
    if (values.help) return printHelp(REVOKE_HELP);
    const [id, ...extra] = positionals;
    if (id === undefined || extra.length > 0) throw new UsageError('one key id is required', REVOKE_HELP);
    if (!UUID_PATTERN.test(id)) throw new UsageError(`"${id}" is not a key id (a UUID; see keys list)`, REVOKE_HELP);
    const revoked = await withKeys((keys) => keys.revoke(id));
    if (!revoked) throw new CommandFailed(`there is no key ${id}`);
    const { presentKey } = await import('../api/dialects/native/present.ts');
    console.log(values.json ? JSON.stringify(presentKey(revoked), null, 2) : `revoked key ${revoked.id} (${revoked.name})`);
    return EXIT.ok;
  },
};

const SUBCOMMANDS = [create, list, revoke];

const KEYS_HELP = `Usage: darkroom keys <command> [options]

Creates, lists and revokes API keys. ${ABOUT}

Commands:
${listCommands(SUBCOMMANDS)}

\`darkroom keys <command> --help\` tells more about each.`;

export const keysCommand: Command = {
  name: 'keys',
  summary: 'create, list and revoke API keys in the database',
  help: KEYS_HELP,
  run: (argv) => dispatch(SUBCOMMANDS, argv, KEYS_HELP),
};
