import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import { CommandFailed, EXIT, HELP_OPTION, parseCommandLine, printHelp, type Command } from './command.ts';
import type { DarkroomRole } from './compose.ts';

// The server's modules (Fastify, the database, queues, storage, providers) are imported when a server
// command runs, so that the client commands and every --help start without loading them.

const CONFIGURATION = 'Configuration comes from the environment and .env; see .env.example.';
const SEPARATE_PROCESS = `It runs beside other processes, so it needs what processes can share: DATABASE_URL (Postgres)
and QUEUE=redis or QUEUE=postgres.`;

const SERVER_TEXTS: Record<DarkroomRole, { summary: string; help: string }> = {
  serve: {
    summary: 'run the API and a worker in one process (the default; what `npm start` runs)',
    help: `Usage: darkroom serve

Runs the HTTP API and a worker in one process: PGlite, the embedded queue and filesystem storage
by default, nothing else to install. Ctrl-C stops it gracefully (a second one at once).

${CONFIGURATION}`,
  },
  api: {
    summary: 'run only the HTTP API (production: scale out behind a load balancer)',
    help: `Usage: darkroom api

Runs only the HTTP API; \`darkroom worker\` processes run the jobs. ${SEPARATE_PROCESS}

${CONFIGURATION}`,
  },
  worker: {
    summary: 'run only a worker (production: as many as you need)',
    help: `Usage: darkroom worker

Runs only a worker: it takes jobs from the queue and runs them on the providers. ${SEPARATE_PROCESS}

${CONFIGURATION}`,
  },
};

function serverCommand(role: DarkroomRole): Command {
  const { summary, help } = SERVER_TEXTS[role];
  return {
    name: role,
    summary,
    help,
    async run(argv) {
      const { values } = parseCommandLine(help, { args: argv, options: HELP_OPTION });
      if (values.help) return printHelp(help);
      const config = loadConfig();
      if (role !== 'serve' && (!config.databaseUrl || config.queue === 'embedded')) {
        throw new ConfigError([
          `darkroom ${role} runs beside other processes, so it needs DATABASE_URL (Postgres) and QUEUE=redis or QUEUE=postgres; use \`darkroom serve\` for one process`,
        ]);
      }
      await runProcess(config, role);
      return EXIT.ok;
    },
  };
}

/** Starts the process's part of darkroom; SIGINT or SIGTERM closes it, a second one exits at once. */
async function runProcess(config: Config, role: DarkroomRole): Promise<void> {
  const { createDarkroom } = await import('./compose.ts');
  const darkroom = await createDarkroom(config, { role });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      darkroom.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    darkroom.logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    darkroom.close().then(
      () => process.exit(0),
      (error: unknown) => {
        darkroom.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await darkroom.start();
  } catch (error) {
    // What was opened (the database and its lock, the queue) is closed, so the process can exit.
    await darkroom.close().catch((closing: unknown) => darkroom.logger.error({ err: closing }, 'shutdown failed'));
    throw listenFailure(error, config) ?? error;
  }
}

/** A failure to listen the operator can fix, said in one line; undefined for anything else. */
function listenFailure(error: unknown, config: Config): CommandFailed | undefined {
  const where = `port ${config.port} on ${config.host}`;
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new CommandFailed(`darkroom: ${where} is in use; stop the other process or set PORT`);
    case 'EACCES':
      return new CommandFailed(`darkroom: ${where} needs privileges this process lacks; set PORT to a port above 1023`);
    case 'EADDRNOTAVAIL':
      return new CommandFailed(`darkroom: ${config.host} is not an address of this machine; set HOST`);
    default:
      return undefined;
  }
}

const MIGRATE_HELP = `Usage: darkroom migrate

Applies the database migrations (to DATABASE_URL, or the PGlite database in DATA_DIR) and exits.
Every server command also migrates when it starts.

${CONFIGURATION}`;

const migrate: Command = {
  name: 'migrate',
  summary: 'apply database migrations and exit',
  help: MIGRATE_HELP,
  async run(argv) {
    const { values } = parseCommandLine(MIGRATE_HELP, { args: argv, options: HELP_OPTION });
    if (values.help) return printHelp(MIGRATE_HELP);
    const config = loadConfig();
    const { openDatabase } = await import('../db/client.ts');
    const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
    try {
      await database.migrate();
      console.log(`migrations applied (${database.kind})`);
    } finally {
      await database.close();
    }
    return EXIT.ok;
  },
};

/** The commands that run darkroom itself, as opposed to the client commands that talk to one. */
export const SERVER_COMMANDS: readonly Command[] = [serverCommand('serve'), serverCommand('api'), serverCommand('worker'), migrate];
