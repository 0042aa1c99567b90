import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import { DatabaseLockedError, openDatabase } from '../db/client.ts';
import { createDarkroom, type DarkroomRole } from './compose.ts';
import { generate } from './generate.ts';
import { keys } from './keys.ts';

const HELP = `darkroom — self-hosted image-generation orchestrator

Usage: darkroom <command>

Commands:
  serve     run the API and a worker in one process (what \`npm start\` runs)
  api       run only the HTTP API (production: scale out behind a load balancer)
  worker    run only a worker (production: as many as you need)
  migrate   apply database migrations and exit
  generate  create a job on a running darkroom, wait for it and save its images (see generate --help)
  keys      create, list and revoke API keys in the database (see keys --help)

\`api\` and \`worker\` run as separate processes, so they need what processes can share:
DATABASE_URL (Postgres) and QUEUE=redis or QUEUE=postgres.

Configuration comes from the environment and .env; see .env.example.`;

function run(role: DarkroomRole) {
  return async (config: Config): Promise<void> => {
    if (role !== 'serve' && (!config.databaseUrl || config.queue === 'embedded')) {
      throw new ConfigError([
        `darkroom ${role} runs beside other processes, so it needs DATABASE_URL (Postgres) and QUEUE=redis or QUEUE=postgres; use \`darkroom serve\` for one process`,
      ]);
    }
    await runProcess(config, role);
  };
}

async function runProcess(config: Config, role: DarkroomRole): Promise<void> {
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
  await darkroom.start();
}

async function migrate(config: Config): Promise<void> {
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await database.migrate();
    console.log(`migrations applied (${database.kind})`);
  } finally {
    await database.close();
  }
}

async function main(argv: string[]): Promise<void> {
  // A client command with options of its own, so it parses its own arguments.
  if (argv[0] === 'generate') return generate(argv.slice(1), () => loadConfig());
  if (argv[0] === 'keys') return keys(argv.slice(1), () => loadConfig());
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  const command = positionals[0] ?? 'serve';
  if (values.help || command === 'help') {
    console.log(HELP);
    return;
  }
  const commands: Record<string, (config: Config) => Promise<void>> = {
    serve: run('serve'),
    api: run('api'),
    worker: run('worker'),
    migrate,
  };
  const selected = commands[command];
  if (!selected) {
    console.error(`Unknown command "${command}".\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  await selected(loadConfig());
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(78);
  }
  if (error instanceof DatabaseLockedError) {
    console.error(error.message);
    process.exit(1);
  }
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
