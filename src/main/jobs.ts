import type { Job, JobPage } from '../client/index.ts';
import { JOB_STATUSES, type JobStatus } from '../core/job.ts';
import { CLIENT_HELP_ROWS, CLIENT_OPTIONS, connect, describeClientError, type Connection } from './client-options.ts';
import { columnWidths, dispatch, EXIT, formatOptions, HELP_OPTION, HELP_ROW, listCommands, parseCommandLine, printHelp, UsageError, wholeNumber, type Command } from './command.ts';
import { UUID_PATTERN } from '../core/ids.ts';

const JSON_ROW = ['--json', "print the server's answer as JSON"] as const;

const LIST_HELP = `Usage: darkroom jobs list [options]

Lists jobs, newest first, one page at a time: id, status, when it was created, provider, prompt.
When there are more, says how to get the next page.

${formatOptions([
  ['--status S', `only jobs with this status: ${JOB_STATUSES.join(', ')}`],
  ['--limit N', 'jobs per page (the server allows 1–100; default 20)'],
  ['--cursor C', 'the page after the one that printed this cursor'],
  JSON_ROW,
  ...CLIENT_HELP_ROWS,
  HELP_ROW,
])}`;

const GET_HELP = `Usage: darkroom jobs get [options] <id>

Shows one job: its status, request, times, error and images (with signed links).

${formatOptions([JSON_ROW, ...CLIENT_HELP_ROWS, HELP_ROW])}`;

const CANCEL_HELP = `Usage: darkroom jobs cancel [options] <id>

Cancels a queued or running job, on darkroom and at its provider. A job that has already finished
cannot be cancelled (exit 1).

${formatOptions([JSON_ROW, ...CLIENT_HELP_ROWS, HELP_ROW])}`;

const JOB_OPTIONS = { ...CLIENT_OPTIONS, ...HELP_OPTION, json: { type: 'boolean' } } as const;


/** Parses `[options] <id>`, then runs `action` on a connection, its failures described for a person. */
async function withJob(argv: string[], usage: string, action: (connection: Connection, id: string, json: boolean) => Promise<number>): Promise<number> {
  const { values, positionals } = parseCommandLine(usage, { args: argv, options: JOB_OPTIONS, allowPositionals: true });
  if (values.help) return printHelp(usage);
  const [id, ...extra] = positionals;
  if (id === undefined) throw new UsageError('a job id is required', usage);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, usage);
  if (!UUID_PATTERN.test(id)) throw new UsageError(`"${id}" is not a job id (a UUID, as printed by generate and jobs list)`, usage);
  const connection = connect(values, usage);
  try {
    return await action(connection, id, values.json ?? false);
  } catch (error) {
    throw describeClientError(error, connection);
  }
}

const list: Command = {
  name: 'list',
  summary: 'list jobs, newest first',
  help: LIST_HELP,
  async run(argv) {
    const options = { ...JOB_OPTIONS, status: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } } as const;
    const { values } = parseCommandLine(LIST_HELP, { args: argv, options });
    if (values.help) return printHelp(LIST_HELP);
    const { status, cursor } = values;
    if (status !== undefined && !(JOB_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(`--status must be one of ${JOB_STATUSES.join(', ')}, not "${status}"`, LIST_HELP);
    }
    const limit = values.limit === undefined ? undefined : wholeNumber('limit', values.limit, 1, LIST_HELP);
    const connection = connect(values, LIST_HELP);
    let page: JobPage;
    try {
      page = await connection.client.list({ status: status as JobStatus | undefined, limit, cursor });
    } catch (error) {
      throw describeClientError(error, connection);
    }
    if (values.json) {
      console.log(JSON.stringify(page, null, 2));
      return EXIT.ok;
    }
    if (page.items.length === 0) process.stderr.write(cursor === undefined ? 'no jobs\n' : 'no more jobs\n');
    else console.log(jobTable(page.items, process.stdout.isTTY ? process.stdout.columns : undefined));
    if (page.nextCursor !== null) {
      const repeated = [status && `--status ${status}`, limit && `--limit ${limit}`].filter(Boolean).join(' ');
      process.stderr.write(`more: darkroom jobs list ${repeated ? `${repeated} ` : ''}--cursor ${page.nextCursor}\n`);
    }
    return EXIT.ok;
  },
};

const get: Command = {
  name: 'get',
  summary: 'show one job',
  help: GET_HELP,
  run: (argv) =>
    withJob(argv, GET_HELP, async ({ client }, id, json) => {
      const job = await client.get(id);
      console.log(json ? JSON.stringify(job, null, 2) : describeJob(job));
      return EXIT.ok;
    }),
};

const cancel: Command = {
  name: 'cancel',
  summary: 'cancel a queued or running job',
  help: CANCEL_HELP,
  run: (argv) =>
    withJob(argv, CANCEL_HELP, async ({ client }, id, json) => {
      const job = await client.cancel(id);
      console.log(json ? JSON.stringify(job, null, 2) : `job ${job.id} cancelled`);
      return EXIT.ok;
    }),
};

const SUBCOMMANDS = [list, get, cancel];

const HELP = `Usage: darkroom jobs <command> [options]

Reads and cancels jobs on a running darkroom.

Commands:
${listCommands(SUBCOMMANDS)}

\`darkroom jobs <command> --help\` tells more.`;

export const jobsCommand: Command = {
  name: 'jobs',
  summary: 'list, show and cancel jobs on a running darkroom',
  help: HELP,
  run: (argv) => dispatch(SUBCOMMANDS, argv, HELP),
};

/** Local time, to the second: what a person compares with their clock. */
function formatTime(iso: string | null): string {
  if (iso === null) return '–';
  const date = new Date(iso);
  const two = (value: number) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

function truncate(text: string, width: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= width ? line : `${line.slice(0, Math.max(1, width - 1))}…`;
}

/** Columns padded to their widest cell; the prompt takes what the terminal has left (60 off a terminal). */
function jobTable(jobs: readonly Job[], columns: number | undefined): string {
  const rows = jobs.map((job) => [job.id, job.status, formatTime(job.createdAt), job.provider]);
  const header = ['ID', 'STATUS', 'CREATED', 'PROVIDER'];
  const widths = columnWidths([header, ...rows]);
  const used = widths.reduce((sum, width) => sum + width + 2, 0);
  const promptWidth = columns === undefined ? 60 : Math.max(20, columns - used - 1);
  const line = (cells: string[], prompt: string) => [...cells.map((cell, column) => cell.padEnd(widths[column] as number)), prompt].join('  ');
  return [line(header, 'PROMPT'), ...jobs.map((job, index) => line(rows[index] as string[], truncate(job.request.prompt, promptWidth)))].join('\n');
}

function formatBytes(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1_048_576 ? `${(bytes / 1024).toFixed(1)} kB` : `${(bytes / 1_048_576).toFixed(1)} MB`;
}

/** A job as a block of "label  value" lines, leaving out what does not apply. */
function describeJob(job: Job): string {
  const { request } = job;
  const lines: [string, string | undefined][] = [
    ['job', job.id],
    ['status', job.stage ? `${job.status} (${job.stage.replaceAll('_', ' ')})` : job.status],
    ['progress', job.status === 'running' && job.progress !== null ? `${Math.round(job.progress * 100)}%` : undefined],
    ['queue', job.queuePosition === null ? undefined : `position ${job.queuePosition} at the provider`],
    ['provider', job.providerJobId ? `${job.provider} (its job ${job.providerJobId})` : job.provider],
    ['attempts', `${job.attempts} of ${job.maxAttempts}`],
    ['prompt', request.prompt],
    ['negative', request.negativePrompt],
    [
      'request',
      [
        // The stored request has its defaults applied: size and count are always there.
        `${request.width}×${request.height}`,
        `${request.numImages} image${request.numImages === 1 ? '' : 's'}`,
        request.seed === undefined ? undefined : `seed ${request.seed}`,
        request.steps === undefined ? undefined : `${request.steps} steps`,
        request.cfgScale === undefined ? undefined : `cfg ${request.cfgScale}`,
        request.style === undefined ? undefined : `style ${request.style}`,
      ]
        .filter(Boolean)
        .join(', '),
    ],
    ['batch', job.batchId ?? undefined],
    ['created', formatTime(job.createdAt)],
    ['started', job.startedAt === null ? undefined : formatTime(job.startedAt)],
    ['completed', job.completedAt === null ? undefined : formatTime(job.completedAt)],
    ['error', job.error ? `${job.error.message} (${job.error.code}${job.error.retryable ? ', retryable' : ''})` : undefined],
  ];
  const width = Math.max(...lines.map(([label]) => label.length)) + 2;
  const text = lines.filter(([, value]) => value !== undefined).map(([label, value]) => `${label.padEnd(width)}${value}`);
  for (const image of job.images) {
    text.push(`image ${image.index}`.padEnd(width) + `${image.width}×${image.height} ${image.contentType} ${formatBytes(image.bytes)}, seed ${image.seed ?? '–'}`);
    text.push(''.padEnd(width) + image.url);
  }
  return text.join('\n');
}
