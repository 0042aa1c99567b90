import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

/**
 * The real `darkroom` binary, spawned as a user runs it, against real servers: `dr` (quick jobs),
 * `slow` (jobs that run until cancelled) and `failing` (every job refused by the mock provider).
 */

const KEY = 'dk_test_8d1f0c2a9b7e4f5a';
const UNKNOWN_ID = '0190a7a2-7b7e-7000-8000-000000000000';
const SPINNER_FRAMES = /[\u2800-\u28ff]/;

let dr: TestDarkroom;
let slow: TestDarkroom;
let failing: TestDarkroom;
let closedUrl: string;
const outDirs: string[] = [];

beforeAll(async () => {
  [dr, slow, failing] = await Promise.all([
    startDarkroom({ MOCK_LATENCY_MS: '1000' }),
    startDarkroom({ MOCK_LATENCY_MS: '600000', SSE_HEARTBEAT_MS: '50' }),
    // random 0.5 with a failure rate of 1: every submission is refused, permanently.
    startDarkroom({ MOCK_FAILURE_RATE: '1' }, { random: () => 0.5 }),
  ]);
  const spare = createServer();
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
  closedUrl = `http://127.0.0.1:${(spare.address() as AddressInfo).port}`;
  await new Promise((resolve) => spare.close(resolve));
});
afterAll(async () => {
  await Promise.all([dr, slow, failing].map((server) => server?.close({ removeData: true })));
  for (const dir of outDirs) rmSync(dir, { recursive: true, force: true });
});

function outDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'darkroom-cli-'));
  outDirs.push(dir);
  return dir;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `darkroom …` with a clean environment: no client settings, nor a server's, unless `env` has them. */
function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Run>; stderr: () => string } {
  const child = spawn(process.execPath, ['bin/darkroom.js', ...args], {
    // Empty values count as unset and win over a developer's .env.
    env: { ...process.env, DARKROOM_URL: '', DARKROOM_API_KEY: '', PUBLIC_URL: '', PORT: '', HOST: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Run>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

const cli = (args: string[], env: Record<string, string> = {}) => start(args, env).done;

/** Many runs, a few at a time: the machine's cores are shared. */
async function cliAll(runs: { args: string[]; env?: Record<string, string> }[]): Promise<Run[]> {
  const results: Run[] = [];
  for (let index = 0; index < runs.length; index += 3) {
    results.push(...(await Promise.all(runs.slice(index, index + 3).map(({ args, env }) => cli(args, env)))));
  }
  return results;
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The job id of the "job <id> queued" line generate prints first. */
function jobIdOf(stderr: string): string {
  const id = /^job ([0-9a-f-]{36}) queued$/m.exec(stderr)?.[1];
  if (!id) throw new Error(`no job line in: ${stderr}`);
  return id;
}

async function jobCount(server: TestDarkroom): Promise<number> {
  const { body } = await server.api('GET', '/api/v1/jobs?limit=100');
  return body.items.length;
}

/** Signed links are made per answer (and `path` is the CLI's); everything else about a job is compared as is. */
function withoutLinks(job: Record<string, unknown>) {
  const images = job.images as Record<string, unknown>[];
  return { ...job, images: images.map(({ url, thumbnailUrl, expiresAt, path, ...image }) => image) };
}

interface AuthProxy {
  url: string;
  /** The Authorization header of every request that reached the proxy. */
  authorizations: (string | undefined)[];
  /** The path of every request that reached the proxy. */
  paths: string[];
  /** Hold every cancel request unanswered (a server slow to cancel). */
  holdCancels: boolean;
  close(): Promise<void>;
}

/**
 * A server that wants `Bearer KEY` in front of a darkroom that takes guests: it records and checks
 * the header itself, and forwards without it (KEY is no key of that darkroom's, which would refuse it).
 */
function forwarded(headers: IncomingHttpHeaders, host: string): IncomingHttpHeaders {
  const { authorization: _checked, ...rest } = headers;
  return { ...rest, host };
}

async function startAuthProxy(target: string): Promise<AuthProxy> {
  const upstream = new URL(target);
  const held: ServerResponse[] = [];
  const proxy: AuthProxy = {
    url: '',
    authorizations: [],
    paths: [],
    holdCancels: false,
    close: async () => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((incoming, response) => {
    proxy.authorizations.push(incoming.headers.authorization);
    proxy.paths.push(incoming.url ?? '');
    if (incoming.headers.authorization !== `Bearer ${KEY}`) {
      response.writeHead(401, { 'content-type': 'application/problem+json' });
      response.end(JSON.stringify({ type: '/problems/unauthorized', title: 'Unauthorized', status: 401, detail: 'A valid API key is required', code: 'unauthorized' }));
      return;
    }
    if (proxy.holdCancels && incoming.url?.endsWith('/cancel')) {
      held.push(response);
      return;
    }
    const outgoing = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: forwarded(incoming.headers, upstream.host) },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    outgoing.on('error', () => response.destroy());
    incoming.pipe(outgoing);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

describe('darkroom generate', () => {
  it('saves the images the API serves, at the size asked for, and prints their paths', async () => {
    const out = outDir();
    const run = await cli(['generate', '--server', dr.url, '--out', out, '--n', '2', '--width', '256', '--height', '192', 'a', 'lighthouse at dusk']);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    const paths = run.stdout.trim().split('\n');
    expect(paths).toHaveLength(2);

    const id = jobIdOf(run.stderr);
    const { body: job } = await dr.api('GET', `/api/v1/jobs/${id}`);
    expect(job.status).toBe('succeeded');
    expect(job.request.prompt).toBe('a lighthouse at dusk');
    for (const [index, path] of paths.entries()) {
      expect(path).toBe(join(out, `${id}-${index}.png`));
      const saved = readFileSync(path);
      const metadata = await sharp(saved).metadata();
      expect([metadata.format, metadata.width, metadata.height]).toEqual(['png', 256, 192]);
      const served = Buffer.from(await (await fetch(job.images[index].url)).arrayBuffer());
      expect(saved.equals(served)).toBe(true);
    }
  });

  it('on a pipe, says only which job it is and how it ended: no spinner, no escape codes', async () => {
    const run = await cli(['generate', '--server', dr.url, '--out', outDir(), 'quiet please']);
    expect(run.code).toBe(0);
    const id = jobIdOf(run.stderr);
    expect(run.stderr).toMatch(new RegExp(`^job ${id} queued\njob ${id} succeeded in \\d+\\.\\d s: 1 image\n$`));
    expect(run.stderr).not.toMatch(SPINNER_FRAMES);
    expect(run.stderr).not.toContain('\x1b');
  });

  it('--json prints the job as the server has it, each image with the path it was saved to, and nothing else', async () => {
    const run = await cli(['generate', '--server', dr.url, '--out', outDir(), '--json', '--seed', '42', '--steps', '20', '--cfg', '6.5', '--negative', 'fog', '--style', 'noir', 'a red kite']);
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout);
    const { body: job } = await dr.api('GET', `/api/v1/jobs/${printed.id}`);
    expect(withoutLinks(printed)).toEqual(withoutLinks(job));
    expect(printed.request).toMatchObject({ prompt: 'a red kite', seed: 42, steps: 20, cfgScale: 6.5, negativePrompt: 'fog', style: 'noir' });
    expect(printed.images).toHaveLength(1);
    const [image] = printed.images;
    expect(createHash('sha256').update(readFileSync(image.path)).digest('hex')).toBe(image.sha256);
    expect(readFileSync(image.path).length).toBe(image.bytes);
  });

  it("exits 1 with the job's error when the job fails (and --json still prints the failed job)", async () => {
    const run = await cli(['generate', '--server', failing.url, '--json', 'a refused prompt']);
    expect(run.code).toBe(1);
    const printed = JSON.parse(run.stdout);
    const { body: job } = await failing.api('GET', `/api/v1/jobs/${printed.id}`);
    expect(job.status).toBe('failed');
    expect(job.error.message).toMatch(/content policy/);
    expect(run.stderr).toContain(`job ${job.id} failed: ${job.error.message}`);
    expect(printed.status).toBe('failed');
    expect(printed.error).toEqual(job.error);
  });

  it('Ctrl-C cancels the job on the server and exits 130', async () => {
    const running = start(['generate', '--server', slow.url, 'never finishes']);
    await until(() => /queued\n/.test(running.stderr()), 'the job line');
    const id = jobIdOf(running.stderr());
    await slow.waitForJob(id, ['running']);
    running.child.kill('SIGINT');
    const run = await running.done;
    expect(run.code).toBe(130);
    expect(run.stderr).toContain(`interrupted: job ${id} cancelled`);
    expect(run.stdout).toBe('');
    expect((await slow.api('GET', `/api/v1/jobs/${id}`)).body.status).toBe('cancelled');
  });

  it('a second Ctrl-C exits at once, without waiting for the cancel', async () => {
    const proxy = await startAuthProxy(slow.url);
    try {
      proxy.holdCancels = true;
      const running = start(['generate', '--server', proxy.url, '--key', KEY, 'stuck']);
      await until(() => /queued\n/.test(running.stderr()), 'the job line');
      const id = jobIdOf(running.stderr());
      await slow.waitForJob(id, ['running']);
      running.child.kill('SIGINT');
      await until(() => proxy.paths.includes(`/api/v1/jobs/${id}/cancel`), 'the cancel request');
      running.child.kill('SIGINT');
      const run = await running.done;
      expect(run.code).toBe(130);
      expect(run.stderr).toContain('interrupted again');
      await slow.api('POST', `/api/v1/jobs/${id}/cancel`);
    } finally {
      await proxy.close();
    }
  });

  it('--timeout gives up, cancels the job and exits 1', async () => {
    const run = await cli(['generate', '--server', slow.url, '--timeout', '0.5', 'too slow']);
    expect(run.code).toBe(1);
    const id = jobIdOf(run.stderr);
    expect(run.stderr).toContain(`gave up after 0.5 s (--timeout): job ${id} cancelled`);
    expect((await slow.api('GET', `/api/v1/jobs/${id}`)).body.status).toBe('cancelled');
  });

  it("prints the server's validation errors readably, naming the flags, and exits 1", async () => {
    const run = await cli(['generate', '--server', dr.url, '--width', '100', '--n', '11', 'bad size']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('darkroom refused the request (400 Bad Request):\n  width: must be multiple of 8\n  numImages (--n): must be <= 10\n');
    expect(run.stdout).toBe('');
  });

  it('says when it cannot reach the server, and exits 1', async () => {
    const run = await cli(['generate', '--server', closedUrl, 'anyone there']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^cannot reach darkroom at ${closedUrl}: .*ECONNREFUSED`));
  });

  it.skipIf(!hasScript())('on a terminal, shows a spinner that follows the job', async () => {
    const run = await onTerminal(['generate', '--server', dr.url, '--out', outDir(), 'on a terminal']).done;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(SPINNER_FRAMES);
    expect(run.stdout).toMatch(/job [0-9a-f-]{36} queued/);
    expect(run.stdout).toMatch(/job [0-9a-f-]{36} running: (submitting|waiting upstream, \d+%)/);
    expect(run.stdout).toMatch(/✔.* job [0-9a-f-]{36} succeeded in \d+\.\d s: 1 image/);
    expect(run.stdout).toMatch(/-0\.png\r?\n/);
  });

  it.skipIf(!hasScript())('on a terminal, an error stops the spinner, and the command exits', async () => {
    const proxy = await startAuthProxy(slow.url);
    const running = onTerminal(['generate', '--server', proxy.url, '--key', KEY, 'the server goes away']);
    await until(() => running.output().includes('running: waiting upstream'), 'the spinner');
    await proxy.close();
    const run = await running.done;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`cannot reach darkroom at ${proxy.url}: .*ECONNREFUSED`));
    const id = /job ([0-9a-f-]{36}) queued/.exec(run.stdout)?.[1] as string;
    await slow.api('POST', `/api/v1/jobs/${id}/cancel`);
  });
});

/** `darkroom …` on a pseudo-terminal (util-linux `script`), sized as a real one is; its stdout has both streams. */
function onTerminal(args: string[]): { done: Promise<Run>; output: () => string } {
  const command = `stty cols 120 rows 40; exec node bin/darkroom.js ${args.map((arg) => `'${arg}'`).join(' ')}`;
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, TERM: 'xterm' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const done = new Promise<Run>((resolve) => child.once('close', (code) => resolve({ code, stdout: output, stderr: '' })));
  return { done, output: () => output };
}

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Raw RGB pixels of an image file, at its own size. */
async function pixelsOf(bytes: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** The largest difference of one channel between `a` and `b` over the columns [from, to) of every row. */
function largestDifference(a: { data: Buffer; width: number; height: number }, b: { data: Buffer }, from: number, to: number): number {
  let largest = 0;
  for (let y = 0; y < a.height; y += 1) {
    for (let x = from; x < to; x += 1) {
      for (let channel = 0; channel < 3; channel += 1) {
        const offset = (y * a.width + x) * 3 + channel;
        largest = Math.max(largest, Math.abs((a.data[offset] ?? 0) - (b.data[offset] ?? 0)));
      }
    }
  }
  return largest;
}

describe('darkroom generate --image, --mask and --strength', () => {
  const SIZE = 128;
  let dir: string;
  let initPath: string;
  let maskPath: string;
  let initBytes: Buffer;
  let maskBytes: Buffer;

  beforeAll(async () => {
    dir = outDir();
    // A gradient (unlike anything the mock draws) and a mask: black on the left half (kept), white on the right (repainted).
    const gradient = Buffer.alloc(SIZE * SIZE * 3);
    for (let y = 0; y < SIZE; y += 1) {
      for (let x = 0; x < SIZE; x += 1) gradient.set([x * 2, y * 2, 255 - x - y / 2], (y * SIZE + x) * 3);
    }
    initBytes = await sharp(gradient, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer();
    const half = Buffer.alloc(SIZE * SIZE);
    for (let y = 0; y < SIZE; y += 1) half.fill(255, y * SIZE + SIZE / 2, (y + 1) * SIZE);
    maskBytes = await sharp(half, { raw: { width: SIZE, height: SIZE, channels: 1 } }).png().toBuffer();
    initPath = join(dir, 'init.png');
    maskPath = join(dir, 'mask.png');
    writeFileSync(initPath, initBytes);
    writeFileSync(maskPath, maskBytes);
  });

  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

  it('uploads the init image and the mask, and the job keeps them: black keeps the init image, white is repainted', async () => {
    const out = outDir();
    const run = await cli(['generate', '--server', dr.url, '--out', out, '--json', '--image', initPath, '--mask', maskPath, '--strength', '0.6', '--width', String(SIZE), '--height', String(SIZE), '--seed', '3', 'a lighthouse']);
    expect(run.stderr).not.toMatch(/error|refused/i);
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout);
    const { body: job } = await dr.api('GET', `/api/v1/jobs/${printed.id}`);
    expect(job.status).toBe('succeeded');
    expect(job.request.strength).toBe(0.6);
    expect(job.inputs.map(({ url, ...input }: Record<string, unknown>) => input)).toEqual([
      { role: 'init', contentType: 'image/png', width: SIZE, height: SIZE, bytes: initBytes.length, sha256: sha256(initBytes) },
      { role: 'mask', contentType: 'image/png', width: SIZE, height: SIZE, bytes: maskBytes.length, sha256: sha256(maskBytes) },
    ]);
    // The inputs' links serve the very bytes of the files.
    for (const [index, bytes] of [initBytes, maskBytes].entries()) {
      expect(Buffer.from(await (await fetch(job.inputs[index].url)).arrayBuffer()).equals(bytes)).toBe(true);
    }

    const output = await pixelsOf(readFileSync(printed.images[0].path));
    const init = await pixelsOf(initBytes);
    expect([output.width, output.height]).toEqual([SIZE, SIZE]);
    expect(largestDifference(output, init, 0, SIZE / 2)).toBeLessThanOrEqual(2);
    expect(largestDifference(output, init, SIZE / 2, SIZE)).toBeGreaterThan(32);
  });

  it('--strength 0 gives the init image back; 1 ignores it', async () => {
    const runs = await cliAll(['0', '1'].map((strength) => ({ args: ['generate', '--server', dr.url, '--out', outDir(), '--image', initPath, '--strength', strength, '--width', String(SIZE), '--height', String(SIZE), '--seed', '5', 'a lighthouse'] })));
    const plain = await cli(['generate', '--server', dr.url, '--out', outDir(), '--width', String(SIZE), '--height', String(SIZE), '--seed', '5', 'a lighthouse']);
    for (const run of [...runs, plain]) expect(run.code, run.stderr).toBe(0);
    const saved = (run: Run) => pixelsOf(readFileSync(run.stdout.trim()));
    const [kept, ignored, textOnly, init] = await Promise.all([saved(runs[0] as Run), saved(runs[1] as Run), saved(plain), pixelsOf(initBytes)]);
    expect(largestDifference(kept, init, 0, SIZE)).toBeLessThanOrEqual(2);
    expect(largestDifference(ignored, textOnly, 0, SIZE)).toBeLessThanOrEqual(2);
    expect(largestDifference(ignored, init, 0, SIZE)).toBeGreaterThan(32);
  });

  it("a file that is not an image: the server's refusal names the flag and the file, exit 1", async () => {
    const notImage = join(dir, 'notes.png');
    writeFileSync(notImage, 'just some text, whatever the name says');
    const before = await jobCount(dr);
    const run = await cli(['generate', '--server', dr.url, '--image', notImage, 'x']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^darkroom refused --image ${notImage} \\(400 [^)]+\\): .+\n$`));
    expect(await jobCount(dr)).toBe(before);
  });

  it('with --idempotency-key, a retried command sends the same images and gets the same job', async () => {
    const args = ['generate', '--server', dr.url, '--json', '--image', initPath, '--mask', maskPath, '--idempotency-key', 'cli-images-1', '--width', String(SIZE), '--height', String(SIZE), 'twice'];
    const first = await cli([...args, '--out', outDir()]);
    const second = await cli([...args, '--out', outDir()]);
    expect([first.code, second.code], second.stderr).toEqual([0, 0]);
    const [one, two] = [JSON.parse(first.stdout), JSON.parse(second.stdout)];
    expect(two.id).toBe(one.id);
    expect(two.inputs.map((input: { role: string; sha256: string }) => [input.role, input.sha256])).toEqual([
      ['init', sha256(initBytes)],
      ['mask', sha256(maskBytes)],
    ]);

    // Sent within the request, a file the server will not take is named by its flag.
    const notImage = join(dir, 'mask.txt');
    writeFileSync(notImage, 'not a mask');
    const refused = await cli(['generate', '--server', dr.url, '--image', initPath, '--mask', notImage, '--idempotency-key', 'cli-images-2', 'x']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^darkroom refused the request \(400 Bad Request\):\n {2}images\.1\S* \(--mask\): .+\n$/);
  });

  it('a missing or unreadable file, a mask without an image and a strength outside 0–1 exit 2 before anything is sent', async () => {
    const before = await jobCount(dr);
    const cases: [string[], RegExp][] = [
      [['--image', join(dir, 'missing.png')], new RegExp(`^darkroom: --image: cannot read ${join(dir, 'missing.png')}: no such file\n\nUsage: darkroom generate `)],
      [['--image', initPath, '--mask', join(dir, 'missing.png')], /^darkroom: --mask: cannot read .*missing\.png: no such file\n/],
      [['--image', dir], new RegExp(`^darkroom: --image: cannot read ${dir}: it is a directory\n`)],
      [['--mask', maskPath], /^darkroom: --mask needs --image: a mask marks which pixels of the init image may change\n\nUsage: darkroom generate /],
      [['--strength', '0.5'], /^darkroom: --strength needs --image: it says how much the init image may change\n/],
      [['--image', initPath, '--strength', '1.5'], /^darkroom: --strength must be from 0 to 1, not 1\.5\n/],
      [['--image', initPath, '--strength=-0.1'], /^darkroom: --strength must be from 0 to 1, not -0\.1\n/],
      [['--image', initPath, '--strength', 'half'], /^darkroom: --strength must be a number, not "half"\n/],
    ];
    const runs = await cliAll(cases.map(([args]) => ({ args: ['generate', ...args, 'x'], env: { DARKROOM_URL: dr.url } })));
    for (const [index, run] of runs.entries()) {
      const [args, message] = cases[index] as [string[], RegExp];
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.code, args.join(' ')).toBe(2);
    }
    expect(await jobCount(dr)).toBe(before);
  });
});

describe('darkroom jobs', () => {
  it('list: a table of the newest jobs, with a hint for the next page', async () => {
    const long = `a very long prompt ${'with many words '.repeat(10)}`.trim();
    const created: string[] = [];
    for (const prompt of ['first of three', 'second of three', long]) {
      created.push((await dr.api('POST', '/api/v1/jobs', { prompt })).body.id);
    }
    const run = await cli(['jobs', 'list', '--limit', '2', '--server', dr.url]);
    expect(run.code).toBe(0);
    const [header, ...rows] = run.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID +STATUS +CREATED +PROVIDER +PROMPT$/);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`^${created[2]} +(queued|running|succeeded) +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +mock +a very long prompt with many.*…$`));
    expect(rows[0]?.split('  ').at(-1)).toHaveLength(60);
    expect(rows[1]).toMatch(new RegExp(`^${created[1]} .* second of three$`));

    const cursor = /^more: darkroom jobs list --limit 2 --cursor (\S+)\n$/.exec(run.stderr)?.[1] as string;
    expect(cursor).toBeDefined();
    const next = await cli(['jobs', 'list', '--limit', '2', '--cursor', cursor, '--server', dr.url]);
    expect(next.stdout.split('\n')[1]).toMatch(new RegExp(`^${created[0]} .* first of three$`));
  });

  it('list --status and --json: the server\'s page as is', async () => {
    await failing.api('POST', '/api/v1/jobs', { prompt: 'refused' });
    const run = await cli(['jobs', 'list', '--status', 'failed', '--json', '--server', failing.url]);
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout);
    const { body: page } = await failing.api('GET', '/api/v1/jobs?status=failed');
    expect(printed.items.map((job: { id: string }) => job.id)).toEqual(page.items.map((job: { id: string }) => job.id));
    expect(printed.items.length).toBeGreaterThan(0);
    expect(printed.items.every((job: { status: string }) => job.status === 'failed')).toBe(true);
    expect(printed.nextCursor).toBe(page.nextCursor);
  });

  it('get: the job in words, or as JSON', async () => {
    const { body: created } = await dr.api('POST', '/api/v1/jobs', { prompt: 'to be read', numImages: 2, seed: 7 });
    const job = await dr.waitForJob(created.id);
    const run = await cli(['jobs', 'get', created.id, '--server', dr.url]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^job +${created.id}\nstatus +succeeded\n`));
    expect(run.stdout).toMatch(/\nprompt +to be read\n/);
    expect(run.stdout).toMatch(/\nrequest +512×512, 2 images, seed 7\n/);
    expect(run.stdout).toMatch(/\nimage 0 +512×512 image\/png [\d.]+ kB, seed 7\n +http:\/\/\S+\nimage 1 /);

    const json = await cli(['jobs', 'get', '--json', created.id, '--server', dr.url]);
    expect(withoutLinks(JSON.parse(json.stdout))).toEqual(withoutLinks(job));
  });

  it('get of an unknown job: the server says so, exit 1', async () => {
    const run = await cli(['jobs', 'get', UNKNOWN_ID, '--server', dr.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^darkroom answered 404: /);
  });

  it('cancel: cancels on the server; a finished job cannot be, exit 1', async () => {
    const { body: first } = await slow.api('POST', '/api/v1/jobs', { prompt: 'cancel me' });
    const run = await cli(['jobs', 'cancel', first.id, '--server', slow.url]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`job ${first.id} cancelled\n`);
    expect((await slow.api('GET', `/api/v1/jobs/${first.id}`)).body.status).toBe('cancelled');

    const { body: second } = await slow.api('POST', '/api/v1/jobs', { prompt: 'cancel me too' });
    const json = await cli(['jobs', 'cancel', '--json', second.id, '--server', slow.url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: second.id, status: 'cancelled' });

    const again = await cli(['jobs', 'cancel', first.id, '--server', slow.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`darkroom answered 409: Job ${first.id} has already finished (cancelled) and cannot be cancelled\n`);
  });
});

describe('darkroom open', () => {
  it("--print prints the web UI's address", async () => {
    expect((await cli(['open', '--print', '--server', `${dr.url}/`])).stdout).toBe(`${dr.url}/\n`);
    expect((await cli(['open', '--print'], { DARKROOM_URL: dr.url })).stdout).toBe(`${dr.url}/\n`);
  });
});

describe('help and bad command lines', () => {
  const commands = [['generate'], ['jobs'], ['jobs', 'list'], ['jobs', 'get'], ['jobs', 'cancel'], ['open'], ['serve'], ['api'], ['worker'], ['migrate']];

  it('--help and -h on every command print its usage on stdout, exit 0', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^darkroom — .*\n\nUsage: darkroom <command>/);
    for (const name of ['serve', 'api', 'worker', 'migrate', 'generate', 'jobs', 'open']) expect(top.stdout).toMatch(new RegExp(`\n  ${name} +\\S`));

    const runs = await cliAll(commands.flatMap((command) => [{ args: [...command, '--help'] }, { args: [...command, '-h'] }]));
    for (const [index, run] of runs.entries()) {
      const command = commands[Math.floor(index / 2)] as string[];
      expect(run.code, command.join(' ')).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: darkroom ${command.join(' ')}\\b`));
      expect(run.stderr).toBe('');
    }
    expect((await cli(['help', 'generate'])).stdout).toMatch(/^Usage: darkroom generate /);
  });

  it('a bad command line exits 2 with a message and the usage, and never reaches the server', async () => {
    const before = await jobCount(dr);
    const cases: [string[], RegExp][] = [
      [['generate', '--width', 'abc', 'x'], /^darkroom: --width must be a whole number, not "abc"\n\nUsage: darkroom generate /],
      [['generate', '--n', '0', 'x'], /^darkroom: --n must be at least 1, not 0\n\nUsage: darkroom generate /],
      [['generate', '--cfg', 'high', 'x'], /^darkroom: --cfg must be a number, not "high"\n/],
      [['generate', '--timeout', '-1', 'x'], /^darkroom: --timeout needs a value; for one that starts with "-", write --timeout=VALUE\n/],
      [['generate', '--timeout=0', 'x'], /^darkroom: --timeout must be above 0, not 0\n/],
      [['generate', '--seed', '1.5', 'x'], /^darkroom: --seed must be a whole number, not "1.5"\n/],
      [['generate'], /^darkroom: a prompt is required\n\nUsage: darkroom generate /],
      [['generate', '--images', '2', 'x'], /^darkroom: unknown option --images\n\nUsage: darkroom generate /],
      [['generate', '--server', 'localhost:3000', 'x'], /^darkroom: --server must be a URL starting with http:\/\/ or https:\/\/, not "localhost:3000"\n/],
      [['generate', 'x', '--json=yes'], /^darkroom: --json takes no value\n/],
      [['jobs'], /^darkroom: a command is missing\n\nUsage: darkroom jobs /],
      [['jobs', 'remove'], /^darkroom: unknown command "remove"\n\nUsage: darkroom jobs /],
      [['jobs', 'list', '--status', 'done'], /^darkroom: --status must be one of queued, running, succeeded, failed, cancelled, expired, not "done"\n/],
      [['jobs', 'list', '--limit', '0'], /^darkroom: --limit must be at least 1, not 0\n/],
      [['jobs', 'list', 'extra'], /^darkroom: unexpected argument "extra"\n\nUsage: darkroom jobs list /],
      [['jobs', 'get', 'job-1'], /^darkroom: "job-1" is not a job id \(a UUID, as printed by generate and jobs list\)\n\nUsage: darkroom jobs get /],
      [['jobs', 'cancel'], /^darkroom: a job id is required\n\nUsage: darkroom jobs cancel /],
      [['open', '--key', 'k'], /^darkroom: unknown option --key\n\nUsage: darkroom open /],
      [['serve', '--port', '1'], /^darkroom: unknown option --port\n\nUsage: darkroom serve/],
      [['frobnicate'], /^darkroom: unknown command "frobnicate"\n\ndarkroom — /],
      [['--verbose'], /^darkroom: unknown option --verbose\n\ndarkroom — /],
    ];
    const runs = await cliAll(cases.map(([args]) => ({ args, env: { DARKROOM_URL: dr.url } })));
    for (const [index, run] of runs.entries()) {
      const [args, message] = cases[index] as [string[], RegExp];
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout, args.join(' ')).toBe('');
    }
    expect(await jobCount(dr)).toBe(before);
  });
});

describe('--server and --key, or DARKROOM_URL and DARKROOM_API_KEY', () => {
  let proxy: AuthProxy;
  beforeAll(async () => {
    proxy = await startAuthProxy(dr.url);
  });
  afterAll(() => proxy?.close());

  it('DARKROOM_URL and DARKROOM_API_KEY reach the server, and the key is printed nowhere', async () => {
    proxy.authorizations.length = 0;
    const run = await cli(['generate', '--out', outDir(), 'with a key'], { DARKROOM_URL: proxy.url, DARKROOM_API_KEY: KEY });
    expect(run.code).toBe(0);
    expect(proxy.authorizations.length).toBeGreaterThanOrEqual(3);
    expect(proxy.authorizations.every((header) => header === `Bearer ${KEY}`)).toBe(true);
    expect(run.stdout + run.stderr).not.toContain(KEY);

    const list = await cli(['jobs', 'list', '--json'], { DARKROOM_URL: proxy.url, DARKROOM_API_KEY: KEY });
    expect(JSON.parse(list.stdout).items[0].request.prompt).toBe('with a key');
  });

  it('the flags win over the environment', async () => {
    const run = await cli(['jobs', 'list', '--server', proxy.url, '--key', KEY], { DARKROOM_URL: closedUrl, DARKROOM_API_KEY: 'dk_wrong_key_0000' });
    expect(run.code).toBe(0);
    expect(proxy.authorizations.at(-1)).toBe(`Bearer ${KEY}`);
  });

  it('a 401 without a key says how to pass one; a refused key is not printed', async () => {
    const without = await cli(['generate', 'no key'], { DARKROOM_URL: proxy.url });
    expect(without.code).toBe(1);
    expect(without.stderr).toBe('the server needs an API key: pass --key or set DARKROOM_API_KEY\n');

    const wrong = await cli(['jobs', 'list', '--key', 'dk_wrong_key_0000'], { DARKROOM_URL: proxy.url });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(`darkroom at ${proxy.url} did not accept the API key: A valid API key is required\n`);
  });

  it("without either, talks to this machine's darkroom (HOST and PORT)", async () => {
    const { port } = new URL(dr.url);
    const run = await cli(['open', '--print'], { PORT: port, HOST: '0.0.0.0' });
    expect(run.stdout).toBe(`http://127.0.0.1:${port}/\n`);
    const list = await cli(['jobs', 'list', '--json', '--limit', '1'], { PORT: port });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).items).toHaveLength(1);
  });

  it('a DARKROOM_URL that is not a URL is a configuration error (78)', async () => {
    const run = await cli(['jobs', 'list'], { DARKROOM_URL: 'darkroom.local' });
    expect(run.code).toBe(78);
    expect(run.stderr).toBe('Invalid configuration:\n  - DARKROOM_URL must be a URL starting with http:// or https://\n');
  });
});
