import { parseArgs } from 'node:util';
import { presentKey } from '../api/native/keys.ts';
import { KEY_SCOPES, makeKeyRepository, type ApiKey, type KeyScope } from '../auth/keys.ts';
import type { Config } from '../config/index.ts';
import { MAX_BATCH_SIZE } from '../core/job-service.ts';
import { openDatabase } from '../db/client.ts';

export const KEYS_HELP = `Usage: darkroom keys <create|list|revoke> [options]

Manages API keys in darkroom's database directly (DATABASE_URL, or the embedded one in DATA_DIR).
The embedded database belongs to one process: while a darkroom server runs on it, this command
refuses; use the server's HTTP API then (POST/GET/DELETE /api/v1/keys with an admin key).

Commands:
  create --name NAME [--admin] [--max-active-jobs N] [--max-batch-size N]
                      create a key; its secret is printed once, never again
  list                every key (never the secrets), revoked ones marked
  revoke ID           revoke a key: it stops working at once

Options:
  --json              machine-readable output
  -h, --help          this text`;

/** A mistake on the command line: exit 2 with the message and the usage. */
class UsageError extends Error {}
/** The command ran but could not do what was asked: exit 1 with the message. */
class CommandError extends Error {}

function positiveInteger(name: string, raw: string | undefined, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > max) throw new UsageError(`--${name} must be a whole number from 1 to ${max}`);
  return value;
}

function table(keys: ApiKey[]): string {
  if (keys.length === 0) return 'no keys';
  const rows = keys.map((key) => [
    key.id,
    key.name,
    `${key.prefix}…`,
    key.scopes.join(',') || '-',
    key.createdAt.toISOString(),
    key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active',
  ]);
  const header = ['ID', 'NAME', 'PREFIX', 'SCOPES', 'CREATED', 'STATUS'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()).join('\n');
}

/** `darkroom keys …`: key management without a running server (or beside one on Postgres). */
export async function keys(argv: string[], config: () => Config): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        admin: { type: 'boolean', default: false },
        'max-active-jobs': { type: 'string' },
        'max-batch-size': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    return usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    console.log(KEYS_HELP);
    if (command === undefined && !values.help) process.exitCode = 2;
    return;
  }

  let run: (repo: ReturnType<typeof makeKeyRepository>) => Promise<string>;
  try {
    run = plan(command, rest, values);
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    throw error;
  }

  const settings = config();
  const database = await openDatabase({ url: settings.databaseUrl, dataDir: settings.dataDir });
  try {
    await database.migrate();
    console.log(await run(makeKeyRepository(database.db)));
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    console.error(error.message);
    process.exitCode = 1;
  } finally {
    await database.close();
  }
}

function plan(
  command: string,
  rest: string[],
  values: { name?: string; admin: boolean; 'max-active-jobs'?: string; 'max-batch-size'?: string; json: boolean },
): (repo: ReturnType<typeof makeKeyRepository>) => Promise<string> {
  switch (command) {
    case 'create': {
      const name = values.name?.trim();
      if (!name || name.length > 100) throw new UsageError('keys create needs --name NAME (1 to 100 characters)');
      if (rest.length > 0) throw new UsageError(`keys create takes no arguments (got "${rest.join(' ')}")`);
      const scopes: KeyScope[] = values.admin ? ['admin'] : [];
      const maxActiveJobs = positiveInteger('max-active-jobs', values['max-active-jobs'], 1_000_000);
      const maxBatchSize = positiveInteger('max-batch-size', values['max-batch-size'], MAX_BATCH_SIZE);
      return async (repo) => {
        const { key, secret } = await repo.create({ name, scopes, maxActiveJobs, maxBatchSize });
        if (values.json) return JSON.stringify({ ...presentKey(key), key: secret }, null, 2);
        return `created key ${key.id} (${key.name}${key.scopes.length ? `, scopes: ${key.scopes.join(',')}` : ''})\n${secret}\nKeep it now: it is not shown again.`;
      };
    }
    case 'list':
      if (rest.length > 0) throw new UsageError(`keys list takes no arguments (got "${rest.join(' ')}")`);
      return async (repo) => {
        const all = await repo.list();
        return values.json ? JSON.stringify({ items: all.map(presentKey) }, null, 2) : table(all);
      };
    case 'revoke': {
      const [id, ...extra] = rest;
      if (!id || extra.length > 0) throw new UsageError('keys revoke takes one key id');
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new UsageError(`"${id}" is not a key id (a UUID; see keys list)`);
      return async (repo) => {
        const revoked = await repo.revoke(id);
        if (!revoked) throw new CommandError(`there is no key ${id}`);
        return values.json ? JSON.stringify(presentKey(revoked), null, 2) : `revoked key ${revoked.id} (${revoked.name})`;
      };
    }
    default:
      throw new UsageError(`unknown keys command "${command}" (expected ${['create', 'list', 'revoke'].join(', ')}); scopes: ${KEY_SCOPES.join(', ')}`);
  }
}

function usage(message: string): void {
  console.error(`${message}\n\n${KEYS_HELP}`);
  process.exitCode = 2;
}
