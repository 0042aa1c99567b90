import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * The pieces every `darkroom` command is made of.
 *
 * Glossary:
 * - command: one word after `darkroom` (`generate`), or after a group (`jobs list`); it parses its own
 *   arguments and resolves with its exit code.
 * - group: a command made of subcommands (`jobs`), run through `dispatch` like the top level.
 * - usage: a command's `--help` text, also printed after a usage error.
 */
export interface Command {
  name: string;
  /** One line in the list of commands. */
  summary: string;
  /** What `--help` prints. */
  help: string;
  /** Runs with the arguments after the command's name; resolves with the exit code. */
  run(argv: string[]): Promise<number>;
}

/** Exit codes: 2 is a command line that was never run, 130 the shell's code for Ctrl-C. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A command line that cannot be run: nothing was sent anywhere. Printed with `usage`; exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A command that ran and failed for a reason its message states in full; printed as is, exit 1. */
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;

/** `parseArgs`, strict, with its errors as usage errors in the words of this CLI. */
export function parseCommandLine<T extends ParseArgsConfig>(usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw error;
    const text = (error as Error).message;
    const option = /'(-[^' ]+)/.exec(text)?.[1] ?? '';
    const message =
      code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
        ? `unknown option ${option}`
        : code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
          ? `unexpected argument "${/argument '([^']*)'/.exec(text)?.[1] ?? ''}"`
          : text.includes('argument missing')
            ? `${option} needs a value`
            : text.includes('ambiguous')
              ? `${option} needs a value; for one that starts with "-", write ${option}=VALUE`
              : text.includes('does not take an argument')
                ? `${option} takes no value`
                : text;
    throw new UsageError(message, usage);
  }
}

/** Prints a command's help on stdout: asked for, so not an error. */
export function printHelp(usage: string): number {
  console.log(usage);
  return EXIT.ok;
}

/** A flag's value as a whole number of at least `min`; a usage error otherwise. */
export function wholeNumber(flag: string, raw: string, min: number, usage: string): number {
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value)) throw new UsageError(`--${flag} must be a whole number, not "${raw}"`, usage);
  if (value < min) throw new UsageError(`--${flag} must be at least ${min}, not ${raw}`, usage);
  return value;
}

/** A flag's value as a number above zero; a usage error otherwise. */
export function positiveNumber(flag: string, raw: string, usage: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${flag} must be a number, not "${raw}"`, usage);
  if (value <= 0) throw new UsageError(`--${flag} must be above 0, not ${raw}`, usage);
  return value;
}

/** An "Options:" block: each option's flags, then its description (lines after a \n stay aligned). */
export function formatOptions(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([flags]) => flags.length));
  const indent = `\n${' '.repeat(width + 4)}`;
  return `Options:\n${rows.map(([flags, description]) => `  ${flags.padEnd(width)}  ${description.replaceAll('\n', indent)}`).join('\n')}`;
}

export const HELP_ROW = ['-h, --help', 'this text'] as const;

/** The width of each column of a table: its widest cell, the header row included. */
export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, column) => (widths[column] = Math.max(widths[column] ?? 0, cell.length)));
  return widths;
}

/** The "Commands:" lines of a usage text. */
export function listCommands(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n');
}

/**
 * Runs the command `argv[0]` names with the rest of `argv`. `-h`, `--help` and `help` print `usage`;
 * `help <command>` prints that command's.
 */
export async function dispatch(commands: readonly Command[], argv: string[], usage: string): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError('a command is missing', usage);
  if (name === '-h' || name === '--help') return printHelp(usage);
  if (name === 'help') {
    const topic = rest[0];
    if (topic === undefined) return printHelp(usage);
    const command = commands.find((candidate) => candidate.name === topic);
    if (!command) throw new UsageError(`no command "${topic}"`, usage);
    return printHelp(command.help);
  }
  const command = commands.find((candidate) => candidate.name === name);
  if (!command) throw new UsageError(name.startsWith('-') ? `unknown option ${name}` : `unknown command "${name}"`, usage);
  return command.run(rest);
}
