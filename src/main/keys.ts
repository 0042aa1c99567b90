import type { Static } from 'typebox';
import type { ApiKey, KeyScope, NewKey } from '../core/ports/stores.ts';
import type { CreatedKeySchema, KeySchema } from '../api/dialects/native/schemas.ts';
import { loadClientConfig, loadConfig } from '../config/index.ts';
import { localAdminKey } from '../config/secret-file.ts';
import { UUID_PATTERN } from '../core/ids.ts';
import { resolveServer, SERVER_OPTION } from './client-options.ts';
import { columnWidths, CommandFailed, dispatch, EXIT, formatOptions, HELP_OPTION, HELP_ROW, listCommands, parseCommandLine, printHelp, UsageError, wholeNumber, type Command } from './command.ts';

const JSON_ROW = ['--json', 'machine-readable output'] as const;
const SERVER_ROW = ['--server URL', 'manage the keys of the darkroom at URL through its API, not the database'] as const;
const ABOUT = `Works on darkroom's database directly (DATABASE_URL, or the embedded one in DATA_DIR). The
embedded database belongs to one process: while a darkroom server runs on it, this goes through that
server's HTTP API (/api/v1/keys) instead, found at --server, DARKROOM_URL, or this machine's address
(PUBLIC_URL, or HOST and PORT), with an admin credential: ADMIN_API_KEY, or DARKROOM_API_KEY set to a
key with the admin scope.`;

const CREATE_HELP = `Usage: darkroom keys create --name NAME [options]

Creates an API key and prints its secret, once: it is never shown again.

${formatOptions([
  ['--name NAME', 'what the key is for (1–100 characters), shown in lists'],
  ['--admin', 'the admin scope: key management, queue-wide stats, /admin/queues'],
  ['--max-active-jobs N', 'queued plus running jobs at once (default MAX_ACTIVE_JOBS_PER_KEY)'],
  ['--max-batch-size N', 'jobs per batch, at most MAX_BATCH_SIZE (the default)'],
  ['--budget AMOUNT/day|month', 'the most its jobs may cost per UTC day or month, in PRICE_CURRENCY (e.g. 10/day): estimates until they end, then actual costs'],
  SERVER_ROW,
  JSON_ROW,
  HELP_ROW,
])}`;

const LIST_HELP = `Usage: darkroom keys list [options]

Every key, revoked ones marked; never the secrets.

${formatOptions([SERVER_ROW, JSON_ROW, HELP_ROW])}`;

const REVOKE_HELP = `Usage: darkroom keys revoke [options] <id>

Revokes a key: it stops working at once.

${formatOptions([SERVER_ROW, JSON_ROW, HELP_ROW])}`;

/** A key as the API shows it: never its secret. */
type ShownKey = Static<typeof KeySchema>;

/** The key operations, on the database or through a running darkroom's API. */
interface KeyAdmin {
  create(input: NewKey): Promise<{ key: ShownKey; secret: string }>;
  list(): Promise<ShownKey[]>;
  /** The revoked key; undefined when there is no such key. */
  revoke(id: string): Promise<ShownKey | undefined>;
}

/** How long one request to the server may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The admin credential the key commands send, and the variable it came from (named in messages, never shown). */
interface AdminCredential {
  secret: string;
  source: 'ADMIN_API_KEY' | 'DARKROOM_API_KEY' | `the local admin key in ${string}`;
}

/** ADMIN_API_KEY, else DARKROOM_API_KEY, else the operator credential an embedded server keeps in `dataDir`. */
function adminCredential(dataDir?: string): AdminCredential | undefined {
  const { adminApiKey, apiKey } = loadClientConfig();
  if (adminApiKey !== undefined) return { secret: adminApiKey, source: 'ADMIN_API_KEY' };
  if (apiKey !== undefined) return { secret: apiKey, source: 'DARKROOM_API_KEY' };
  const local = dataDir === undefined ? undefined : localAdminKey(dataDir);
  return local === undefined ? undefined : { secret: local, source: `the local admin key in ${dataDir}` };
}

/**
 * The key operations through the native API of the darkroom at `serverUrl`. `heldDirectory` is the
 * embedded database that server holds, when that is why the API is used: it is named if the server
 * cannot be reached.
 */
function serverKeys(serverUrl: string, credential: AdminCredential | undefined, heldDirectory?: string): KeyAdmin {
  const where = `darkroom at ${serverUrl}`;

  async function call(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (credential) headers.authorization = `Bearer ${credential.secret}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${serverUrl}/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
      throw new CommandFailed(
        heldDirectory === undefined
          ? `cannot reach ${where}: ${cause}`
          : `The embedded database in ${heldDirectory} is in use by a running darkroom, and no darkroom answers at ${serverUrl} (${cause}) ` +
              'to manage keys through its API. Point --server or DARKROOM_URL at that darkroom, or stop it to manage keys on the database.',
      );
    }
    if (response.ok || (response.status === 404 && method === 'DELETE')) return response;
    const detail = await problemDetail(response);
    if (response.status === 401 || response.status === 403) {
      if (!credential) {
        throw new CommandFailed(
          `${where} needs an admin credential to manage keys: set ADMIN_API_KEY (as the server has it), or DARKROOM_API_KEY to a key with the admin scope`,
        );
      }
      throw new CommandFailed(
        response.status === 401
          ? `${where} did not accept ${credential.source}: ${detail}`
          : `${where} refused ${credential.source}, which is not an admin credential there: managing keys needs ADMIN_API_KEY or a key with the admin scope`,
      );
    }
    throw new CommandFailed(`${where} answered ${response.status}: ${detail}`);
  }

  async function json<T>(response: Response): Promise<T> {
    try {
      return (await response.json()) as T;
    } catch {
      throw new CommandFailed(`${where} answered ${response.status} with something other than darkroom's JSON: is it a darkroom?`);
    }
  }

  const list = async () => (await json<{ items: ShownKey[] }>(await call('GET', '/keys'))).items;
  return {
    async create(input) {
      const { key: secret, ...key } = await json<Static<typeof CreatedKeySchema>>(await call('POST', '/keys', input));
      return { key, secret };
    },
    list,
    async revoke(id) {
      const answer = await call('DELETE', `/keys/${id}`);
      if (answer.status === 404) return undefined;
      return (await list()).find((key) => key.id === id);
    },
  };
}

/** An error answer's words: its problem's detail, or its status line. */
async function problemDetail(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const detail = (JSON.parse(text) as { detail?: unknown }).detail;
    if (typeof detail === 'string') return detail;
  } catch {
    // Not JSON: the status says it.
  }
  return `${response.status} ${response.statusText}`.trim();
}

/**
 * Runs `action` on the keys: through the API of the darkroom at `--server`; else on the configured
 * database; else, when a running darkroom holds that (embedded) database, through that darkroom's
 * API. The database code is loaded here, not at the top, so `darkroom --help` and the client
 * commands do not pay for it.
 */
async function withKeys<T>(flags: { server?: string }, usage: string, action: (keys: KeyAdmin) => Promise<T>): Promise<T> {
  if (flags.server !== undefined) return action(serverKeys(resolveServer(flags, usage), adminCredential()));
  const config = loadConfig();
  const [{ DatabaseLockedError, openDatabase }, { makeKeyRepository }, { presentKey }] = await Promise.all([
    import('../db/client.ts'),
    import('../db/keys-repository.ts'),
    import('../api/dialects/native/present.ts'),
  ]);
  let database;
  try {
    database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  } catch (error) {
    if (!(error instanceof DatabaseLockedError)) throw error;
    const serverUrl = resolveServer({}, usage);
    console.error(`The embedded database is in use by a running darkroom: managing keys through the API of darkroom at ${serverUrl}`);
    return action(serverKeys(serverUrl, adminCredential(config.dataDir), error.directory));
  }
  try {
    await database.migrate();
    const keys = makeKeyRepository(database.db);
    const shown = (key: ApiKey | null) => (key ? presentKey(key) : undefined);
    return await action({
      create: async (input) => {
        const { key, secret } = await keys.create(input);
        return { key: presentKey(key), secret };
      },
      list: async () => (await keys.list()).map(presentKey),
      revoke: async (id) => shown(await keys.revoke(id)),
    });
  } finally {
    await database.close();
  }
}

function table(keys: ShownKey[]): string {
  if (keys.length === 0) return 'no keys';
  const header = ['ID', 'NAME', 'PREFIX', 'SCOPES', 'CREATED', 'STATUS'];
  const rows = keys.map((key) => [
    key.id,
    key.name,
    `${key.prefix}…`,
    key.scopes.join(',') || '-',
    key.createdAt,
    key.revokedAt ? `revoked ${key.revokedAt}` : 'active',
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
      budget: { type: 'string' },
      ...SERVER_OPTION,
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
    const budgetMatch = values.budget === undefined ? undefined : /^(\d+(?:\.\d+)?)\/(day|month)$/.exec(values.budget.trim());
    if (values.budget !== undefined && (!budgetMatch || Number(budgetMatch[1]) <= 0)) throw new UsageError('--budget must be an amount per day or month, such as 10/day or 250/month', CREATE_HELP);
    const budget = budgetMatch ? { amount: Number(budgetMatch[1]), period: budgetMatch[2] as 'day' | 'month' } : undefined;
    const { key, secret } = await withKeys(values, CREATE_HELP, (keys) => keys.create({ name, scopes, maxActiveJobs, maxBatchSize, budget }));
    console.log(
      values.json
        ? JSON.stringify({ ...key, key: secret }, null, 2)
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
    const { values } = parseCommandLine(LIST_HELP, { args: argv, options: { ...HELP_OPTION, ...SERVER_OPTION, json: { type: 'boolean' } } });
    if (values.help) return printHelp(LIST_HELP);
    const all = await withKeys(values, LIST_HELP, (keys) => keys.list());
    console.log(values.json ? JSON.stringify({ items: all }, null, 2) : table(all));
    return EXIT.ok;
  },
};

const revoke: Command = {
  name: 'revoke',
  summary: 'revoke a key: it stops working at once',
  help: REVOKE_HELP,
  async run(argv) {
    const { values, positionals } = parseCommandLine(REVOKE_HELP, { args: argv, options: { ...HELP_OPTION, ...SERVER_OPTION, json: { type: 'boolean' } }, allowPositionals: true });
    if (values.help) return printHelp(REVOKE_HELP);
    const [id, ...extra] = positionals;
    if (id === undefined || extra.length > 0) throw new UsageError('one key id is required', REVOKE_HELP);
    if (!UUID_PATTERN.test(id)) throw new UsageError(`"${id}" is not a key id (a UUID; see keys list)`, REVOKE_HELP);
    const revoked = await withKeys(values, REVOKE_HELP, (keys) => keys.revoke(id));
    if (!revoked) throw new CommandFailed(`there is no key ${id}`);
    console.log(values.json ? JSON.stringify(revoked, null, 2) : `revoked key ${revoked.id} (${revoked.name})`);
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
  summary: 'create, list and revoke API keys (in the database, or through a running server)',
  help: KEYS_HELP,
  run: (argv) => dispatch(SUBCOMMANDS, argv, KEYS_HELP),
};
