import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DarkroomApiError, type CreateJobInput, type InputRole, type Job } from '../client/index.ts';
import { CLIENT_HELP_ROWS, CLIENT_OPTIONS, connect, describeClientError, type Connection } from './client-options.ts';
import { CommandFailed, EXIT, formatOptions, HELP_OPTION, HELP_ROW, parseCommandLine, positiveNumber, printHelp, UsageError, wholeNumber, type Command } from './command.ts';
import { makeProgressDisplay, type ProgressDisplay } from './progress.ts';

const HELP = `Usage: darkroom generate [options] <prompt…>

Creates a job on a running darkroom, follows it until it finishes, and saves its images.
Prints each saved file's path on stdout. Progress goes to stderr: a spinner on a terminal, otherwise
one line when the job is created and one when it ends. Ctrl-C cancels the job on the server (a second
Ctrl-C exits without waiting for that).

${formatOptions([
  ['--width N, --height N', 'size in pixels (the server allows 64–2048, multiples of 8)'],
  ['--n N', 'how many images (the server allows 1–10)'],
  ['--seed N', 'a fixed seed (-1: random; write --seed=-1)'],
  ['--steps N', 'sampling steps'],
  ['--cfg N', 'guidance scale (CFG)'],
  ['--negative TEXT', 'negative prompt'],
  ['--style NAME', 'a style, for providers that have them'],
  ['--provider NAME', 'a configured provider instead of the default'],
  ['--image FILE', 'an init image to start from (PNG, JPEG or WebP): image-to-image'],
  ['--mask FILE', 'with --image: a mask of its size; white pixels may change, black\nones keep the init image (inpainting)'],
  ['--strength N', 'with --image: 0–1, how much the init image may change (0 keeps\nit, 1 ignores it; the server defaults to 0.75)'],
  ['--out DIR', 'where to save the images (default: the current directory)'],
  ['--json', 'print the finished job as one JSON document instead of the paths'],
  ['--timeout SECONDS', 'stop waiting after this long, and cancel the job'],
  ['--idempotency-key KEY', 'a retried command reuses the job it created the first time'],
  ...CLIENT_HELP_ROWS,
  HELP_ROW,
])}

Exit status: 0 when the images are saved; 1 when the job fails, is cancelled or expires, or the
server refuses the request; 2 for a bad command line; 130 after Ctrl-C.`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  ...HELP_OPTION,
  width: { type: 'string' },
  height: { type: 'string' },
  n: { type: 'string' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  cfg: { type: 'string' },
  negative: { type: 'string' },
  style: { type: 'string' },
  provider: { type: 'string' },
  image: { type: 'string' },
  mask: { type: 'string' },
  strength: { type: 'string' },
  out: { type: 'string', default: '.' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  'idempotency-key': { type: 'string' },
} as const;

/** The request fields whose flags have other names, to name them in the server's validation errors. */
const FLAGS_OF_FIELDS = { numImages: '--n', cfgScale: '--cfg', negativePrompt: '--negative', 'images.0': '--image', 'images.1': '--mask' };

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/** An input image read from its file, to be uploaded before the job is created. */
interface InputFile {
  role: InputRole;
  flag: '--image' | '--mask';
  path: string;
  bytes: Uint8Array;
}

interface Settings {
  input: CreateJobInput;
  /** The init image first, then the mask: the order of the request's `images`. */
  inputFiles: InputFile[];
  out: string;
  json: boolean;
  timeoutMs: number | undefined;
  idempotencyKey: string | undefined;
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'create a job on a running darkroom, follow it and save its images',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseCommandLine(HELP, { args: argv, options: OPTIONS, allowPositionals: true });
    if (values.help) return printHelp(HELP);
    const prompt = positionals.join(' ').trim();
    if (prompt === '') throw new UsageError('a prompt is required', HELP);

    // Each value is checked for its kind here; its range is the server's to check (and to say).
    const whole = (flag: 'width' | 'height' | 'n' | 'seed' | 'steps', min: number) => {
      const raw = values[flag];
      return raw === undefined ? undefined : wholeNumber(flag, raw, min, HELP);
    };
    const settings: Settings = {
      input: {
        prompt,
        width: whole('width', 1),
        height: whole('height', 1),
        numImages: whole('n', 1),
        seed: whole('seed', -1),
        steps: whole('steps', 1),
        cfgScale: values.cfg === undefined ? undefined : positiveNumber('cfg', values.cfg, HELP),
        negativePrompt: values.negative,
        style: values.style,
        provider: values.provider,
        strength: strengthOf(values, HELP),
      },
      inputFiles: await readInputFiles(values, HELP),
      out: values.out,
      json: values.json ?? false,
      timeoutMs: values.timeout === undefined ? undefined : positiveNumber('timeout', values.timeout, HELP) * 1000,
      idempotencyKey: values['idempotency-key'],
    };
    const connection = connect(values, HELP);
    try {
      return await generate(connection, settings);
    } catch (error) {
      throw describeClientError(error, connection, FLAGS_OF_FIELDS);
    }
  },
};

/** `--strength`, which only means something with an init image, as a number from 0 to 1. */
function strengthOf(values: { strength?: string; image?: string }, usage: string): number | undefined {
  const raw = values.strength;
  if (raw === undefined) return undefined;
  if (values.image === undefined) throw new UsageError('--strength needs --image: it says how much the init image may change', usage);
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--strength must be a number, not "${raw}"`, usage);
  if (value < 0 || value > 1) throw new UsageError(`--strength must be from 0 to 1, not ${raw}`, usage);
  return value;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
};

/** Reads the files of `--image` and `--mask` before anything is sent: a file that cannot be read is a bad command line. */
async function readInputFiles(values: { image?: string; mask?: string }, usage: string): Promise<InputFile[]> {
  if (values.mask !== undefined && values.image === undefined) {
    throw new UsageError('--mask needs --image: a mask marks which pixels of the init image may change', usage);
  }
  const files: Omit<InputFile, 'bytes'>[] = [];
  if (values.image !== undefined) files.push({ role: 'init', flag: '--image', path: values.image });
  if (values.mask !== undefined) files.push({ role: 'mask', flag: '--mask', path: values.mask });
  return Promise.all(
    files.map(async (file) => {
      try {
        return { ...file, bytes: new Uint8Array(await readFile(file.path)) };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        throw new UsageError(`${file.flag}: cannot read ${file.path}: ${READ_ERRORS[code] ?? (error as Error).message}`, usage);
      }
    }),
  );
}

/**
 * The request's `images`: each file uploaded, and referred to by its upload's id. With an idempotency
 * key they are sent in the request itself instead (base64): a retried command must send the same
 * request, and a new upload would have a new id. The server's refusal of an upload names its flag and path.
 */
async function uploadInputs(client: Connection['client'], files: InputFile[], signal: AbortSignal, idempotencyKey: string | undefined): Promise<CreateJobInput['images']> {
  if (files.length === 0) return undefined;
  if (idempotencyKey !== undefined) return files.map((file) => ({ role: file.role, data: Buffer.from(file.bytes).toString('base64') }));
  const images: NonNullable<CreateJobInput['images']> = [];
  for (const file of files) {
    try {
      const upload = await client.uploads.create(file.bytes, undefined, { signal });
      images.push({ role: file.role, uploadId: upload.id });
    } catch (error) {
      if (error instanceof DarkroomApiError && [400, 413, 415].includes(error.status)) {
        throw new CommandFailed(`darkroom refused ${file.flag} ${file.path} (${error.status} ${error.problem.title}): ${error.problem.detail}`);
      }
      throw error;
    }
  }
  return images;
}

async function generate({ client }: Connection, settings: Settings): Promise<number> {
  const display = await makeProgressDisplay(process.stderr);
  const startedAt = Date.now();
  const stop = new AbortController();
  let reason: 'interrupted' | 'timeout' | undefined;
  const onInterrupt = () => {
    if (reason === 'interrupted') {
      process.stderr.write('\ninterrupted again: exiting without waiting for the job to be cancelled\n');
      process.exit(EXIT.interrupted);
    }
    reason = 'interrupted';
    stop.abort();
  };
  process.on('SIGINT', onInterrupt);
  const timer =
    settings.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          reason ??= 'timeout';
          stop.abort();
        }, settings.timeoutMs);

  try {
    const images = await uploadInputs(client, settings.inputFiles, stop.signal, settings.idempotencyKey).catch((error: unknown) => {
      if (stop.signal.aborted) return null;
      throw error;
    });
    if (images === null) {
      display.finish(false, `${reason === 'timeout' ? `gave up after ${(settings.timeoutMs ?? 0) / 1000} s (--timeout)` : 'interrupted'} while uploading the input images: no job was created`);
      return reason === 'timeout' ? EXIT.failed : EXIT.interrupted;
    }
    // Not abortable: once the server may have created the job, this command must learn its id to cancel it.
    const job = await client.create({ ...settings.input, images }, { idempotencyKey: settings.idempotencyKey });
    display.start(job);
    let done: Job | undefined;
    if (!stop.signal.aborted) {
      done = await client.wait(job.id, { signal: stop.signal, onProgress: (progress) => display.update(progress) }).catch((error: unknown) => {
        if (stop.signal.aborted) return undefined;
        throw error;
      });
    }
    clearTimeout(timer);
    if (!done) return await cancel(job.id, reason === 'timeout' ? settings.timeoutMs : undefined, { client, display, json: settings.json });

    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    if (done.status !== 'succeeded') {
      display.finish(false, `job ${done.id} ${done.status}: ${done.error?.message ?? 'no images'}`);
      if (settings.json) printJson(done, []);
      return EXIT.failed;
    }

    display.working(`job ${done.id} succeeded; saving ${done.images.length} image${done.images.length === 1 ? '' : 's'}`);
    const paths = await save(done, settings.out, { client, signal: stop.signal }).catch((error: unknown) => {
      if (stop.signal.aborted) return undefined;
      throw error;
    });
    if (!paths) {
      display.finish(false, `interrupted while saving the images of job ${done.id}, which succeeded: darkroom jobs get ${done.id}`);
      return EXIT.interrupted;
    }
    display.finish(true, `job ${done.id} succeeded in ${seconds} s: ${paths.length} image${paths.length === 1 ? '' : 's'}`);
    if (settings.json) printJson(done, paths);
    else for (const path of paths) console.log(path);
    return EXIT.ok;
  } finally {
    display.stop();
    clearTimeout(timer);
    process.off('SIGINT', onInterrupt);
  }
}

/** Downloads every image of a succeeded job into `out`; resolves with their paths, in index order. */
async function save(job: Job, out: string, { client, signal }: Pick<Connection, 'client'> & { signal: AbortSignal }): Promise<string[]> {
  await mkdir(out, { recursive: true });
  const paths: string[] = [];
  for (const image of job.images) {
    const { bytes, contentType } = await client.download(job.id, image.index, { signal });
    const path = join(out, `${job.id}-${image.index}.${EXTENSIONS[contentType] ?? 'bin'}`);
    await writeFile(path, bytes);
    paths.push(path);
  }
  return paths;
}

/** The job this command gave up on (Ctrl-C, or `timeoutMs`) is cancelled: nobody else is waiting for it. */
async function cancel(
  id: string,
  timeoutMs: number | undefined,
  { client, display, json }: Pick<Connection, 'client'> & { display: ProgressDisplay; json: boolean },
): Promise<number> {
  const why = timeoutMs === undefined ? 'interrupted' : `gave up after ${timeoutMs / 1000} s (--timeout)`;
  const exitCode = timeoutMs === undefined ? EXIT.interrupted : EXIT.failed;
  display.working(`${why}: cancelling job ${id}`);
  try {
    const cancelled = await client.cancel(id);
    display.finish(false, `${why}: job ${id} cancelled`);
    if (json) printJson(cancelled, []);
  } catch (error) {
    if (!(error instanceof DarkroomApiError && error.status === 409)) throw error;
    // It finished between the last event and the cancel.
    const finished = await client.get(id);
    display.finish(false, `${why}: job ${id} had already ${finished.status === 'succeeded' ? 'succeeded' : `ended (${finished.status})`}; see darkroom jobs get ${id}`);
    if (json) printJson(finished, []);
  }
  return exitCode;
}

/** The job as the server answers it, each image with the path it was saved to. */
function printJson(job: Job, paths: string[]): void {
  const images = job.images.map((image, index) => ({ ...image, path: paths[index] ?? null }));
  console.log(JSON.stringify({ ...job, images }, null, 2));
}
