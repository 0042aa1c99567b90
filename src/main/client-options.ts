import { Darkroom, DarkroomApiError } from '../client/index.ts';
import { isHttpUrl, loadClientConfig, loadConfig } from '../config/index.ts';
import { CommandFailed, UsageError, type Options } from './command.ts';

/** Where the client commands find darkroom, and the key they show it. */
export const SERVER_OPTION = { server: { type: 'string' } } as const satisfies Options;
export const CLIENT_OPTIONS = { ...SERVER_OPTION, key: { type: 'string' } } as const satisfies Options;

export const SERVER_HELP_ROW = [
  '--server URL',
  "darkroom's address (default: DARKROOM_URL, else PUBLIC_URL or\nhttp://HOST:PORT of this machine's darkroom configuration)",
] as const;
export const CLIENT_HELP_ROWS = [SERVER_HELP_ROW, ['--key KEY', 'API key, sent as a Bearer token (default: DARKROOM_API_KEY)']] as const;

export interface Connection {
  client: Darkroom;
  /** Without a trailing slash. */
  serverUrl: string;
  /** Whether a key is sent (never which: the key is not printed anywhere). */
  hasKey: boolean;
}

/** The server address: the flag, then DARKROOM_URL, then this machine's own server. */
export function resolveServer(flags: { server?: string }, usage: string): string {
  if (flags.server !== undefined && !isHttpUrl(flags.server)) {
    throw new UsageError(`--server must be a URL starting with http:// or https://, not "${flags.server}"`, usage);
  }
  const url = flags.server ?? loadClientConfig().serverUrl ?? localServerUrl();
  return url.replace(/\/+$/, '');
}

/** The flags win over DARKROOM_URL and DARKROOM_API_KEY. */
export function connect(flags: { server?: string; key?: string }, usage: string): Connection {
  const serverUrl = resolveServer(flags, usage);
  const apiKey = flags.key ?? loadClientConfig().apiKey;
  return { client: new Darkroom({ baseUrl: serverUrl, apiKey }), serverUrl, hasKey: apiKey !== undefined };
}

/** The address a darkroom started on this machine with this configuration answers at. */
function localServerUrl(): string {
  const { publicUrl, host, port } = loadConfig();
  if (publicUrl) return publicUrl;
  // A server listening on every interface is reached through loopback.
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** The flag of a request field, or of the field it is part of (`images.0.data` is in `images.0`). */
function flagOf(field: string, flags: Record<string, string>): string | undefined {
  for (let path = field; path !== ''; path = path.slice(0, Math.max(0, path.lastIndexOf('.')))) {
    if (flags[path]) return flags[path];
  }
  return undefined;
}

/**
 * What went wrong talking to darkroom, as a message for a person: the server's problem details (with
 * each bad field), a missing or refused key, or a server that cannot be reached. Anything else (a
 * bug) is returned unchanged, to be reported as one. `flags` names the command-line flag of a
 * request field (and of the fields within it), for the fields whose names differ.
 */
export function describeClientError(error: unknown, connection: Connection, flags: Record<string, string> = {}): unknown {
  if (error instanceof DarkroomApiError) {
    if (error.status === 401) {
      return new CommandFailed(
        connection.hasKey
          ? `darkroom at ${connection.serverUrl} did not accept the API key: ${error.problem.detail}`
          : 'the server needs an API key: pass --key or set DARKROOM_API_KEY',
      );
    }
    const { errors, detail, title } = error.problem;
    // A validation problem's detail repeats its first field error: the list says it all.
    if (errors?.length) {
      return new CommandFailed(`darkroom refused the request (${error.status} ${title}):${errors.map((item) => `\n  ${item.field}${flagOf(item.field, flags) ? ` (${flagOf(item.field, flags)})` : ''}: ${item.message}`).join('')}`);
    }
    return new CommandFailed(`darkroom answered ${error.status}: ${detail}`);
  }
  // fetch rejects with a bare "fetch failed"; the reason (refused, unknown host, reset) is its cause.
  if (error instanceof TypeError && error.message === 'fetch failed') {
    const cause = error.cause instanceof Error ? error.cause.message : String(error.cause);
    return new CommandFailed(`cannot reach darkroom at ${connection.serverUrl}: ${cause}`);
  }
  return error;
}
