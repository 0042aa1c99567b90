import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeTempDir, progress, sleep, waitUntilReady, type Cleanup, type Row } from './lib.ts';

export interface MemoryOptions {
  /** How long the process sits idle (after it is ready) before its RSS is read. */
  idleMs: number;
}

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const binary = join(repoRoot, 'bin', 'darkroom.js');

/** A field of /proc/<pid>/status in MiB (the kernel reports kB). */
function procStatusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/**
 * CPU seconds the process and its waited-for children (an initdb child) have used, in ms: on a busy
 * machine wall-clock startup mostly measures the other load, CPU time much less so.
 */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state; utime..cstime are fields 14-17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = fields.slice(11, 15).reduce((sum, value) => sum + Number(value), 0);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux architecture node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The process itself must be node, not a shell or npm wrapper around it. */
function assertNode(pid: number, mustContain: string): void {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  if (argv[0] !== process.execPath || !argv.some((arg) => arg.includes(mustContain))) {
    throw new Error(`pid ${pid} is "${argv.join(' ')}", not ${process.execPath} running ${mustContain}`);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
async function stop(child: ChildProcess, graceMs: number): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return describeExit(child.exitCode, child.signalCode);
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(describeExit(code, signal))));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null) => (signal ? `signal ${signal}` : `exit code ${code}`);

/** Spawns `node <args>` with stdout piped, registered for cleanup. */
function spawnNode(cleanup: Cleanup, args: string[], env: Record<string, string>, cwd: string) {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const stopChild = cleanup.add(`stop child ${child.pid}`, async () => {
    await stop(child, 5000);
  });
  const spawned = new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid as number));
    child.once('error', reject);
  });
  return { child, spawned, stderr, stopChild };
}

/** Resolves with the `url` of the "darkroom is running" log line; rejects if the process exits first. */
function listeningUrl(child: ChildProcess, stderr: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const timer = setTimeout(() => fail(new Error(`darkroom did not log "darkroom is running" within ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`darkroom exited (${describeExit(code, signal)}) before it was running: ${stderr.join('').trim()}`));
    function fail(error: Error) {
      clearTimeout(timer);
      child.off('exit', onExit);
      lines.close();
      reject(error);
    }
    child.once('exit', onExit);
    lines.on('line', (line) => {
      let entry: { msg?: unknown; url?: unknown };
      try {
        entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
      } catch {
        return;
      }
      if (entry.msg === 'darkroom is running' && typeof entry.url === 'string') {
        clearTimeout(timer);
        child.off('exit', onExit);
        // Keep draining stdout (without the interface) so the child never blocks on a full pipe.
        lines.close();
        child.stdout?.resume();
        resolve(entry.url);
      }
    });
  });
}

interface Measured {
  rssMiB: number;
  peakMiB: number;
  exit: string;
  /** spawn → ready (GET /ready 200, or the child's "ready" line) */
  startupMs: number;
  /** CPU time (user + system, with waited-for children) until ready */
  startupCpuMs: number;
}

/** `node bin/darkroom.js serve` (what `npm start` runs), on `dataDir` and a port of its choosing. */
async function measureDarkroom(cleanup: Cleanup, options: MemoryOptions, dataDir: string): Promise<Measured> {
  // A minimal environment and the temp dir as working directory: no .env, no DATABASE_URL from the shell.
  const env = { PATH: process.env.PATH ?? '', HOME: dataDir, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' };
  const started = performance.now();
  const { child, spawned, stderr, stopChild } = spawnNode(cleanup, [binary, 'serve'], env, dataDir);
  const pid = await spawned;
  assertNode(pid, 'bin/darkroom.js');
  const url = await listeningUrl(child, stderr, 60_000);
  await waitUntilReady(url, 30_000);
  const startupMs = performance.now() - started;
  const startupCpuMs = cpuMs(pid);
  progress(`memory: darkroom (pid ${pid}) ready at ${url}; idling ${options.idleMs} ms`);
  await sleep(options.idleMs);
  const rssMiB = procStatusMiB(pid, 'VmRSS');
  const peakMiB = procStatusMiB(pid, 'VmHWM');
  const exit = await stop(child, 15_000);
  await stopChild();
  return { rssMiB, peakMiB, exit, startupMs, startupCpuMs };
}

/** The reference: an idle bare node, spawned and read the same way. */
async function measureBareNode(cleanup: Cleanup, options: MemoryOptions): Promise<Measured> {
  const script = 'setInterval(()=>{},1000)';
  const started = performance.now();
  const { child, spawned, stopChild } = spawnNode(cleanup, ['-e', script], { PATH: process.env.PATH ?? '' }, repoRoot);
  const pid = await spawned;
  const startupMs = performance.now() - started;
  const startupCpuMs = cpuMs(pid);
  assertNode(pid, script);
  progress(`memory: bare node (pid ${pid}); idling ${options.idleMs} ms`);
  await sleep(options.idleMs);
  const rssMiB = procStatusMiB(pid, 'VmRSS');
  const peakMiB = procStatusMiB(pid, 'VmHWM');
  const exit = await stop(child, 5000);
  await stopChild();
  return { rssMiB, peakMiB, exit, startupMs, startupCpuMs };
}

/**
 * Where darkroom's memory goes: a bare node that only opens PGlite on an empty directory (as darkroom
 * does at start) and runs one query, spawned and read the same way.
 */
async function measurePglite(cleanup: Cleanup, options: MemoryOptions): Promise<Measured> {
  const { path: dataDir, remove: removeDir } = makeTempDir(cleanup, 'pglite');
  const script =
    "const { PGlite } = await import('@electric-sql/pglite'); const db = await PGlite.create(process.env.PGLITE_DIR); " +
    "await db.query('select 1'); console.log('ready'); setInterval(() => {}, 1000);";
  const started = performance.now();
  const { child, spawned, stderr, stopChild } = spawnNode(
    cleanup,
    ['--input-type=module', '-e', script],
    { PATH: process.env.PATH ?? '', PGLITE_DIR: join(dataDir, 'pgdata') },
    repoRoot,
  );
  const pid = await spawned;
  assertNode(pid, 'PGlite');
  await readyLine(child, stderr, 60_000);
  const startupMs = performance.now() - started;
  const startupCpuMs = cpuMs(pid);
  progress(`memory: node + PGlite (pid ${pid}) ready; idling ${options.idleMs} ms`);
  await sleep(options.idleMs);
  const rssMiB = procStatusMiB(pid, 'VmRSS');
  const peakMiB = procStatusMiB(pid, 'VmHWM');
  const exit = await stop(child, 5000);
  await stopChild();
  await removeDir();
  return { rssMiB, peakMiB, exit, startupMs, startupCpuMs };
}

function readyLine(child: ChildProcess, stderr: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const finish = (error?: Error) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      lines.close();
      child.stdout?.resume();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error(`no "ready" line within ${timeoutMs} ms`)), timeoutMs);
    const onExit = () => finish(new Error(`the child exited before it was ready: ${stderr.join('').trim()}`));
    child.once('exit', onExit);
    lines.on('line', (line) => {
      if (line.trim() === 'ready') finish();
    });
  });
}

/** Item 5: idle RSS of the server process of `npm start` next to an idle bare node. */
export async function benchMemory(cleanup: Cleanup, options: MemoryOptions): Promise<{ rows: Row[]; notes: string[] }> {
  // First start creates the database (PGlite's initdb, which keeps its memory); the second is what a
  // restarted service looks like: the same DATA_DIR, migrations already applied.
  const { path: dataDir, remove: removeDir } = makeTempDir(cleanup, 'serve');
  const darkroom = await measureDarkroom(cleanup, options, dataDir);
  const restarted = await measureDarkroom(cleanup, options, dataDir);
  await removeDir();
  const bare = await measureBareNode(cleanup, options);
  const pglite = await measurePglite(cleanup, options);
  const rows: Row[] = [
    { metric: 'Idle RSS, node bin/darkroom.js serve', value: darkroom.rssMiB, unit: 'MiB', reference: { value: bare.rssMiB, label: 'bare node' } },
    { metric: '  idle RSS, restarted on the same DATA_DIR', value: restarted.rssMiB, unit: 'MiB', reference: { value: bare.rssMiB, label: 'bare node' } },
    { metric: '  peak RSS (VmHWM) until then', value: darkroom.peakMiB, unit: 'MiB', reference: { value: bare.peakMiB, label: 'bare node' } },
    { metric: '  idle RSS, node + PGlite only', value: pglite.rssMiB, unit: 'MiB', reference: { value: bare.rssMiB, label: 'bare node' } },
    { metric: 'Startup, spawn → GET /ready 200 (fresh DATA_DIR)', value: darkroom.startupMs, unit: 'ms', reference: { value: pglite.startupMs, label: 'node + PGlite.create' } },
    { metric: '  startup on the existing DATA_DIR', value: restarted.startupMs, unit: 'ms', reference: { value: pglite.startupMs, label: 'node + PGlite.create' } },
    { metric: '  CPU time until ready (fresh DATA_DIR)', value: darkroom.startupCpuMs, unit: 'ms', reference: { value: pglite.startupCpuMs, label: 'node + PGlite.create' } },
    { metric: '  CPU time until ready (existing DATA_DIR)', value: restarted.startupCpuMs, unit: 'ms', reference: { value: pglite.startupCpuMs, label: 'node + PGlite.create' } },
  ];
  const notes = [
    `Memory: VmRSS from /proc/<pid>/status of the node process itself (checked via /proc/<pid>/cmdline; \`npm start\` runs the same command behind an npm wrapper), ` +
      `${options.idleMs / 1000} s after GET /ready answered 200 (PGlite in a temp DATA_DIR, PORT=0, default WORKER_CONCURRENCY); reference: node -e "setInterval(()=>{},1000)" after ${options.idleMs / 1000} s; ` +
      `"node + PGlite only" is a bare node that opens PGlite on an empty directory and runs one query (what darkroom's database layer does at start), read the same way. ` +
      `CPU time is user + system time of the process and its waited-for children (/proc/<pid>/stat) at the moment it was ready: wall-clock startup on a busy machine mostly measures the other load. ` +
      `A single reading: it can differ by a few hundred MiB between runs, depending on what PGlite and V8 have given back by then; VmHWM is the peak so far. ` +
      `On SIGTERM darkroom ended with ${darkroom.exit}.`,
  ];
  return { rows, notes };
}
