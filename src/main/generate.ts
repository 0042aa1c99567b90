import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Darkroom, DarkroomApiError, type CreateJobInput, type JobProgress } from '../client/index.ts';
import type { Config } from '../config/index.ts';

export const GENERATE_HELP = `Usage: darkroom generate [options] <prompt…>

Creates a job on a running darkroom, follows it until it finishes, and saves its images.
Prints each saved file's path on stdout; progress goes to stderr.

Options:
  --url URL              darkroom's address (default: PUBLIC_URL, or http://HOST:PORT from the configuration)
  --out DIR              where to save the images (default: the current directory)
  --images N             how many images (1–10)
  --width N, --height N  size in pixels (64–2048, multiples of 8)
  --seed N               a fixed seed
  --negative TEXT        negative prompt
  --provider NAME        a configured provider instead of the default
  --timeout SECONDS      give up after this long
  --idempotency-key KEY  make a retried command reuse the job it created the first time
  -h, --help             this text`;

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

function progressLine(progress: JobProgress): string {
  const parts: string[] = [progress.status];
  if (progress.stage) parts.push(progress.stage);
  if (progress.queuePosition !== null) parts.push(`queue position ${progress.queuePosition}`);
  if (progress.progress !== null && progress.status === 'running') parts.push(`${Math.round(progress.progress * 100)}%`);
  return parts.join(', ');
}

/** `darkroom generate`: the typed client, from the command line. `config` is read only when no --url is given. */
export async function generate(argv: string[], config: () => Config): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      out: { type: 'string', default: '.' },
      images: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      seed: { type: 'string' },
      negative: { type: 'string' },
      provider: { type: 'string' },
      timeout: { type: 'string' },
      'idempotency-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    console.log(GENERATE_HELP);
    if (!values.help) process.exitCode = 2;
    return;
  }

  const baseUrl =
    values.url ??
    (() => {
      const { publicUrl, host, port } = config();
      return publicUrl ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    })();
  // Numbers are passed as given: the server validates them and says which one is wrong.
  const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));
  const input: CreateJobInput = {
    prompt: positionals.join(' '),
    numImages: number(values.images),
    width: number(values.width),
    height: number(values.height),
    seed: number(values.seed),
    negativePrompt: values.negative,
    provider: values.provider,
  };

  const client = new Darkroom({ baseUrl });
  const interrupted = new AbortController();
  process.once('SIGINT', () => interrupted.abort());
  try {
    const job = await client.create(input, { idempotencyKey: values['idempotency-key'], signal: interrupted.signal });
    process.stderr.write(`job ${job.id}: queued\n`);
    const done = await client.wait(job.id, {
      signal: interrupted.signal,
      timeoutMs: values.timeout === undefined ? undefined : Number(values.timeout) * 1000,
      onProgress: (progress) => process.stderr.write(`job ${job.id}: ${progressLine(progress)}\n`),
    });
    if (done.status !== 'succeeded') {
      process.stderr.write(`job ${job.id} ${done.status}${done.error ? `: ${done.error.message}` : ''}\n`);
      process.exitCode = 1;
      return;
    }
    await mkdir(values.out, { recursive: true });
    for (const image of done.images) {
      const { bytes, contentType } = await client.download(done.id, image.index, { signal: interrupted.signal });
      const path = join(values.out, `${done.id}-${image.index}.${EXTENSIONS[contentType] ?? 'bin'}`);
      await writeFile(path, bytes);
      console.log(path);
    }
  } catch (error) {
    if (error instanceof DarkroomApiError) {
      const fields = error.problem.errors?.map((item) => `\n  ${item.field}: ${item.message}`).join('') ?? '';
      process.stderr.write(`darkroom answered ${error.status}: ${error.problem.detail}${fields}\n`);
      process.exitCode = 1;
      return;
    }
    if (error instanceof DOMException && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
      process.stderr.write(error.name === 'TimeoutError' ? 'gave up waiting (--timeout)\n' : 'interrupted\n');
      process.exitCode = error.name === 'TimeoutError' ? 1 : 130;
      return;
    }
    throw error;
  }
}
