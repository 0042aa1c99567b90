import { resolveServer, SERVER_HELP_ROW, SERVER_OPTION } from './client-options.ts';
import { CommandFailed, EXIT, formatOptions, HELP_OPTION, HELP_ROW, parseCommandLine, printHelp, type Command } from './command.ts';

const HELP = `Usage: darkroom open [options]

Opens darkroom's web UI in the browser, and prints its address.

${formatOptions([['--print', 'only print the address'], SERVER_HELP_ROW, HELP_ROW])}`;

export const openCommand: Command = {
  name: 'open',
  summary: "open darkroom's web UI in the browser",
  help: HELP,
  async run(argv) {
    const options = { ...SERVER_OPTION, ...HELP_OPTION, print: { type: 'boolean' } } as const;
    const { values } = parseCommandLine(HELP, { args: argv, options });
    if (values.help) return printHelp(HELP);
    const url = `${resolveServer(values, HELP)}/`;
    console.log(url);
    if (values.print) return EXIT.ok;
    const { default: openInBrowser } = await import('open');
    try {
      // Resolves once the launcher (xdg-open, open, start) has started; rejects when it cannot be.
      await openInBrowser(url);
    } catch (error) {
      throw new CommandFailed(`could not open a browser (${error instanceof Error ? error.message : String(error)}); open ${url} yourself`);
    }
    return EXIT.ok;
  },
};
