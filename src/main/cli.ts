import { ConfigError } from '../config/index.ts';
import { CommandFailed, dispatch, EXIT, listCommands, UsageError, type Command } from './command.ts';
import { generateCommand } from './generate.ts';
import { jobsCommand } from './jobs.ts';
import { keysCommand } from './keys.ts';
import { openCommand } from './open.ts';
import { SERVER_COMMANDS } from './server-commands.ts';

/** Every `darkroom <command>`: a new one is a module exporting a Command, listed here. */
const COMMANDS: readonly Command[] = [...SERVER_COMMANDS, generateCommand, jobsCommand, openCommand, keysCommand];

const HELP = `darkroom — self-hosted image-generation orchestrator

Usage: darkroom <command> [options]

Commands:
${listCommands(COMMANDS)}

\`darkroom <command> --help\` tells more about each.

\`api\` and \`worker\` run as separate processes, so they need what processes can share:
DATABASE_URL (Postgres) and QUEUE=redis or QUEUE=postgres. The client commands (generate, jobs,
open) find darkroom through --server or DARKROOM_URL, and send --key or DARKROOM_API_KEY.

Configuration comes from the environment and .env; see .env.example.`;

const argv = process.argv.slice(2);
dispatch(COMMANDS, argv.length === 0 ? ['serve'] : argv, HELP).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`darkroom: ${error.message}\n\n${error.usage}`);
      process.exitCode = EXIT.usage;
    } else if (error instanceof CommandFailed) {
      console.error(error.message);
      process.exitCode = EXIT.failed;
    } else if (error instanceof Error && error.name === 'DatabaseLockedError') {
      // Matched by name: importing the database code here would load it for every command.
      console.error(error.message);
      process.exitCode = EXIT.failed;
    } else if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(78);
    } else {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exit(EXIT.failed);
    }
  },
);
